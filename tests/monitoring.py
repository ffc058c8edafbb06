"""The whole pipeline as real processes, for the monitoring checks: the producer, both workers
and the wallboard, against an emulator thread and the session's broker and registry, each
service's ``/metrics`` scraped over HTTP; and the metric names a PromQL query uses."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.emulator.thread import EmulatorThread
from pipeline.kafka.registry import register_contract
from pipeline.local.stack import Endpoints
from tests.conftest import seconds
from tests.processes import PipelineProcess, pipeline_env
from tests.producer_rig import spec_file

__all__ = [
    "MONITORING",
    "RunningPipeline",
    "alert_expressions",
    "dashboard_expressions",
    "exposed_names",
    "metric_names",
    "running_pipeline",
]

MONITORING = Path(__file__).resolve().parents[1] / "deploy" / "monitoring"
_OPS_URL = r"ops endpoints on (http://[\d.]+:\d+)"
_SECRET = "monitoring-test-secret"
# Grafana's variables, replaced by what Grafana would put there before the query is parsed.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


@dataclass
class RunningPipeline:
    """The running services: their ops base URLs, the emulator and the processes."""

    emulator: EmulatorThread
    prefix: str
    ops: dict[str, str] = field(default_factory=dict)
    processes: dict[str, PipelineProcess] = field(default_factory=dict)

    def scrape(self, service: str) -> str:
        """``GET /metrics`` of ``service`` (``producer``, ``freshness``, ``dashboard``)."""
        answer = httpx.get(f"{self.ops[service]}/metrics", timeout=seconds(5))
        answer.raise_for_status()
        return answer.text

    def sample(self, service: str, name: str, labels: dict[str, str]) -> float | None:
        """One sample's value from a fresh scrape (None: not exposed)."""
        for family in text_string_to_metric_families(self.scrape(service)):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        return None

    def probe(self, service: str, path: str) -> int:
        """The status of ``/healthz`` or ``/readyz``."""
        return httpx.get(f"{self.ops[service]}{path}", timeout=seconds(5)).status_code

    def output(self) -> str:
        """Every process's output end, for failure messages."""
        return "\n".join(f"=== {n}\n{p.output(30)}" for n, p in self.processes.items())


@contextlib.contextmanager
def running_pipeline(
    emulator: EmulatorThread, endpoints: Endpoints, tmp_path: Path
) -> Iterator[RunningPipeline]:
    """Start the wallboard, the producer and both workers as processes; yield once all serve.

    Args:
        emulator: a started emulator (``EMULATOR`` settings: a small, fast center).
        endpoints: the broker and registry.
        tmp_path: where the subscription file goes.
    """
    assert emulator.emulator is not None
    queues = [q.name for q in emulator.emulator.center.queues[:4]]
    spec = spec_file(tmp_path, queues)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    register_contract(endpoints.schema_registry_url, prefix)
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.bootstrap_servers,
        "SCHEMA_REGISTRY_URL": endpoints.schema_registry_url,
        "PIPELINE_TOPIC_PREFIX": prefix,
        "PIPELINE_OPS_PORT": "0",
        "PIPELINE_OPS_HOST": "127.0.0.1",
        "PIPELINE_LOG_FORMAT": "text",
    }
    run = RunningPipeline(emulator, prefix)
    with contextlib.ExitStack() as stack:

        def start(name: str, args: list[str], **env: str) -> PipelineProcess:
            process = PipelineProcess(args, pipeline_env(**env))
            run.processes[name] = stack.enter_context(process)
            return process

        board = start("wallboard", ["wallboard", "--port", "0"], DASHBOARD_SECRET=_SECRET)
        push_url = board.wait_for("^DASHBOARD_URL=", seconds(30)).strip().split("=", 1)[1]
        producer = start(
            "producer",
            ["produce", str(spec)],
            **common,
            GENESYS_API_URL=emulator.base_url,
            GENESYS_CLIENT_ID=DEMO_CLIENT_ID,
            GENESYS_CLIENT_SECRET=DEMO_CLIENT_SECRET,
            PIPELINE_PARTITIONS="3",
            PIPELINE_HEARTBEAT_S="1",
        )
        run.ops["producer"] = _ops_url(producer)
        _until_ready(run, "producer")  # the topics exist before the workers read them
        worker = {**common, "PIPELINE_SESSION_TIMEOUT_MS": "2000"}
        for kind in ("freshness", "dashboard"):
            extra = {}
            if kind == "dashboard":
                extra = {
                    "DASHBOARD_URL": push_url,
                    "DASHBOARD_SECRET": _SECRET,
                    "DASHBOARD_PUSH_INTERVAL_S": "0.2",
                    "DASHBOARD_FAILURE_THRESHOLD": "2",
                    "DASHBOARD_RESET_AFTER_S": "60",
                    "DASHBOARD_TIMEOUT_S": "2",
                }
            process = start(kind, ["worker", kind, str(spec)], **worker, **extra)
            run.ops[kind] = _ops_url(process)
        for kind in ("freshness", "dashboard"):
            _until_ready(run, kind)
        yield run


def _ops_url(process: PipelineProcess) -> str:
    line = process.wait_for(_OPS_URL, seconds(60), stream="err")
    match = re.search(_OPS_URL, line)
    assert match is not None
    return match.group(1)


def _until_ready(run: RunningPipeline, service: str) -> None:
    from tests.polling import until_sync

    until_sync(
        lambda: run.probe(service, "/readyz") == 200,
        seconds(60),
        message=f"{service} ready\n{run.output()}",
    )


def exposed_names(exposition: str) -> set[str]:
    """Every name a query may use for the metrics of one scrape, samples or not yet.

    A labelled metric with no child yet has only its ``# HELP`` and ``# TYPE`` lines; its
    family's type says which sample names it will have.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query selects (``foo{...}`` and ``{__name__="foo"}``).

    Raises:
        ValueError: the query does not parse.
    """
    for variable, value in _GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    names: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        return True

    promql_parser.walk(promql_parser.parse(query), visit)
    return names


def alert_expressions() -> dict[str, str]:
    """Alert name → expression, from ``prometheus-rules.yaml``."""
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    return {
        rule["alert"]: str(rule["expr"])
        for group in rules["spec"]["groups"]
        for rule in group["rules"]
    }


def dashboard_expressions() -> dict[str, str]:
    """``panel title / refId`` → expression, from ``grafana-dashboard.json``."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }
