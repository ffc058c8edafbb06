"""``pipeline demo``: the whole producer path on the embedded default, with a live summary.

Starts (inside this process, on 127.0.0.1) the Genesys emulator with a simulated contact
center, then the producer service against the local broker and registry the caller started,
streaming ``examples/subscription.yaml``. Prints where to look and a summary line every few
seconds; on stop (Ctrl-C, SIGTERM or ``duration``) prints a report and says whether the
pipeline was healthy: records delivered, none left unacknowledged, a channel live.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from pipeline.core.spec import load_spec
from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorConfig
from pipeline.emulator.server import Emulator
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from pipeline.services.producer import ProducerConfig, ProducerService, ProducerStats
from pipeline.settings import GenesysSettings, KafkaSettings, ProducerSettings, RegistrySettings

__all__ = ["is_healthy", "run_demo"]

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "subscription.yaml"


async def run_demo(
    endpoints: Endpoints,
    stop: asyncio.Event,
    out: TextIO,
    spec_path: Path = EXAMPLE,
    summary_every_s: float = 5.0,
) -> ProducerStats:
    """Run emulator + producer until ``stop``; returns the producer's final counts."""
    # A busy contact center: 20 queues, 200 agents, six conversations a minute per queue/media.
    async with Emulator(EmulatorConfig(port=0, arrival_rate=6.0)) as emulator:
        prefix = "genesys"
        await asyncio.to_thread(register_contract, endpoints.schema_registry_url, prefix)
        service = ProducerService(_config(endpoints, emulator.base_url, spec_path, prefix))
        run = asyncio.create_task(service.run(stop))
        await _wait_for_ops(service)
        _print_where(out, endpoints, emulator.base_url, service, prefix)
        while not run.done():
            done, _ = await asyncio.wait({run}, timeout=summary_every_s)
            if not done:
                _print_summary(out, service.stats())
        await run
    return service.stats()


def _config(endpoints: Endpoints, api_url: str, spec_path: Path, prefix: str) -> ProducerConfig:
    return ProducerConfig(
        load_spec(spec_path),
        GenesysSettings(
            client_id=DEMO_CLIENT_ID, client_secret=SecretStr(DEMO_CLIENT_SECRET), api_url=api_url
        ),
        KafkaSettings(bootstrap_servers=endpoints.bootstrap_servers),
        RegistrySettings(url=endpoints.schema_registry_url),
        ProducerSettings(topic_prefix=prefix, partitions=3, ops_port=0, ops_host="127.0.0.1"),
    )


async def _wait_for_ops(service: ProducerService) -> None:
    while service.ops is None or not service.ops.url:  # noqa: ASYNC110 - set by the service
        await asyncio.sleep(0.05)


def _print_where(
    out: TextIO, endpoints: Endpoints, api_url: str, service: ProducerService, prefix: str
) -> None:
    ops = service.ops.url if service.ops else ""
    out.write(
        f"Genesys emulator   {api_url}  (admin: {api_url}/__emulator/state)\n"
        f"producer metrics   {ops}/metrics   readiness: {ops}/readyz\n"
        f"Kafka topics       {prefix}.metrics {prefix}.current {prefix}.audit {prefix}.dlq\n"
        f"tail the records   kcat -b {endpoints.bootstrap_servers} -t {prefix}.metrics "
        f"-s value=avro -r {endpoints.schema_registry_url} -C\n"
    )
    out.flush()


def _print_summary(out: TextIO, stats: ProducerStats) -> None:
    out.write(
        f"frames {stats.frames:>7}   records delivered {stats.delivered:>8}   in flight "
        f"{stats.in_flight:>5}   DLQ {stats.dead_letters}   gaps {stats.gaps}   "
        f"channels live {stats.channels_live}/{stats.channels}\n"
    )
    out.flush()


def is_healthy(stats: ProducerStats) -> bool:
    """Records flowed and every one was acknowledged."""
    return stats.delivered > 0 and stats.in_flight == 0
