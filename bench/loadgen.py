"""The load generators: wrk (HTTP/1.1 keep-alive, bench/wrk_report.lua) and h2load (HTTP/2,
one pre-built gRPC frame). Each run is time-bounded, measures the generator's own CPU (wait4
rusage) and is parsed into one LoadResult with latency percentiles and error counts.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.procs import BenchError, kill_group, pinned, signals_deferred, spawn

LUA = Path(__file__).resolve().parent / "wrk_report.lua"
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
H2LOAD_CONNECTIONS = 8  # conc = 8 connections x conc/8 streams, as the baseline harness
GRACE_S = 30.0  # a run may take this much longer than its duration before it is killed
Tool = Literal["wrk", "h2load"]


@dataclass(frozen=True, slots=True)
class Target:
    tool: Tool
    url: str
    frame: Path | None = None  # h2load: the request body (a length-prefixed gRPC message)
    reply_bytes: int = 0  # h2load: DATA bytes of one OK gRPC reply; fewer means non-OK replies
    headers: tuple[tuple[str, str], ...] = ()  # wrk: extra request headers


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int  # completed, whatever their status
    duration_s: float
    latency_ms: dict[str, float]  # "p50", "p90", "p99", "p99.9"
    errors: dict[str, int]  # kind -> count, only kinds that occurred
    loadgen_cpu_s: float
    concurrency: int  # requests in flight: connections x streams per connection

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def split_concurrency(concurrency: int) -> tuple[int, int]:
    """(connections, streams per connection) of h2load for `concurrency` requests in flight."""
    connections = min(H2LOAD_CONNECTIONS, concurrency)
    return connections, max(1, concurrency // connections)


def run_load(target: Target, concurrency: int, duration_s: float, cpu: int | None,
             log: Path) -> LoadResult:
    """One run of target.tool for duration_s at `concurrency`, the generator pinned to `cpu`."""
    if target.tool == "wrk":
        argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration_s:g}s", "--timeout", "5s",
                *(arg for k, v in target.headers for arg in ("-H", f"{k}: {v}")),
                "-s", str(LUA), target.url]
        code, output, cpu_s = run_bounded(argv, log, cpu, duration_s + GRACE_S)
        if code != 0:
            raise BenchError(f"wrk exited with {code}:\n{output[-2000:]}")
        return parse_wrk(output, cpu_s, concurrency)
    if target.frame is None:
        raise BenchError("an h2load target needs a request frame")
    connections, streams = split_concurrency(concurrency)
    requests_log = log.with_suffix(".requests.tsv")
    argv = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", "-D", f"{duration_s:g}",
            "-d", str(target.frame), "-H", "content-type: application/grpc",
            "-H", "te: trailers", f"--log-file={requests_log}", target.url]
    code, output, cpu_s = run_bounded(argv, log, cpu, duration_s + GRACE_S)
    if code != 0:
        raise BenchError(f"h2load exited with {code}:\n{output[-2000:]}")
    return parse_h2load(output, requests_log.read_text(), target.reply_bytes, cpu_s,
                        connections * streams)


def run_bounded(argv: Sequence[str], log: Path, cpu: int | None,
                limit_s: float) -> tuple[int, str, float]:
    """Run argv (own process group, output to `log`) for at most limit_s seconds.

    Returns (exit code, output, CPU seconds it used from its wait4 rusage). The process group
    is killed when the limit passes or the caller is interrupted.
    """
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = spawn(pinned(argv, cpu), log)  # inside the try: the finally kills it
        deadline = time.monotonic() + limit_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{argv[0]} still running after {limit_s:.0f} s; killed")
            time.sleep(0.05)
    finally:
        if proc is not None and proc.returncode is None:
            with signals_deferred():
                kill_group(proc, signal.SIGKILL)
                proc.wait()
    return proc.returncode, log.read_text(errors="replace"), usage.ru_utime + usage.ru_stime


def parse_wrk(output: str, cpu_s: float, concurrency: int) -> LoadResult:
    match = re.search(r"^BENCH-WRK (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk printed no BENCH-WRK line (is {LUA.name} in use?):\n{output}")
    report = json.loads(match.group(1))
    errors = {kind: int(report[kind])
              for kind in ("non2xx", "connect", "read", "write", "timeout") if report[kind]}
    return LoadResult(
        requests=int(report["requests"]),
        duration_s=report["duration_us"] / 1e6,
        latency_ms={f"p{p:g}": report[f"p{p:g}_us"] / 1000 for p in PERCENTILES},
        errors=errors,
        loadgen_cpu_s=cpu_s,
        concurrency=concurrency,
    )


def parse_h2load(output: str, requests_log: str, reply_bytes: int, cpu_s: float,
                 concurrency: int) -> LoadResult:
    """h2load's summary plus its --log-file (one line per request: start µs, status, µs)."""
    counts = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout", output)
    finished = re.search(r"finished in ([\d.]+)(us|ms|s),", output)
    data = re.search(r"\((\d+)\) data", output)
    if counts is None or finished is None or data is None:
        raise BenchError(f"cannot parse h2load's summary:\n{output}")
    done, succeeded, failed, errored, timeout = (int(counts.group(i)) for i in range(3, 8))
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[finished.group(2)]
    durations: list[int] = []
    non2xx = 0
    for line in requests_log.splitlines():
        _start, status, took = line.split("\t")
        durations.append(int(took))
        if not 200 <= int(status) <= 299:
            non2xx += 1
    errors = {"failed": failed, "errored": errored, "timeout": timeout, "non2xx": non2xx}
    if reply_bytes:
        # A non-OK gRPC reply is trailers-only (HTTP 200, no DATA): count the missing replies.
        errors["grpc_not_ok"] = max(0, succeeded - int(data.group(1)) // reply_bytes)
    return LoadResult(
        requests=done,
        duration_s=float(finished.group(1)) * scale,
        latency_ms=percentiles_ms(durations),
        errors={kind: count for kind, count in errors.items() if count},
        loadgen_cpu_s=cpu_s,
        concurrency=concurrency,
    )


def percentiles_ms(durations_us: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles of PERCENTILES, in ms (NaN without samples)."""
    ordered = sorted(durations_us)
    if not ordered:
        return {f"p{p:g}": math.nan for p in PERCENTILES}
    return {f"p{p:g}": ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1000
            for p in PERCENTILES}
