"""The benchmark runner's parts without load generators: parsing wrk and h2load output, the
summary and ratios, the Markdown summary, process-tree CPU and pinning, --delay, the plot."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.loadgen import LoadResult, parse_h2load, parse_wrk
from bench.plot import plot
from bench.procs import (
    BenchError,
    affinity,
    cpu_seconds,
    peak_rss_bytes,
    pin_tree,
    pinned,
    process_tree,
    tree_cpu_seconds,
    tree_peak_rss_bytes,
)
from bench.report import (
    LOADGEN,
    MIB,
    ROW_COLUMNS,
    RUNNER,
    Measurement,
    Row,
    format_markdown,
    format_rows,
    ratios,
    summarize,
)
from bench.run import command_line
from services.cli import UnservedMethod, inject_delays, main, parse_delay
from services.server import DEMO
from tests.services.running import running, stub
from users.v1 import users_pb2, users_pb2_grpc

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:42895/v1/dashboard/overview
  1 threads and 32 connections
  273 requests in 2.02s, 642.55KB read
Requests/sec:    134.98
BENCH-WRK {"requests": 273, "duration_us": 2022590, "bytes": 657975, "non2xx": 0, \
"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0, "p50_us": 205467.0, \
"p90_us": 270533.0, "p99_us": 338674.0, "p99.9_us": 345395.0, "max_us": 345395.0}
"""
H2LOAD_OUTPUT = """\
starting benchmark...
Application protocol: h2c

finished in 5.00s, 2335.00 req/s, 524.81KB/s
requests: 5 total, 7 started, 5 done, 5 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 5 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 2.56MB (2687032) total, 34.79KB (35625) headers (space savings 96.23%), 855B ({data}) data
"""
H2LOAD_REQUESTS = "1795372008489887\t200\t1816\n1795372008489890\t200\t2687\n" \
    "1795372008489891\t200\t3137\n1795372008489895\t200\t4000\n1795372008489899\t200\t90000\n"
REPLY_BYTES = 171  # one OK GetUser reply: 5-byte prefix + the User


def test_parse_wrk_reads_the_report_line() -> None:
    result = parse_wrk(WRK_OUTPUT, cpu_s=0.25, concurrency=32)
    assert result == LoadResult(
        requests=273, duration_s=2.02259,
        latency_ms={"p50": 205.467, "p90": 270.533, "p99": 338.674, "p99.9": 345.395},
        errors={}, loadgen_cpu_s=0.25, concurrency=32)
    assert result.rps == pytest.approx(273 / 2.02259)


def test_parse_wrk_counts_non_2xx_and_socket_errors() -> None:
    output = WRK_OUTPUT.replace('"non2xx": 0', '"non2xx": 3').replace('"timeout": 0',
                                                                    '"timeout": 1')
    result = parse_wrk(output, cpu_s=0.0, concurrency=1)
    assert result.errors == {"non2xx": 3, "timeout": 1}
    assert result.error_count == 4


def test_parse_wrk_without_the_report_line_is_an_error() -> None:
    with pytest.raises(BenchError, match="BENCH-WRK"):
        parse_wrk(WRK_OUTPUT.split("BENCH-WRK")[0], cpu_s=0.0, concurrency=1)


def test_parse_h2load_takes_percentiles_from_the_request_log() -> None:
    output = H2LOAD_OUTPUT.replace("{data}", str(5 * REPLY_BYTES))
    result = parse_h2load(output, H2LOAD_REQUESTS, REPLY_BYTES, cpu_s=0.5, concurrency=32)
    assert (result.requests, result.duration_s, result.errors) == (5, 5.0, {})
    # nearest rank over 1816, 2687, 3137, 4000, 90000 µs
    assert result.latency_ms == {"p50": 3.137, "p90": 90.0, "p99": 90.0, "p99.9": 90.0}


def test_parse_h2load_counts_non_ok_grpc_replies_and_http_errors() -> None:
    # a non-OK gRPC reply is trailers-only: one reply's DATA short
    output = H2LOAD_OUTPUT.replace("{data}", str(4 * REPLY_BYTES))
    requests = H2LOAD_REQUESTS.replace("\t200\t4000", "\t503\t4000")
    result = parse_h2load(output, requests, REPLY_BYTES, cpu_s=0.5, concurrency=32)
    assert result.errors == {"grpc_not_ok": 1, "non2xx": 1}


