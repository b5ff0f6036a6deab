"""How long `serve` takes to stop (SIGTERM to exit) with a stream open on each edge that never
ends: a REST orders:watch and a gRPC WatchOrders (T-34: within shutdown_grace_s + 1 s).

    .venv/bin/python -m bench.drain                 # shutdown_grace_s 5
    .venv/bin/python -m bench.drain --grace 2 --rest-only

Bounded: one gateway process, loopback, at most --grace (<= 30) + 10 s. Prints one JSON line;
exit 1 when the stop took longer than the grace + 1 s.
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
from pathlib import Path

import aiohttp
import grpc
import yaml

from orders.v1 import orders_pb2, orders_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
REST = re.compile(r"gateway REST on http://127\.0\.0\.1:(\d+)")
GRPC = re.compile(r"gateway gRPC on 127\.0\.0\.1:(\d+)")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--rest-only", action="store_true", help="no gRPC stream")
    options = parser.parse_args(argv)
    grace = min(30.0, options.grace)

    from services.server import start_backend

    backend = await start_backend("orders")
    config = Path(tempfile.mkdtemp(prefix="drain-")) / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "listen": {"rest": {"host": "127.0.0.1", "port": 0},
                   "grpc": {"host": "127.0.0.1", "port": 0}},
        "descriptors": {"descriptor_set": str(ROOT / "generated" / "descriptors.binpb")},
        "backends": {"orders": {"services": ["orders.v1.Orders"],
                                "addresses": [backend.address]}},
        "shutdown_grace_s": grace,
    }))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
        start_new_session=True)
    assert process.stdout is not None
    try:
        ports: dict[str, int] = {}
        while len(ports) < 2:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            if not line:
                raise RuntimeError("the gateway exited before it listened")
            for name, pattern in (("rest", REST), ("grpc", GRPC)):
                if found := pattern.search(line):
                    ports[name] = int(found.group(1))
        async with aiohttp.ClientSession() as http, grpc.aio.insecure_channel(
                f"127.0.0.1:{ports['grpc']}") as channel:
            watch = await http.get(
                f"http://127.0.0.1:{ports['rest']}/v1/users/u-1001/orders:watch")
            await watch.content.readline()  # the stream is open and has sent
            stream = None
            if not options.rest_only:
                stream = orders_pb2_grpc.OrdersStub(channel).WatchOrders(
                    orders_pb2.WatchOrdersRequest(user_id="u-1001"))
                await asyncio.wait_for(stream.read(), 10)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), grace + 10)
            took = time.monotonic() - started
            watch.close()
            if stream is not None:
                stream.cancel()
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        await backend.stop()
    print(json.dumps({"shutdown_grace_s": grace, "streams": 1 if options.rest_only else 2,
                      "drain_s": round(took, 3), "exit_code": code}))
    return 0 if took <= grace + 1.0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
