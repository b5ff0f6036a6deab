"""`python -m bench.idle [--connections 1000] [--scenario rest-gateway]`: the RSS of the process
under test holding N idle keep-alive connections (REST: HTTP/1.1, gRPC: HTTP/2), each used
once, against its RSS before them; target <= 150 MiB. Results in bench/out/idle.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from bench.check import REST_PATH, TIMEOUT_S, expected_user, get_user, request_message
from bench.memory import (
    OUT,
    alive,
    established,
    guarded,
    linear_slope,
    mib,
    raise_nofile,
    reset_peak_rss_tree,
    start,
    tree_rss_bytes,
    under_test,
    write_results,
)
from bench.procs import LOOPBACK, BenchError, Fleet, tree_peak_rss_bytes
from bench.scenarios import SCENARIOS, Scenario

TARGET_MIB = 150.0
WARMUP_REQUESTS = 200  # on one connection, closed again, before the baseline is read
CHECKPOINTS = 10  # RSS readings while the connections are opened
GRPC_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)  # one channel = its own connection
EDGES = ("rest", "grpc")  # port names of the process under test that are measured


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EdgeResult:
    edge: str  # "rest" or "grpc"
    connections: int
    baseline_rss: int  # bytes, after the warm-up and before the connections
    idle_rss: int  # bytes, with every connection open and idle
    peak_rss: int  # VmHWM since the baseline
    checkpoints: tuple[tuple[int, int], ...]  # (connections open, VmRSS bytes)
    idle_s: float

    @property
    def per_connection_kib(self) -> float:
        return per_connection_kib(self.baseline_rss, self.idle_rss, self.connections)

    @property
    def fit_kib(self) -> float:
        """Slope of RSS over connections opened (KiB per connection), from the checkpoints."""
        return linear_slope([c for c, _ in self.checkpoints],
                            [rss for _, rss in self.checkpoints]) / 1024

    @property
    def passed(self) -> bool:
        return mib(self.idle_rss) <= TARGET_MIB

    def as_json(self) -> dict[str, Any]:
        return {"edge": self.edge, "connections": self.connections, "idle_s": self.idle_s,
                "baseline_rss_mib": round(mib(self.baseline_rss), 2),
                "idle_rss_mib": round(mib(self.idle_rss), 2),
                "peak_rss_mib": round(mib(self.peak_rss), 2),
                "per_connection_kib": round(self.per_connection_kib, 2),
                "per_connection_fit_kib": round(self.fit_kib, 2),
                "target_mib": TARGET_MIB, "verdict": "PASS" if self.passed else "MISS",
                "checkpoints": [{"connections": c, "rss_mib": round(mib(rss), 2)}
                                for c, rss in self.checkpoints]}


def per_connection_kib(baseline_rss: int, loaded_rss: int, connections: int) -> float:
    """What each connection added to RSS, in KiB."""
    if connections < 1:
        raise ValueError("need at least one connection")
    return (loaded_rss - baseline_rss) / connections / 1024


def parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of an HTTP/1.1 response head (without the blank line)."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BenchError(f"not an HTTP/1.1 status line: {status_line!r}")
    length = None
    for line in lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "transfer-encoding":
            raise BenchError(f"transfer-encoding {value.strip()} is not read here")
        if name == "content-length":
            length = int(value)
    if length is None:
        raise BenchError("the response has no Content-Length")
    return int(parts[1]), length


class RestClient:
    """Raw sockets: a fixed GET request, the response read by Content-Length and checked."""

    def __init__(self, port: int, path: str, headers: Sequence[tuple[str, str]],
                 expected: Message) -> None:
        self.address = (LOOPBACK, port)
        self.path = path
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n{extra}"
                        "Accept: application/json\r\n\r\n").encode()
        self.expected = json_format.MessageToDict(expected)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=TIMEOUT_S)
        try:
            self.exchange(sock)
        except BaseException:
            sock.close()
            raise
        return sock

    def exchange(self, sock: socket.socket) -> None:
        sock.sendall(self.request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += self._recv(sock)
        head, _, body = buffer.partition(b"\r\n\r\n")
        status, length = parse_head(head)
        while len(body) < length:
            body += self._recv(sock)
        if len(body) != length:
            raise BenchError(f"GET {self.path}: {len(body) - length} bytes beyond the body")
        if status != 200:
            raise BenchError(f"GET {self.path}: HTTP {status}: {body[:300]!r}")
        try:
            got = json.loads(body)
        except ValueError:
            got = None
        if got != self.expected:
            raise BenchError(f"GET {self.path}: body differs from the expected reply: "
                             f"{body[:300]!r}")

    def warm_up(self, requests: int) -> None:
        with self.connect() as sock:
            for _ in range(requests - 1):
                self.exchange(sock)

    def _recv(self, sock: socket.socket) -> bytes:
        data = sock.recv(65536)
        if not data:
            raise BenchError(f"GET {self.path}: the server closed the connection")
        return data


class GrpcClient:
    """One grpc channel per connection (a local subchannel pool, so channels share nothing),
    GetUser on it; a call that returns is grpc-status 0, the reply must be the User."""

    def __init__(self, port: int, metadata: Sequence[tuple[str, str]]) -> None:
        self.target = f"{LOOPBACK}:{port}"
        self.payload = request_message().SerializeToString()
        self.metadata = tuple(metadata)

    def connect(self) -> grpc.Channel:
        channel = grpc.insecure_channel(self.target, options=GRPC_OPTIONS)
        try:
            self.exchange(channel)
        except BaseException:
            channel.close()
            raise
        return channel

    def exchange(self, channel: grpc.Channel) -> None:
        get_user(channel, self.payload, self.target, self.metadata)

    def warm_up(self, requests: int) -> None:
        with self.connect() as channel:
            for _ in range(requests - 1):
                self.exchange(channel)


def measure(edge: str, pids: Sequence[int], port: int, connections: int, idle_s: float,
            connect: Callable[[], Closeable]) -> EdgeResult:
    """Baseline RSS of the processes `pids`, then open `connections` (each used once by
    `connect`), hold them idle for idle_s and read RSS and VmHWM; the server must still hold
    every one of them."""
    baseline = tree_rss_bytes(pids)
    reset_peak_rss_tree(pids)
    checkpoints = [(0, baseline)]
    step = max(1, connections // CHECKPOINTS)
    held: list[Closeable] = []
    try:
        for opened in range(1, connections + 1):
            held.append(connect())
            if opened % step == 0 or opened == connections:
                checkpoints.append((opened, tree_rss_bytes(pids)))
        _require_open(edge, port, connections, "after opening")
        time.sleep(idle_s)  # the measured state: connections idle for idle_s
        idle_rss, peak = tree_rss_bytes(pids), tree_peak_rss_bytes(pids)
        _require_open(edge, port, connections, f"after {idle_s:g} s idle")
    finally:
        for connection in held:
            connection.close()
    return EdgeResult(edge, connections, baseline, idle_rss, peak, tuple(checkpoints), idle_s)


def _require_open(edge: str, port: int, connections: int, when: str) -> None:
    count = established(port)
    if count != connections:
        raise BenchError(f"{edge}: the server holds {count} established connections {when}, "
                         f"expected {connections}")


def run_edge(scenario: Scenario, edge: str, connections: int, idle_s: float,
             layout: str) -> EdgeResult:
    """A fresh set of the scenario's processes for one edge, so each baseline is clean."""
    with Fleet() as fleet:
        ports = start(fleet, scenario, layout, f"idle-{edge}")
        port = ports[f"{scenario.under_test}.{edge}"]
        pids = under_test(fleet, scenario).tree()
        load = scenario.load
        client: RestClient | GrpcClient
        if edge == "grpc":
            client = GrpcClient(port, load.headers)
        elif load.tool == "wrk":  # the scenario's REST request
            client = RestClient(port, load.path, load.headers, scenario.expected())
        else:
            client = RestClient(port, REST_PATH, load.headers, expected_user())
        client.warm_up(WARMUP_REQUESTS)
        result = measure(edge, pids, port, connections, idle_s, client.connect)
        alive(fleet)
    return result


