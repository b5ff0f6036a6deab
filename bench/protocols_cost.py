"""CPU per call of the gateway by protocol, relative to the REST route of the same method.

    .venv/bin/python -m bench.protocols_cost [--calls 1000] [--rounds 5] [--concurrency 8]

GetUser(u-1001) through one gateway process (`serve`, access log off) in front of the users
backend (its own process): REST `GET /v1/users/u-1001`, Connect JSON and proto POST, Connect
GET, gRPC-Web proto and grpc-web-text. The gateway's own CPU time (/proc, its process tree)
over `calls` calls per protocol and round, after a warm-up, divided by the calls. Short and bounded:
the load generator is aiohttp in this process, so absolute figures are not bench.run's; the
ratios are what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import struct
import sys
from pathlib import Path

import aiohttp
import yaml

from bench.procs import LOOPBACK, Fleet, tree_cpu_seconds
from bench.scenarios import GATEWAY_PORTS, GRPC_PORT
from gateway.demo import DESCRIPTOR_SET as DESCRIPTORS
from users.v1 import users_pb2

OUT = Path("bench/out")
MESSAGE = users_pb2.GetUserRequest(id="u-1001").SerializeToString()
ENVELOPE = struct.pack(">BI", 0, len(MESSAGE)) + MESSAGE
GET = "/users.v1.Users/GetUser"
# protocol -> (HTTP method, path, headers, body)
CALLS: dict[str, tuple[str, str, dict[str, str], bytes]] = {
    "rest": ("GET", "/v1/users/u-1001", {}, b""),
    "connect-json": ("POST", GET, {"Content-Type": "application/json"}, b'{"id":"u-1001"}'),
    "connect-proto": ("POST", GET, {"Content-Type": "application/proto"}, MESSAGE),
    "connect-get": ("GET", GET + "?encoding=json&message=%7B%22id%22%3A%22u-1001%22%7D", {},
                    b""),
    "grpc-web": ("POST", GET, {"Content-Type": "application/grpc-web+proto"}, ENVELOPE),
    "grpc-web-text": ("POST", GET, {"Content-Type": "application/grpc-web-text"},
                      base64.b64encode(ENVELOPE)),
}


async def drive(base: str, protocol: str, calls: int, concurrency: int) -> None:
    method, path, headers, body = CALLS[protocol]
    left = calls

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with http.request(method, base + path, headers=headers, data=body) as r:
                await r.read()
                if r.status != 200:
                    raise SystemExit(f"{protocol}: HTTP {r.status}")

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with Fleet() as fleet:
        backend = fleet.start("users", [sys.executable, "-m", "services.users", "--host",
                                        LOOPBACK, "--port", "0"], GRPC_PORT,
                              OUT / "protocols-users.log", None)
        config = OUT / "gateway-protocols.yaml"
        config.write_text(yaml.safe_dump({
            "listen": {"rest": {"host": LOOPBACK, "port": 0},
                       "grpc": {"host": LOOPBACK, "port": 0}},
            "descriptors": {"descriptor_set": str(DESCRIPTORS)},
            "backends": {"users": {"services": ["users.v1.Users"],
                                   "addresses": [f"{LOOPBACK}:{backend.ports['grpc']}"]}},
            "observability": {"access_log": {"enabled": False}},
        }))
        gateway = fleet.start("gateway", [sys.executable, "-m", "gateway", "serve", "--config",
                                          str(config)], GATEWAY_PORTS,
                              OUT / "protocols-gateway.log", None)
        base = f"http://{LOOPBACK}:{gateway.ports['rest']}"
        for protocol in CALLS:
            asyncio.run(drive(base, protocol, 200, args.concurrency))  # warm-up
        # Rounds interleave the protocols, so a busy moment of a shared host hits them all;
        # each protocol's figure is its median round.
        rounds: dict[str, list[float]] = {protocol: [] for protocol in CALLS}
        for _ in range(args.rounds):
            for protocol in CALLS:
                before = tree_cpu_seconds(gateway.tree())
                asyncio.run(drive(base, protocol, args.calls, args.concurrency))
                rounds[protocol].append(
                    (tree_cpu_seconds(gateway.tree()) - before) / args.calls * 1e6)
    results = {protocol: statistics.median(values) for protocol, values in rounds.items()}
    rest = results["rest"]
    print(f"{'protocol':<15}{'µs CPU/call':>12}{'vs REST':>9}   (median of {args.rounds} "
          f"rounds of {args.calls} calls, concurrency {args.concurrency})")
    for protocol, us in results.items():
        print(f"{protocol:<15}{us:12.0f}{us / rest:9.2f}")

if __name__ == "__main__":
    main()