def _measurement(scenario: str, concurrency: int, repetition: int, rps: float, p50_ms: float,
                 cpu_s: float = 1.0, errors: dict[str, int] | None = None) -> Measurement:
    wall_s = 10.0
    load = LoadResult(requests=int(rps * wall_s), duration_s=wall_s,
                      latency_ms={"p50": p50_ms, "p90": 1.5 * p50_ms, "p99": 2 * p50_ms,
                                  "p99.9": 3 * p50_ms},
                      errors=errors or {}, loadgen_cpu_s=2.0, concurrency=concurrency)
    return Measurement(
        scenario=scenario, concurrency=concurrency, repetition=repetition, under_test="gateway",
        load=load, wall_s=wall_s,
        cpu_s={"gateway": cpu_s, "backend": 3.0, LOADGEN: 2.0, RUNNER: 0.1},
        peak_rss={"gateway": 60 * MIB, "backend": 40 * MIB},
        cpu_of={"gateway": 1, "backend": 0, LOADGEN: 0, RUNNER: 0},
        host={0: (5.1, 0.0), 1: (cpu_s, 0.0)}, processes={"gateway": 3, "backend": 1})


MEASUREMENTS = [
    # rest-a: 1000 and 1200 req/s at c=1; rest-b: 800 and 1000: ratios 1.25 and 1.2
    _measurement("rest-a", 1, 0, 1000, 1.0, cpu_s=5.0),
    _measurement("rest-b", 1, 0, 800, 2.0, cpu_s=4.0),
    _measurement("rest-a", 1, 1, 1200, 0.9, cpu_s=6.0),
    _measurement("rest-b", 1, 1, 1000, 1.8, cpu_s=5.0),
    _measurement("rest-a", 32, 0, 5000, 6.0),
    _measurement("rest-b", 32, 0, 4000, 8.0),
    _measurement("rest-a", 32, 1, 5100, 6.1),
    _measurement("rest-b", 32, 1, 3900, 8.2, errors={"non2xx": 7}),
]


def _rows() -> list[Row]:
    return summarize(MEASUREMENTS, ["rest-a", "rest-b"], [1, 32], {})


def test_summary_takes_medians_and_a_row_with_errors_fails() -> None:
    rows = {(row.scenario, row.concurrency): row for row in _rows()}
    a1 = rows["rest-a", 1]
    assert a1.failed is None
    rps = a1.spread(lambda m: m.load.rps)
    assert (rps.median, rps.low, rps.high) == (1100, 1000, 1200)
    assert a1.as_json()["peak_rss_mib"] == {"median": 60.0, "min": 60.0, "max": 60.0}
    assert rows["rest-b", 32].failed == "errors in 1/2 runs: non2xx=7"
    assert "FAILED: errors in 1/2 runs: non2xx=7" in format_rows(_rows())


def test_ratios_pair_repetitions_and_skip_failed_rows() -> None:
    found = ratios(_rows(), [("rest-a", "rest-b"), ("rest-a", "missing")])
    assert [(r.numerator, r.denominator, r.concurrency) for r in found] == [
        ("rest-a", "rest-b", 1)]  # c=32 of rest-b FAILED: no ratio there
    metrics = found[0].metrics
    assert metrics["rps"].low == pytest.approx(1.2) and metrics["rps"].high == pytest.approx(1.25)
    assert metrics["rps"].median == pytest.approx(1.225)
    assert metrics["p50"].median == pytest.approx((0.5 + 0.5) / 2)
    # CPU µs per request: 5 s / 10000 vs 4 s / 8000 and 6 s / 12000 vs 5 s / 10000
    assert metrics["cpu_per_request"].median == pytest.approx(1.0)


def test_markdown_summary_has_the_context_tables_and_warnings() -> None:
    rows = _rows()
    document = {
        "date": "2026-01-02T03:04:05+00:00", "command": ".venv/bin/python -m bench --quick",
        "interrupted": False,
        "options": {"concurrency": [1, 32], "duration_s": 10.0, "warmup_s": 2.0, "repeat": 2,
                    "layout": "isolated"},
        "git": {"commit": "0123abcd", "dirty": True},
        "machine": {"nproc": 2, "cpu_model": "Test CPU", "kernel": "6.1.0"},
        "versions": {"python": "3.11.7", "wrk": "wrk 4.1.0"},
        "warnings": ["rest-a c=32: cpu0 saturated"],
    }
    text = format_markdown(document, rows, ratios(rows, [("rest-a", "rest-b")]))
    assert "- commit: `0123abcd` (dirty: uncommitted changes)" in text
    assert "- machine: 2 CPUs, Test CPU, Linux 6.1.0" in text
    assert "- versions: python 3.11.7, wrk 4.1.0" in text
    assert "- command: `.venv/bin/python -m bench --quick`" in text
    assert "layout `isolated`, concurrency 1,32, 2 x 10 s per measurement (+2 s warm-up)" in text
    assert "- rest-a c=32: cpu0 saturated" in text
    table = [line for line in text.splitlines() if line.startswith(("| rest-a |", "| rest-b |"))]
    assert [line.count("|") for line in table] == [len(ROW_COLUMNS) + 1] * 4
    assert table[0].startswith("| rest-a | 1 | 1100 (1000-1200) | 0.95 | 1.90 | 2.85 | 500 |")
    assert "| rest-b | 32 | FAILED: errors in 1/2 runs: non2xx=7 |" in text
    assert "| rest-a / rest-b | 1 | 1.23 [1.20-1.25] | 0.50 [0.50-0.50] |" in text


