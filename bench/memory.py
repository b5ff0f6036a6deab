"""Shared by the memory benchmarks (bench.idle, bench.soak): start a scenario's processes in
the runner's layout, read RSS from /proc, count established connections, fit a line, write
the results file.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from bench.procs import (
    BenchError,
    Fleet,
    Running,
    reset_peak_rss,
)
from bench.report import MIB, RUNNER, Measurement, Row
from bench.run import ROOT, cpu_for, environment, start_all
from bench.scenarios import Scenario

OUT = ROOT / "bench" / "out"
TCP_ESTABLISHED = "01"  # the st column of /proc/net/tcp


def choose_layout() -> str:
    """`isolated` (process under test alone on cpu1, the rest on cpu0) when both CPUs are
    ours, else `shared`; pins this process (the runner) accordingly."""
    if not {0, 1} <= os.sched_getaffinity(0):
        print("bench: cpu0 and cpu1 are not both available; layout isolated -> shared",
              file=sys.stderr)
        return "shared"
    runner_cpu = cpu_for("isolated", RUNNER, "")
    if runner_cpu is not None:
        os.sched_setaffinity(0, {runner_cpu})
    return "isolated"


def guarded(prog: str, body: Callable[[str], int]) -> int:
    """Choose the layout (pinning this process), let SIGTERM/SIGHUP interrupt, and run
    body(layout): a BenchError exits 1 as FAILED, an interrupt 130. Every Fleet has stopped
    its processes by then."""
    layout = choose_layout()
    interrupt_on_signals()
    try:
        return body(layout)
    except BenchError as exc:
        print(f"{prog}: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; every started process was stopped", file=sys.stderr)
        return 130


def interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so every Fleet stops."""

    def interrupt(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def start(fleet: Fleet, scenario: Scenario, layout: str, label: str) -> dict[str, int]:
    """Start the scenario's processes into `fleet` as bench.run does (logs in bench/out/logs,
    named `label`.role.log); returns "<role>.<port name>" -> port."""
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    return start_all(fleet, scenario, layout, OUT, label)


def warnings(measurement: Measurement, layout: str) -> list[str]:
    """bench.run's warnings for one measurement: cpu0 saturated, other work on the host."""
    return Row(measurement.scenario, measurement.concurrency, (measurement,),
               None).warnings(layout)


def under_test(fleet: Fleet, scenario: Scenario) -> Running:
    return next(r for r in fleet.running if r.role == scenario.under_test)


def alive(fleet: Fleet) -> None:
    """Raise when a process of the fleet has exited."""
    for running in fleet.running:
        if running.proc.poll() is not None:
            raise BenchError(f"{running.role} exited with {running.proc.returncode}; "
                             f"see {running.log}")


def status_bytes(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"/proc/{pid}/status has no {field}")


def tree_rss_bytes(pids: Sequence[int]) -> int:
    """VmRSS summed over the processes (serve --workers N: an upper bound, shared pages
    count once per process); the tree of a single process is that process."""
    return sum(status_bytes(pid, "VmRSS") for pid in pids)


def reset_peak_rss_tree(pids: Sequence[int]) -> None:
    for pid in pids:
        reset_peak_rss(pid)


def raise_nofile(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise BenchError(f"need {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def established(port: int) -> int:
    """Established TCP connections whose local port is `port`: the server's side. IPv6 too:
    grpc listens on 127.0.0.1 with a dual-stack socket (::ffff:127.0.0.1 in tcp6). The
    kernel prints these tables in chunks, so a row may be missed or come twice when other
    sockets come and go meanwhile: two reads, distinct connections of both."""
    texts = [Path(f"/proc/net/{table}").read_text() for _ in range(2) for table in ("tcp", "tcp6")]
    return len(established_rows("\n".join(texts), port))


def established_rows(proc_net_tcp: str, port: int) -> set[tuple[str, str]]:
    """(local, remote) address of each row of /proc/net/tcp or tcp6 text in state
    ESTABLISHED with local port `port`; header lines are skipped."""
    seen = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == TCP_ESTABLISHED and ":" in fields[1]:
            if int(fields[1].rpartition(":")[2], 16) == port:
                seen.add((fields[1], fields[2]))
    return seen


def linear_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (0.0 with fewer than two distinct xs)."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("xs and ys differ in length")
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def mib(nbytes: float) -> float:
    return nbytes / MIB


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write `document` plus the git commit, machine and versions as JSON to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**document, **environment()}, indent=2) + "\n")
    print(f"wrote {path}")
