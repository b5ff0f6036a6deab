"""The demo stack: the three demo backends and a gateway in front of them, in one process."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from gateway import app
from gateway.config import GatewayConfig, load

log = logging.getLogger("gateway.demo")
DESCRIPTOR_SET = Path(__file__).resolve().parent.parent / "generated" / "descriptors.binpb"
OVERVIEW = "/dashboard.v1.Dashboard/GetOverview"
# The demo's one API key: it signs in as u-1001, the caller the dashboard overview is about.
DEMO_API_KEY = "demo-key-u-1001"


def overview_aggregate() -> dict[str, Any]:
    """The dashboard overview (docs/bff.md): the caller's profile (required), recent orders and
    unread count (optional, concurrent), and the users those orders reference (after them)."""
    me = "identity.user_id"
    return {"parts": {
        "profile": {"method": "/users.v1.Users/GetUser", "request": {"id": me}},
        "recent_orders": {"method": "/orders.v1.Orders/ListOrders", "required": False,
                          "request": {"user_id": me, "page_size": "request.order_page_size"}},
        "unread": {"method": "/notifications.v1.Notifications/CountUnread", "required": False,
                   "request": {"user_id": me}},
        "order_users": {"method": "/users.v1.Users/GetUser", "required": False,
                        "request": {"id": "recent_orders.orders.user_id"}},
    }}


def demo_config(addresses: dict[str, str], host: str, rest_port: int, grpc_port: int
                ) -> GatewayConfig:
    """The gateway config of the demo: one backend per demo service, in-memory defaults, the
    dashboard overview aggregate and the demo API key."""
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
        "auth": {"api_keys": [{"sha256": hashlib.sha256(DEMO_API_KEY.encode()).hexdigest(),
                               "owner": "u-1001"}]},
        "aggregates": {OVERVIEW: overview_aggregate()},
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
        print(f"     curl -s -H 'x-api-key: {DEMO_API_KEY}' "
              f"http://{host}:{running.rest_port}/v1/dashboard/overview")
        print("stop with Ctrl-C", flush=True)
        await app.wait_for_signal()
    finally:
        if running is not None:
            await running.stop()
        for backend in backends.values():
            await backend.stop()
    return 0
