"""The pure parts of the memory benchmarks (bench.idle, bench.soak, bench.memory): per-connection
cost, HTTP/1.1 response heads, /proc/net/tcp rows, line fits, RSS growth, h2load arguments and
h2load --h1 output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.idle import EdgeResult, parse_head, per_connection_kib
from bench.loadgen import Target, parse_h2load
from bench.memory import established_rows, linear_slope
from bench.procs import BenchError
from bench.soak import Growth, Sample, growth, paced_argv, warmup_for

MIB = 1024 * 1024

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0
   3: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0
   3: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0
   4: 0100007F:1F90 0100007F:C352 08 00000000:00000000 00:00000000 00000000     0        0 5 1 0
   5: 0100007F:1F91 0100007F:C353 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C354 01 00000000
"""

H2LOAD_H1 = """\
starting benchmark...
spawning thread #0: 32 total client(s). Timing-based test with 0s of warm-up time and 60s of \
main duration for measurements.
Application protocol: http/1.1
finished in 60.01s, 493.60 req/s, 319.98KB/s
requests: 29616 total, 29648 started, 29616 done, 29616 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 29616 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 18.75MB (19659795) total, 6.38MB (6687987) headers (space savings 0.00%), 11.04MB \
(11579856) data
"""


def test_per_connection_cost_is_the_rss_added_per_connection_in_kib() -> None:
    assert per_connection_kib(100 * MIB, 110 * MIB, 1000) == pytest.approx(10.24)
    assert per_connection_kib(100 * MIB, 99 * MIB, 1024) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        per_connection_kib(0, 1, 0)


def test_edge_result_fits_its_checkpoints_and_judges_the_idle_rss() -> None:
    checkpoints = tuple((n, 80 * MIB + n * 16 * 1024) for n in range(0, 1001, 100))
    result = EdgeResult("rest", 1000, 80 * MIB, 80 * MIB + 1000 * 16 * 1024, 96 * MIB,
                        checkpoints, 5.0)
    assert result.fit_kib == pytest.approx(16.0)
    assert result.per_connection_kib == pytest.approx(16.0)
    assert result.passed
    assert result.as_json()["verdict"] == "PASS"
    over = EdgeResult("grpc", 1000, 80 * MIB, 150 * MIB + 1, 151 * MIB, checkpoints, 5.0)
    assert not over.passed
    assert over.as_json()["verdict"] == "MISS"


def test_parse_head_reads_status_and_content_length() -> None:
    head = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\ncontent-length:  27"
    assert parse_head(head) == (404, 27)
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0") == (200, 0)


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain",
    b"SSH-2.0-OpenSSH_9.2",
    b"HTTP/1.1 OK",
])
def test_parse_head_refuses_what_it_cannot_read(head: bytes) -> None:
    with pytest.raises(BenchError):
        parse_head(head)


def test_established_rows_count_each_server_side_connection_once() -> None:
    # Port 0x1F90: a listener (0A), two established (one printed twice), one in CLOSE_WAIT
    # (08); the client side of a connection to it and another port's connection do not count.
    assert len(established_rows(TCP, 0x1F90)) == 2
    # Two reads joined (one of them missing a row) and IPv4-mapped IPv6 (grpc's sockets).
    assert len(established_rows(TCP + TCP.replace("C350", "C35F") + TCP6, 0x1F90)) == 4
    assert len(established_rows(TCP, 0x1F91)) == 1
    assert len(established_rows(TCP, 0xC350)) == 1
    assert established_rows(TCP, 80) == set()
    assert established_rows(TCP6, 0x1F90) == {
        ("0000000000000000FFFF00000100007F:1F90", "0000000000000000FFFF00000100007F:C354")}


