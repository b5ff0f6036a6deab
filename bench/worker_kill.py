"""One worker of `serve --workers 2` killed (SIGKILL) under load: the share of calls served and
how long until its replacement serves (its "gateway REST on ..." line, printed once it listens).

    .venv/bin/python -m bench.worker_kill                     # 8 s of load, 16 clients, kill at 2 s
    .venv/bin/python -m bench.worker_kill --duration 4 --concurrency 8 --kills 2
    .venv/bin/python -m bench.worker_kill --fresh-connections   # a new connection per call

Bounded: loopback only, --duration seconds of load (at most 60). Clients keep their connection
(one per client, as a real client pool does; aiohttp sends an idempotent call again on a kept
connection that turns out closed) and open a new one when it breaks; a call counts
as served when it answered 200, and every other outcome (refused, reset, 5xx) as failed. Kills
are spread over the run, each of worker 0's current pid. Prints one JSON line; exit 1 when
fewer than 99% were served or a replacement took 2 s or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
REST = re.compile(r"gateway REST on http://127\.0\.0\.1:(\d+) \(worker (\d+), pid (\d+)\)")


@dataclass
class Tally:
    served: int = 0
    failed: int = 0


async def get_until(url: str, stop: asyncio.Event, tally: Tally, *,
                    fresh_connections: bool) -> None:
    """GET `url` one call at a time until `stop` is set (so one connection, kept unless
    `fresh_connections`): a 200 counts as served, every other outcome (refused, reset, 5xx)
    as failed. tests/ops/test_workers.py loads its workers with it too."""
    connector = aiohttp.TCPConnector(limit=1, force_close=fresh_connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        while not stop.is_set():
            try:
                async with http.get(url) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            tally.served, tally.failed = tally.served + ok, tally.failed + (not ok)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--fresh-connections", action="store_true",
                        help="a new connection per call (default: one kept per client)")
    options = parser.parse_args(argv)
    duration = min(60.0, options.duration)

    from services.server import start_backend

    backend = await start_backend("users")
    workdir = Path(tempfile.mkdtemp(prefix="worker-kill-"))
    config = workdir / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "listen": {"rest": {"host": "127.0.0.1", "port": 0}, "grpc": None},
        "descriptors": {"descriptor_set": str(ROOT / "generated" / "descriptors.binpb")},
        "backends": {"users": {"services": ["users.v1.Users"], "addresses": [backend.address]}},
        "observability": {"access_log": {"enabled": False}},
    }))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config), "--workers", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
        start_new_session=True)
    assert process.stdout is not None
    pids: dict[int, int] = {}
    port = 0
    listening: dict[int, asyncio.Event] = {0: asyncio.Event(), 1: asyncio.Event()}

    async def watch_output() -> None:
        nonlocal port
        assert process.stdout is not None
        while line := (await process.stdout.readline()).decode():
            found = REST.search(line)
            if found:
                port, worker = int(found.group(1)), int(found.group(2))
                pids[worker] = int(found.group(3))
                listening[worker].set()

    watcher = asyncio.create_task(watch_output())
    tally = Tally()
    stop = asyncio.Event()

    replacements: list[float] = []
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in listening.values())), 30)
        url = f"http://127.0.0.1:{port}/v1/users/u-1001"
        clients = [asyncio.create_task(
            get_until(url, stop, tally, fresh_connections=options.fresh_connections))
            for _ in range(options.concurrency)]
        started = time.monotonic()
        for kill in range(options.kills):
            at = started + duration * (kill + 1) / (options.kills + 1)
            await asyncio.sleep(max(0.0, at - time.monotonic()))  # load for a while: timing
            listening[0].clear()
            os.kill(pids[0], signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.wait_for(listening[0].wait(), 30)
            replacements.append(time.monotonic() - killed)
        await asyncio.sleep(max(0.0, started + duration - time.monotonic()))
        stop.set()
        await asyncio.gather(*clients)
        elapsed = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
        watcher.cancel()
        await backend.stop()
    served, failed = tally.served, tally.failed
    total = served + failed
    result = {
        "calls": total, "served": served, "failed": failed,
        "served_percent": round(100 * served / total, 3) if total else 0.0,
        "req_per_s": round(total / elapsed, 1), "kills": options.kills,
        "replacement_serving_s": [round(r, 3) for r in replacements],
        "concurrency": options.concurrency, "duration_s": duration,
        "fresh_connections": options.fresh_connections,
        "supervisor_exit": process.returncode,
    }
    print(json.dumps(result))
    good = total > 0 and served / total >= 0.99 and all(r < 2.0 for r in replacements)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
