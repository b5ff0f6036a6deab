"""The demo stack: the three demo backends and a gateway in front of them, in one process."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway import app
from gateway.config import GatewayConfig, load

log = logging.getLogger("gateway.demo")
DESCRIPTOR_SET = Path(__file__).resolve().parent.parent / "generated" / "descriptors.binpb"


def demo_config(addresses: dict[str, str], host: str, rest_port: int, grpc_port: int
                ) -> GatewayConfig:
    """The gateway config of the demo: one backend per demo service, in-memory defaults."""
    return load({
        "listen": {"rest": {"host": host, "port": rest_port},
                   "grpc": {"host": host, "port": grpc_port}},
        "descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
        "backends": {
            "users": {"services": ["users.v1.Users"], "addresses": [addresses["users"]]},
            "orders": {"services": ["orders.v1.Orders"], "addresses": [addresses["orders"]]},
            "notifications": {"services": ["notifications.v1.Notifications"],
                              "addresses": [addresses["notifications"]]},
        },
        "transcoding": {"success_status": {
            "/users.v1.Users/CreateUser": 201,
            "/users.v1.Users/DeleteUser": 204,
            "/orders.v1.Orders/CreateOrder": 201,
        }},
        "cors": {"allow_origins": [f"http://localhost:{rest_port}",
                                   f"http://127.0.0.1:{rest_port}"]},
    })


async def run_demo(host: str, rest_port: int, grpc_port: int) -> int:
    from services.server import start_all

    backends = await start_all(host="127.0.0.1")
    running = None
    try:
        config = demo_config({n: b.address for n, b in backends.items()}, host, rest_port,
                             grpc_port)
        running = await app.start(config)
        for name, backend in backends.items():
            print(f"backend {name:<14} grpc://{backend.address}")
        print(f"gateway REST        http://{host}:{running.rest_port}")
        print(f"gateway gRPC        {host}:{running.grpc_port}")
        print(f"try: curl -s http://{host}:{running.rest_port}/v1/users/u-1001")
        print("stop with Ctrl-C", flush=True)
        await app.wait_for_signal()
    finally:
        if running is not None:
            await running.stop()
        for backend in backends.values():
            await backend.stop()
    return 0