def test_linear_slope() -> None:
    assert linear_slope([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(2.0)
    assert linear_slope([0, 1, 2, 3], [5, 5, 5, 5]) == 0.0
    assert linear_slope([0, 1, 2, 3], [0, 1, 0, 1]) == pytest.approx(0.2)
    assert linear_slope([1], [4]) == 0.0
    assert linear_slope([2, 2], [1, 9]) == 0.0
    with pytest.raises(ValueError):
        linear_slope([1, 2], [1])


def _samples(rss_mib: list[float], every_s: float = 10.0) -> list[Sample]:
    return [Sample(i * every_s, round(r * MIB), i * every_s * 0.5) for i, r in enumerate(rss_mib)]


def test_growth_is_measured_from_the_first_sample_after_warm_up() -> None:
    # Warm-up to 100 MiB within 60 s, then +1 MiB/min for 9 minutes: +9 %, a MISS.
    samples = _samples([60, 90, 99, 120, 100, 100] + [100 + m / 6 for m in range(0, 55)])
    figures = growth(samples, 60.0)
    assert figures.warm.t_s == 60.0 and figures.warm.rss == 100 * MIB
    assert figures.end.t_s == 600.0
    assert figures.max_rss == round(120 * MIB)  # in the warm-up
    assert figures.slope_mib_per_min == pytest.approx(1.0)
    assert figures.end_pct == pytest.approx(9.0, abs=0.01)
    assert figures.fit_pct == pytest.approx(9.0, abs=0.01)
    assert figures.cores == pytest.approx(0.5)
    assert not figures.passed
    assert figures.as_json()["verdict"] == "MISS"


def test_flat_rss_passes_and_either_measure_over_the_limit_misses() -> None:
    flat = growth(_samples([50, 100, 100.5, 100, 100.5, 100.2]), 10.0)
    assert flat.end_pct == pytest.approx(0.2)
    assert flat.passed
    warm, end = Sample(60.0, 100 * MIB, 0.0), Sample(600.0, 100 * MIB, 1.0)
    # The end sample alone is flat (a collection just ran) but the fitted line climbs 1 MiB/min.
    assert not Growth(60.0, warm, end, 110 * MIB, 1.0, 0.5).passed
    assert Growth(60.0, warm, end, 110 * MIB, 0.5, 0.5).passed  # +4.5 % over 9 min


def test_growth_needs_two_samples_after_warm_up() -> None:
    with pytest.raises(BenchError):
        growth(_samples([90, 95, 100]), 20.0)


def test_warm_up_is_a_minute_or_a_quarter_of_a_short_run() -> None:
    assert warmup_for(600.0) == 60.0
    assert warmup_for(60.0) == 15.0


def test_paced_argv_spreads_the_rate_over_the_clients() -> None:
    rest = Target("wrk", "http://127.0.0.1:8080/v1/users/u-1001",
                  headers=(("x-api-key", "k"),))
    argv = paced_argv(rest, 32, 2000.0, 600.0, Path("/tmp/r.tsv"))
    assert argv[0] == "h2load" and argv[-1] == rest.url
    assert "--h1" in argv and "--rps=62.500" in argv and "-c32" in argv and "-m1" in argv
    assert argv[argv.index("-D") + 1] == "600"
    assert argv[argv.index("-H") + 1] == "x-api-key: k"
    assert "--log-file=/tmp/r.tsv" in argv
    grpc = Target("h2load", "http://127.0.0.1:8081/users.v1.Users/GetUser",
                  Path("/tmp/frame"), 30)
    argv = paced_argv(grpc, 8, 100.0, 60.0, Path("/tmp/r.tsv"))
    assert "--h1" not in argv and "--rps=12.500" in argv
    assert argv[argv.index("-d") + 1] == "/tmp/frame"
    assert "content-type: application/grpc" in argv
    with pytest.raises(BenchError):
        paced_argv(Target("h2load", grpc.url), 8, 100.0, 60.0, Path("/tmp/r.tsv"))


def test_h2load_h1_output_parses_with_requests_still_in_flight_not_counted() -> None:
    requests_log = "1\t200\t5000\n2\t200\t7000\n3\t503\t9000\n"
    result = parse_h2load(H2LOAD_H1, requests_log, 0, 1.5, 32)
    assert result.requests == 29616  # done, not started
    assert result.duration_s == pytest.approx(60.01)
    assert result.errors == {"non2xx": 1}
    assert result.latency_ms["p50"] == pytest.approx(7.0)
