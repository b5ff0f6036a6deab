"""`python -m bench.hostile [--slowloris 1000] [--idle 3000] [--cap 1000] [--phase-s 8]`: hostile
floods against a real gateway process (`python -m gateway serve`) in front of the users
backend, each from its own process, on loopback, bounded in count and time:

  slowloris    N connections sending their headers a byte a second
  idle         M connections, each used for one request and then held idle, against a cap
  rapid-reset  one HTTP/2 connection opening and cancelling streams as fast as it can

For each: connections closed or refused and when (from the flooding side), the gateway's
open file descriptors and RSS, the gateway's own counters (/metrics), and legitimate latency
(sequential GetUser over REST or gRPC on a connection of its own) against a baseline measured
first. Results in bench/out/hostile.json. Short timeouts (header 2 s, keep-alive 30 s) keep a
run under two minutes; the counts are full size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from bench.memory import raise_nofile
from gateway.demo import DESCRIPTOR_SET
from users.v1 import users_pb2

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent
GET_USER = "/users.v1.Users/GetUser"
HEADER_TIMEOUT_S = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_config(ports: dict[str, int], cap: int, max_resets_per_s: int) -> str:
    return json.dumps({  # YAML is a superset of JSON
        "listen": {"rest": {"port": ports["rest"]}, "grpc": {"port": ports["grpc"]},
                   "ops": {"port": ports["ops"]}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {"users": {"services": ["users.v1.Users"],
                               "addresses": [f"127.0.0.1:{ports['users']}"]}},
        "observability": {"access_log": {"enabled": False}},
        "connections": {"rest": {"header_timeout_s": HEADER_TIMEOUT_S, "keepalive_timeout_s": 30,
                                 "max_connections": cap},
                        "grpc": {"max_resets_per_s": max_resets_per_s}},
    })


async def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


Samples = list[tuple[float, float]]  # (wall time at the start, seconds)


def summary(samples: Samples, errors: int, window: tuple[float, float] | None = None
            ) -> dict[str, Any]:
    """Percentiles of all samples, and of those started within the flood's window."""
    result: dict[str, Any] = {**percentiles([s for _, s in samples]), "errors": errors}
    if window is not None:
        start, end = window
        result["during_flood"] = percentiles([s for t, s in samples if start <= t <= end])
    return result


async def legit_rest(port: int, seconds: float) -> tuple[Samples, int]:
    samples: Samples = []
    errors = 0
    url = f"http://127.0.0.1:{port}/v1/users/u-1001"
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if ok:
                samples.append((time.time(), time.perf_counter() - started))
            else:
                errors += 1
    return samples, errors


async def legit_grpc(port: int, seconds: float) -> tuple[Samples, int]:
    samples: Samples = []
    errors = 0
    payload = users_pb2.GetUserRequest(id="u-1001").SerializeToString()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call: Any = channel.unary_unary(GET_USER)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                await call(payload, timeout=5)
                samples.append((time.time(), time.perf_counter() - started))
            except grpc.aio.AioRpcError:
                errors += 1
    return samples, errors


async def metrics(port: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    wanted = ("gateway_http_connections_closed_total", "gateway_http_connections_open",
              "gateway_http_parser_refusals_total", "gateway_grpc_connections_closed_total")
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith(wanted)}


# -- floods: each runs in its own process (python -m bench.hostile --flood NAME ...) ----------

async def flood_slowloris(port: int, count: int, seconds: float) -> dict[str, Any]:
    """`count` connections sending a request's headers a byte a second; when each was cut."""
    line = b"GET /v1/users/u-1001 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + b"x" * 200

    async def one() -> float | None:
        opened = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return -1.0
        try:
            for byte in line:
                writer.write(bytes([byte]))
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        return time.monotonic() - opened
                if time.monotonic() - opened > seconds:
                    return None
        except OSError:
            return time.monotonic() - opened
        finally:
            writer.close()
        return None

    window_start = time.time()
    results = await asyncio.gather(*(one() for _ in range(count)))
    cut = [r for r in results if r is not None and r >= 0]
    return {"window": [window_start, time.time()], "connections": count, "cut": len(cut),
            "still_open": results.count(None),
            "connect_failed": sum(1 for r in results if r is not None and r < 0),
            "cut_after_s": percentiles_s(cut)}


def percentiles_s(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {"min": round(ordered[0], 2), "median": round(statistics.median(ordered), 2),
            "max": round(ordered[-1], 2)}


async def flood_idle(port: int, count: int, seconds: float) -> dict[str, Any]:
    """`count` connections, one request each, then held idle for `seconds`."""
    request = b"GET /v1/users/u-1001 HTTP/1.1\r\nHost: gw\r\n\r\n"
    started = time.monotonic()
    outcome: dict[str, int] = {"served": 0, "refused_503": 0, "closed_while_idle": 0,
                               "held": 0, "failed": 0}
    closed_at: list[float] = []
    window_start = time.time()

    async def one() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            outcome["failed"] += 1
            return
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if b" 503 " in head.split(b"\r\n", 1)[0]:
                outcome["refused_503"] += 1
                return
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            outcome["served"] += 1
            remaining = seconds - (time.monotonic() - started)
            try:
                if await asyncio.wait_for(reader.read(1), max(0.1, remaining)) == b"":
                    outcome["closed_while_idle"] += 1
                    closed_at.append(time.monotonic() - started)
            except TimeoutError:
                outcome["held"] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError, IndexError, ValueError):
            outcome["failed"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return {"window": [window_start, window_start + max(closed_at, default=seconds)],
            "connections": count, **outcome, "closed_after_s": percentiles_s(closed_at)}


def flood_rapid_reset(port: int, seconds: float) -> dict[str, Any]:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events

    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(0.001)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "POST"), (":scheme", "http"), (":path", GET_USER),
               (":authority", "gw"), ("content-type", "application/grpc"), ("te", "trailers")]
    sent, ended = 0, None
    started = time.monotonic()
    window_start = time.time()
    while time.monotonic() - started < seconds and ended is None:
        for _ in range(50):
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, headers)
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            sent += 1
        try:
            sock.sendall(conn.data_to_send())
            data = sock.recv(65536)
            if not data:
                ended = "closed"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    ended = f"GOAWAY {event.error_code!s} {event.additional_data!r}"
            sock.sendall(conn.data_to_send())
        except TimeoutError:
            pass
        except OSError as exc:
            ended = f"{type(exc).__name__}"
    elapsed = time.monotonic() - started
    sock.close()
    return {"window": [window_start, time.time()], "streams_reset": sent,
            "seconds": round(elapsed, 2),
            "per_s": round(sent / elapsed), "ended_by": ended or "flood ran to its end"}