def test_command_line_is_the_one_to_type_again() -> None:
    line = command_line(["--scenarios", "rest-gateway", "--concurrency", "1,32"])
    assert line.endswith("-m bench --scenarios rest-gateway --concurrency 1,32")


BURN = """\
import sys, time
while time.process_time() < 0.2:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""
PARENT = f"""\
import subprocess, sys
kids = [subprocess.Popen([sys.executable, "-c", {BURN!r}], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True) for _ in range(2)]
for kid in kids:
    assert kid.stdout.readline() == "burnt\\n"
print(" ".join(str(kid.pid) for kid in kids), flush=True)
sys.stdin.read()
for kid in kids:
    kid.stdin.close()
    kid.wait()
"""


def _parent(cpu: int | None) -> subprocess.Popen[str]:
    return subprocess.Popen(pinned([sys.executable, "-c", PARENT], cpu),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _stop(parent: subprocess.Popen[str]) -> None:
    assert parent.stdin is not None and parent.stdout is not None
    parent.stdin.close()  # the parent closes its children's pipes and waits for them
    assert parent.wait(30) == 0
    parent.stdout.close()


def test_process_tree_sums_cpu_and_peak_rss_over_children() -> None:
    parent = _parent(None)
    try:
        assert parent.stdout is not None
        kids = [int(pid) for pid in parent.stdout.readline().split()]
        pids = process_tree(parent.pid)
        assert pids[0] == parent.pid and sorted(pids[1:]) == sorted(kids)
        alone = cpu_seconds(parent.pid)
        total = tree_cpu_seconds(pids)
        assert total >= alone + 2 * 0.2 - 0.02  # each child burnt 0.2 s (clock ticks: 10 ms)
        assert total == pytest.approx(sum(cpu_seconds(pid) for pid in pids))
        assert tree_peak_rss_bytes(pids) == sum(peak_rss_bytes(pid) for pid in pids)
        assert tree_peak_rss_bytes(pids) > peak_rss_bytes(parent.pid)
    finally:
        _stop(parent)
    with pytest.raises(BenchError, match="exited"):
        tree_cpu_seconds(pids)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_children_forked_after_a_pinned_start_inherit_the_cpu_and_pin_tree_checks_all() -> None:
    cpu = max(os.sched_getaffinity(0))
    parent = _parent(cpu)  # pinned from exec, as Fleet starts a process; it forks later
    try:
        assert parent.stdout is not None
        parent.stdout.readline()
        pids = process_tree(parent.pid)
        assert len(pids) == 3
        assert all(cpus == {cpu} for pid in pids for cpus in affinity(pid).values())
        assert pin_tree(pids, cpu) == 0  # nothing had escaped
    finally:
        _stop(parent)


def test_parse_delay_reads_method_and_seconds() -> None:
    assert parse_delay("/users.v1.Users/GetUser=0.05") == ("/users.v1.Users/GetUser", 0.05)
    assert parse_delay("orders.v1.Orders/ListOrders=1") == ("/orders.v1.Orders/ListOrders", 1.0)
    for bad in ("GetUser=1", "/users.v1.Users/GetUser", "/users.v1.Users/GetUser=soon",
                "/users.v1.Users/GetUser=-1", "/users.v1.Users/GetUser=nan", "/a/b/c=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_delay(bad)


def test_bad_delay_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(DEMO, ["--delay", "/users.v1.Users/GetUser=later"])
    assert exit_.value.code == 2


async def test_delays_go_to_the_backend_serving_the_method() -> None:
    async with running("users") as backend:
        with pytest.raises(UnservedMethod, match="ListOrders"):
            inject_delays([backend], {"/orders.v1.Orders/ListOrders": 0.1})
        with pytest.raises(UnservedMethod, match="NoSuchMethod"):
            inject_delays([backend], {"/users.v1.Users/NoSuchMethod": 0.1})
        inject_delays([backend], {"/users.v1.Users/GetUser": 0.2})
        async with stub(backend, users_pb2_grpc.UsersStub) as users:
            started = time.monotonic()
            user = await users.GetUser(users_pb2.GetUserRequest(id="u-1001"), timeout=10)
            assert time.monotonic() - started >= 0.19
        assert user.id == "u-1001"


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [*_rows(), *summarize(
        [_measurement("grpc-a", c, 0, rps, p50) for c, rps, p50 in
         ((1, 3000, 0.3), (32, 12000, 2.5))], ["grpc-a"], [1, 32], {})]
    path = tmp_path / "results.png"
    plot(rows, path, "2026-01-02, commit 0123abcd")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_plot_without_a_successful_row_still_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    failed = summarize([], ["rest-a"], [1], {("rest-a", None): "did not start"})
    path = tmp_path / "results.png"
    plot(failed, path)
    assert path.read_bytes().startswith(b"\x89PNG")