def edges_of(scenario: Scenario) -> tuple[str, ...]:
    """The edges (port names) the process under test announces."""
    announced = next(p.announce for p in scenario.procs if p.role == scenario.under_test)
    return tuple(edge for edge in EDGES if edge in announced)


def format_result(result: EdgeResult) -> str:
    return (f"{result.edge:<5} {result.connections:>6} conns: baseline "
            f"{mib(result.baseline_rss):6.1f} MiB, idle RSS {mib(result.idle_rss):6.1f} MiB, "
            f"VmHWM {mib(result.peak_rss):6.1f} MiB, {result.per_connection_kib:6.1f} KiB/conn "
            f"(fit {result.fit_kib:.1f}); {'PASS' if result.passed else 'MISS'} "
            f"(<= {TARGET_MIB:g} MiB)")


def main(argv: Sequence[str] | None = None) -> int:
    gateway_like = sorted(name for name, s in SCENARIOS.items() if edges_of(s))
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=(
        "RSS of the process under test with N idle keep-alive connections (not a test)."))
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--scenario", choices=gateway_like, default="rest-gateway")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds the connections stay idle before RSS is read (default 5; "
                             "aiohttp closes idle keep-alive connections after 75 s)")
    parser.add_argument("--out", type=Path, default=OUT / "idle.json")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 8000 or not 0 <= args.idle <= 60:
        parser.error("need 1 <= --connections <= 8000 and 0 <= --idle <= 60")
    return guarded("bench.idle", lambda layout: run(args, layout))


def run(args: argparse.Namespace, layout: str) -> int:
    """Every edge of the scenario's process under test, the verdict line and the results file."""
    scenario = SCENARIOS[args.scenario]
    started = datetime.datetime.now(datetime.UTC)
    # The client sockets here and the server's (it inherits the limit), plus headroom.
    raise_nofile(args.connections + 512)
    results: list[EdgeResult] = []
    for edge in edges_of(scenario):
        results.append(run_edge(scenario, edge, args.connections, args.idle, layout))
        print(format_result(results[-1]), flush=True)
    passed = all(result.passed for result in results)
    print(f"{'PASS' if passed else 'MISS'}: {scenario.name} ({scenario.under_test}) with "
          f"{args.connections} idle connections, RSS "
          + ", ".join(f"{r.edge} {mib(r.idle_rss):.1f} MiB" for r in results)
          + f" against {TARGET_MIB:g} MiB")
    write_results(args.out.resolve(), {
        "date": started.isoformat(timespec="seconds"),
        "options": {"scenario": scenario.name, "connections": args.connections,
                    "idle_s": args.idle, "layout": layout, "warmup_requests": WARMUP_REQUESTS},
        "verdict": "PASS" if passed else "MISS",
        "edges": [result.as_json() for result in results],
    })
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
