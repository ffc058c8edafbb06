"""Soak benchmark: the whole pipeline at scale for minutes; does any process grow?

Not CI (``make soak``; 10 minutes by default). Starts, each as its own ``pipeline`` process,
so each one's memory and open files are its own:

- ``pipeline local up``: the Tansu broker and the schema registry (two more processes);
- ``pipeline emulator --queues 2000 --agents 20000 --speed 10``: a large, busy org;
- ``pipeline wallboard``: the dashboard the dashboard worker pushes to;
- ``pipeline produce`` with a subscription file generated here from the emulator's directory:
  every queue's observations, and presence + routing status of ``--users`` agents (10
  notification channels at the defaults);
- ``pipeline worker freshness`` and ``pipeline worker dashboard``.

Every ``--interval-s`` (10 s) it samples, from ``/proc``, each process's resident memory
(VmRSS), open file descriptors and threads, plus the producer's delivered records and the
dashboard worker's pushed values (their ``/metrics``). The first ``--warmup-minutes`` (2)
are warm-up: caches, buffers and the simulated org fill up. Growth is then measured per
process from the median of the first minute after warm-up to the median of the last minute,
and as a least-squares slope over everything after warm-up; the target is flat (growth under
10 %). At the end every process gets SIGTERM, and the bench reports how each one stopped
(exit code, seconds): the shutdown path under load.

Run: ``.venv/bin/python bench/bench_soak.py [--minutes 10]`` (``--help``); ``--csv FILE``
writes every sample.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import yaml

from pipeline.emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from pipeline.local.process import free_port

__all__ = ["main"]

SECRET = "soak-dashboard-secret"  # noqa: S105 - the bench's own wallboard
PREFIX = "soak"
TARGET_GROWTH = 0.10
GROWS_BY_DESIGN = {
    "broker": "keeps every record in memory (Tansu's memory storage)",
    "emulator": "keeps every simulated emission: the org's history for aggregate queries",
}


# ----------------------------------------------------------------------------- processes
class Command:
    """A ``pipeline`` subprocess in a session of its own; its output read by threads."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.lines: list[str] = []
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env),
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout_s: float) -> str:
        """The value of the first stdout line ``PREFIX=value``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line.split("=", 1)[1]
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}); see {self.log.name}"
                )
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no {prefix} line in {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 30.0) -> tuple[int | None, float]:
        """SIGTERM; returns (exit code, seconds it took), SIGKILL after ``timeout_s``."""
        started = time.monotonic()
        code: int | None = self.proc.poll()
        if code is None:
            self.proc.terminate()
            try:
                code = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return code, time.monotonic() - started

    def log_tail(self, lines: int = 3) -> str:
        """The end of its stderr log, on one line."""
        return " | ".join(Path(self.log.name).read_text().splitlines()[-lines:])[-300:]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


# ----------------------------------------------------------------------------- sampling
@dataclass
class Series:
    """One process's samples."""

    name: str
    pid: int
    times: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)

    def sample(self, at: float) -> bool:
        """Read /proc once; False when the process is gone."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return False
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        self.times.append(at)
        self.rss_mb.append(int(fields["VmRSS"].split()[0]) / 1024)
        self.fds.append(fds)
        self.threads.append(int(fields["Threads"]))
        return True


def growth(times: Sequence[float], values: Sequence[float], warmup_s: float) -> dict[str, float]:
    """Baseline (median of the first minute after warm-up), end (median of the last minute),
    their ratio, and the least-squares slope per minute after warm-up."""
    after = [(t, v) for t, v in zip(times, values, strict=True) if t >= warmup_s]
    if len(after) < 2:
        return {"base": float("nan"), "end": float("nan"), "growth": float("nan"), "slope": 0.0}
    first = [v for t, v in after if t < after[0][0] + 60] or [after[0][1]]
    last = [v for t, v in after if t > after[-1][0] - 60] or [after[-1][1]]
    base, end = statistics.median(first), statistics.median(last)
    ts, vs = [t / 60 for t, _ in after], [v for _, v in after]
    slope = statistics.linear_regression(ts, vs).slope if len(set(ts)) > 1 else 0.0
    return {
        "base": base,
        "end": end,
        "growth": (end - base) / base if base else 0.0,
        "slope": slope,
    }


def counter(url: str, name: str) -> float:
    """A counter's value from a Prometheus endpoint (0 when unreachable)."""
    with contextlib.suppress(httpx.HTTPError):
        match = re.search(rf"^{name} (\S+)$", httpx.get(url, timeout=5).text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0
    return 0.0


# ----------------------------------------------------------------------------- set-up
def subscription(api_url: str, users: int) -> dict[str, object]:
    """Every queue's observations and ``users`` agents' presence and routing status."""
    state = httpx.get(f"{api_url}/__emulator/state", timeout=30).json()
    token = httpx.post(
        f"{api_url}/oauth/token",
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=30,
    ).json()["access_token"]
    ids: list[str] = []
    page = 1
    while len(ids) < users:
        answer = httpx.get(
            f"{api_url}/api/v2/users",
            params={"pageSize": 500, "pageNumber": page},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        if not answer["entities"]:
            break
        ids += [user["id"] for user in answer["entities"]]
        page += 1
    return {
        "version": 1,
        "subscriptions": [
            {
                "name": "all-queues",
                "queues": [{"id": q["id"]} for q in state["queues"]],
                "metrics": ["oWaiting", "oInteracting", "oOnQueueUsers", "oLongestWaiting"],
                "topics": ["observations"],
            },
            {
                "name": "agents",
                "users": {"ids": ids[:users]},
                "topics": ["presence", "routingStatus"],
            },
        ],
    }


@dataclass
class Pipeline:
    """The running processes, in start order."""

    commands: list[Command] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    producer_metrics: str = ""
    dashboard_metrics: str = ""


def start(args: argparse.Namespace, workdir: Path, run: Pipeline) -> None:
    """Start every process into ``run`` and wait until each is up."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCHEMA_"))}

    def command(name: str, argv: Sequence[str], **env: str) -> Command:
        started = Command(name, argv, {**base, **env}, workdir / f"{name}.log")
        run.commands.append(started)
        return started

    local = command("local up", ["local", "up", "--workdir", str(workdir / "local")])
    kafka = local.wait_for("KAFKA_BOOTSTRAP_SERVERS=", 60)
    registry = local.wait_for("SCHEMA_REGISTRY_URL=", 60)
    emulator = command(
        "emulator",
        ["emulator", "--port", "0", "--queues", str(args.queues), "--agents", str(args.agents),
         "--speed", str(args.speed)],
    )  # fmt: skip
    api_url = emulator.wait_for("GENESYS_API_URL=", 120)
    wallboard = command("wallboard", ["wallboard", "--port", "0"], DASHBOARD_SECRET=SECRET)
    push_url = wallboard.wait_for("DASHBOARD_URL=", 60)
    spec = workdir / "subscription.yaml"
    spec.write_text(yaml.safe_dump(subscription(api_url, args.users), sort_keys=False))
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "SCHEMA_REGISTRY_URL": registry,
        "PIPELINE_TOPIC_PREFIX": PREFIX,
        "PIPELINE_OPS_HOST": "127.0.0.1",
        "PIPELINE_SESSION_TIMEOUT_MS": "2000",  # the local broker joins groups after half
    }
    ports = [free_port() for _ in range(3)]
    run.producer_metrics = f"http://127.0.0.1:{ports[0]}/metrics"
    run.dashboard_metrics = f"http://127.0.0.1:{ports[2]}/metrics"
    command(
        "producer", ["produce", str(spec)], **common, PIPELINE_OPS_PORT=str(ports[0]),
        PIPELINE_AUTO_REGISTER="true", GENESYS_API_URL=api_url,
        GENESYS_CLIENT_ID=DEMO_CLIENT_ID, GENESYS_CLIENT_SECRET=DEMO_CLIENT_SECRET,
    )  # fmt: skip
    _until(
        run, lambda: counter(run.producer_metrics, "genesys_pipeline_records_delivered_total") > 0
    )
    command("freshness", ["worker", "freshness", str(spec)], **common,
            PIPELINE_OPS_PORT=str(ports[1]))  # fmt: skip
    command(
        "dashboard", ["worker", "dashboard", str(spec)], **common,
        PIPELINE_OPS_PORT=str(ports[2]), DASHBOARD_URL=push_url, DASHBOARD_SECRET=SECRET,
    )  # fmt: skip
    _until(
        run,
        lambda: (
            counter(run.dashboard_metrics, "genesys_pipeline_dashboard_values_pushed_total") > 0
        ),
    )
    for cmd in run.commands:
        run.series.append(Series(cmd.name, cmd.proc.pid))
        if cmd.name == "local up":
            for pid in children(cmd.proc.pid):
                exe = Path(f"/proc/{pid}/cmdline").read_text()
                run.series.append(Series("broker" if "tansu" in exe else "registry", pid))


def _until(run: Pipeline, condition: Callable[[], bool], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        for cmd in run.commands:
            if cmd.proc.poll() is not None:
                raise RuntimeError(f"{cmd.name} exited ({cmd.proc.returncode}): {cmd.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not reached in {timeout_s:.0f} s")
        time.sleep(1)


# ----------------------------------------------------------------------------- report
def report(run: Pipeline, warmup_s: float, flows: list[tuple[float, float, float]]) -> bool:
    """Print the growth table; True when every process stayed under the target."""
    print(f"\nafter {warmup_s / 60:g} min of warm-up; base = median of the next minute, end ="
          " median of the last minute; slope = least squares after warm-up")  # fmt: skip
    print(
        f"{'process':<10} {'RSS base':>9} {'RSS end':>8} {'growth':>7} {'MB/min':>7} "
        f"{'peak':>7} {'fds base':>8} {'fds end':>8} {'growth':>7} {'threads':>8}  verdict"
    )
    flat = True
    for s in run.series:
        rss, fds = growth(s.times, s.rss_mb, warmup_s), growth(s.times, s.fds, warmup_s)
        ok = rss["growth"] < TARGET_GROWTH and fds["growth"] < TARGET_GROWTH
        verdict = "flat" if ok else "GROWS"
        if not ok and s.name in GROWS_BY_DESIGN:
            verdict = f"grows by design: {GROWS_BY_DESIGN[s.name]}"
        else:
            flat &= ok
        print(
            f"{s.name:<10} {rss['base']:>7.1f}MB {rss['end']:>6.1f}MB {rss['growth']:>6.1%} "
            f"{rss['slope']:>7.2f} {max(s.rss_mb):>5.1f}MB {fds['base']:>8.0f} {fds['end']:>8.0f} "
            f"{fds['growth']:>6.1%} {s.threads[-1]:>8}  {verdict}"
        )
    if flows:
        (t0, d0, p0), (t1, d1, p1) = flows[0], flows[-1]
        minutes = (t1 - t0) / 60 or 1
        print(
            f"\nflow: {d1:.0f} records delivered to Kafka ({(d1 - d0) / minutes:.0f}/min), "
            f"{p1:.0f} values pushed to the wallboard ({(p1 - p0) / minutes:.0f}/min)"
        )
        last_minute = [d for t, d, _ in flows if t >= t1 - 60]
        if last_minute[-1] <= last_minute[0]:
            # Flat memory means nothing when nothing flowed (e.g. an overloaded emulator).
            print("FLOW STALLED: no record delivered in the last minute; the run proves nothing")
            return False
    return flat


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; returns 0 when every process stayed flat and stopped cleanly."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total run (default 10)")
    parser.add_argument("--warmup-minutes", type=float, default=2.0, help="not measured (2)")
    parser.add_argument("--interval-s", type=float, default=10.0, help="sampling period (10)")
    parser.add_argument("--queues", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=20000)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=4000, help="agents subscribed (4000)")
    parser.add_argument("--csv", type=Path, help="write every sample here")
    args = parser.parse_args(argv)

    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs, load average {os.getloadavg()[0]:.2f}; {args.queues} queues, {args.agents} "
        f"agents, speed {args.speed:g}, {args.users} agents subscribed, {args.minutes:g} min"
    )
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"logs in {workdir}")
    run, flat = Pipeline(), False
    try:
        set_up = time.monotonic()
        start(args, workdir, run)
        print(f"everything up and flowing after {time.monotonic() - set_up:.0f} s")
        flows: list[tuple[float, float, float]] = []
        try:
            sample(run, args, flows)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # one Ctrl-C is enough
            print("interrupted: reporting what was sampled")
        flat = report(run, args.warmup_minutes * 60, flows)
        if args.csv:
            write_csv(args.csv, run)
    finally:
        # A second Ctrl-C must not cut the stop short and leave the processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        clean = stop(run)
    return 0 if flat and clean else 1


def sample(
    run: Pipeline, args: argparse.Namespace, flows: list[tuple[float, float, float]]
) -> None:
    """Sample until ``--minutes`` passed, appending (t, delivered, pushed) to ``flows``."""
    started = time.monotonic()
    while (now := time.monotonic() - started) < args.minutes * 60:
        for s in run.series:
            if not s.sample(now):
                raise RuntimeError(f"{s.name} (pid {s.pid}) is gone")
        delivered = counter(run.producer_metrics, "genesys_pipeline_records_delivered_total")
        pushed = counter(run.dashboard_metrics, "genesys_pipeline_dashboard_values_pushed_total")
        flows.append((now, delivered, pushed))
        rss = "  ".join(f"{s.name} {s.rss_mb[-1]:.0f}MB/{s.fds[-1]}fd" for s in run.series)
        print(f"{now / 60:5.1f} min  delivered {delivered:>9.0f}  pushed {pushed:>8.0f}  {rss}",
              flush=True)  # fmt: skip
        time.sleep(max(0.0, args.interval_s - (time.monotonic() - started - now)))


def stop(run: Pipeline) -> bool:
    """SIGTERM each process, newest first; True when every one exited 0 within 20 s."""
    print("\nstopping (SIGTERM, newest first):")
    clean = True
    for cmd in reversed(run.commands):
        code, took = cmd.stop()
        clean &= code == 0 and took < 20
        print(f"  {cmd.name:<10} exit {code} after {took:.1f} s; log ends: {cmd.log_tail(1)}")
    return clean


def write_csv(path: Path, run: Pipeline) -> None:
    """Every sample: process, seconds, RSS MB, fds, threads."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["process", "seconds", "rss_mb", "fds", "threads"])
        for s in run.series:
            for row in zip(s.times, s.rss_mb, s.fds, s.threads, strict=True):
                writer.writerow([s.name, f"{row[0]:.0f}", f"{row[1]:.1f}", row[2], row[3]])


if __name__ == "__main__":
    raise SystemExit(main())
