"""The demo stack for the contract tools: the demo config (auth, access rules, aggregate),
its three backends on loopback, port 0; without the demo's rate limit and failed-auth limit,
which generated traffic would only measure (schemathesis sends invalid credentials on
purpose and expects 401, not the 429 the failed-auth limit answers after 20 of them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway import app
from gateway.config import FailedAuthLimit, RateLimits
from gateway.demo import demo_config, mint_demo_token
from services.server import start_all


@dataclass(frozen=True)
class Demo:
    base_url: str
    token: str  # the demo issuer's, for u-1001 with the admin role (README)


@asynccontextmanager
async def running_demo() -> AsyncIterator[Demo]:
    backends = await start_all()
    gateway = None
    try:
        config = demo_config({n: b.address for n, b in backends.items()}, "127.0.0.1", 0, 0)
        auth = config.auth.model_copy(
            update={"failed_auth_limit": FailedAuthLimit(enabled=False)})
        gateway = await app.start(config.model_copy(
            update={"rate_limits": RateLimits(), "auth": auth}))
        yield Demo(f"http://127.0.0.1:{gateway.rest_port}",
                   mint_demo_token("u-1001", ["admin"]))
    finally:
        if gateway is not None:
            await gateway.stop(0)
        for backend in backends.values():
            await backend.stop()