# -- the run -------------------------------------------------------------------------------

async def phase(name: str, flood: list[str], probe: str, ports: dict[str, int], pid: int,
                seconds: float) -> dict[str, Any]:
    fds_before, rss_before = fds(pid), rss_mib(pid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.hostile", "--flood", *flood, cwd=ROOT,
        stdout=subprocess.PIPE)
    peak_fds = fds_before

    async def sample() -> None:
        nonlocal peak_fds
        while True:
            peak_fds = max(peak_fds, fds(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    samples, errors = await (legit_rest(ports["rest"], seconds) if probe == "rest"
                             else legit_grpc(ports["grpc"], seconds))
    out, _ = await proc.communicate()
    sampler.cancel()
    flood_result = json.loads(out)
    latency = summary(samples, errors, tuple(flood_result.pop("window")))
    return {"phase": name, "flood": flood_result, f"legit_{probe}": latency,
            "gateway_fds": {"before": fds_before, "peak": peak_fds, "after": fds(pid)},
            "gateway_rss_mib": {"before": round(rss_before, 1), "after": round(rss_mib(pid), 1)},
            "gateway_counters": await metrics(ports["ops"])}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile(args.idle + args.slowloris + 2048)
    OUT.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("rest", "grpc", "ops", "users")}
    config = OUT / "hostile-gateway.yaml"
    config.write_text(gateway_config(ports, args.cap, args.max_resets_per_s))
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "services.users", "--port", str(ports["users"])], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=(OUT / "hostile-users.log").open("wb")))
        gateway_log = OUT / "hostile-gateway.log"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config)], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=gateway_log.open("wb")))
        pid = procs[-1].pid
        for port in ports.values():
            await wait_port(port)
        await legit_rest(ports["rest"], 1.0)  # warm up
        await legit_grpc(ports["grpc"], 1.0)
        base_rest = summary(*await legit_rest(ports["rest"], args.phase_s))
        base_grpc = summary(*await legit_grpc(ports["grpc"], args.phase_s))
        phases = [
            await phase("slowloris", ["slowloris", str(ports["rest"]), str(args.slowloris),
                                      str(args.phase_s + 4)], "rest", ports, pid, args.phase_s),
            await phase("idle", ["idle", str(ports["rest"]), str(args.idle),
                                 str(args.phase_s + 4)], "rest", ports, pid, args.phase_s),
            await phase("rapid-reset", ["rapid-reset", str(ports["grpc"]), "0",
                                        str(args.phase_s + 2)], "grpc", ports, pid,
                        args.phase_s),
        ]
        for item in phases:
            probe = "legit_rest" if "legit_rest" in item else "legit_grpc"
            base = base_rest if probe == "legit_rest" else base_grpc
            during = item[probe]["during_flood"]
            item["p99_during_flood_vs_baseline"] = round(
                during.get("p99_ms", 0) / base["p99_ms"], 2)
        log_text = gateway_log.read_text(errors="replace")
        return {"command": " ".join(["python -m bench.hostile", *sys.argv[1:]]),
                "config": {"header_timeout_s": HEADER_TIMEOUT_S, "keepalive_timeout_s": 30,
                           "max_connections": args.cap,
                           "max_resets_per_s": args.max_resets_per_s},
                "baseline": {"legit_rest": base_rest, "legit_grpc": base_grpc},
                "phases": phases,
                "gateway_log": {"lines": log_text.count("\n"),
                                "tracebacks": log_text.count("Traceback"),
                                "bearer_in_log": "Bearer" in log_text}}
    finally:
        for proc in reversed(procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--slowloris", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=3000)
    parser.add_argument("--cap", type=int, default=1000)
    parser.add_argument("--phase-s", type=float, default=8.0)
    parser.add_argument("--max-resets-per-s", type=int, default=200,
                        help="connections.grpc.max_resets_per_s (0: the rapid-reset guard off)")
    parser.add_argument("--flood", nargs=4, metavar=("KIND", "PORT", "COUNT", "SECONDS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flood:
        kind, port, count, seconds = args.flood
        if kind == "rapid-reset":
            result = flood_rapid_reset(int(port), float(seconds))
        elif kind == "slowloris":
            raise_nofile(int(count) + 256)
            result = asyncio.run(flood_slowloris(int(port), int(count), float(seconds)))
        else:
            raise_nofile(int(count) + 256)
            result = asyncio.run(flood_idle(int(port), int(count), float(seconds)))
        print(json.dumps(result))
        return 0
    document = asyncio.run(run(args))
    (OUT / "hostile.json").write_text(json.dumps(document, indent=2))
    print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
