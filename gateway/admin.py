"""The admin API on the ops listener: POST /admin/reload; GET /admin/status, /admin/backends,
/admin/limiter, /admin/requests (ids of the explained requests kept, newest first) and
/admin/requests/<request id> (one explanation, docs/explain.md). Each needs
`Authorization: Bearer <token>`, the token whose SHA-256 the config's `admin` names; JSON
bodies, errors in the google.rpc.Status shape."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import orjson
from aiohttp import web

from gateway.config import GatewayConfig
from gateway.errors import Code, ConfigError, NotFound
from gateway.ratelimit.redis import RedisLimiter
from gateway.runtime import Runtime

CHALLENGE = 'Bearer realm="gateway-admin"'


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    at: float  # time.time()
    generation: int  # the generation serving after the attempt
    error: str = ""


class Administered(Protocol):
    """What the admin API reads and drives (gateway.app.RunningGateway)."""

    runtime: Runtime
    admin_digest: bytes | None  # None: the admin API is off
    generation: int  # 1 at start, +1 per reload that took effect
    instances: int
    worker: int | None
    last_reload: ReloadResult | None

    @property
    def draining(self) -> int: ...  # replaced runtimes still finishing requests

    def ready(self) -> bool: ...

    async def reload(self, config: GatewayConfig | None = None) -> None: ...


def add_admin_routes(app: web.Application, gateway: Administered) -> None:
    def guarded(view: Callable[[], Awaitable[object]]
                ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            digest = gateway.admin_digest
            if digest is None:
                return _error(404, Code.NOT_FOUND, "the admin API is off (config: admin)")
            if not _token_matches(request.headers.get("Authorization", ""), digest):
                return _error(401, Code.UNAUTHENTICATED, "admin token missing or wrong",
                              {"WWW-Authenticate": CHALLENGE})
            try:
                return _json(200, await view())
            except ConfigError as exc:
                return _error(400, Code.FAILED_PRECONDITION, str(exc))
            except NotFound as exc:
                return _error(404, Code.NOT_FOUND, exc.message)

        return handler

    async def reload() -> object:
        await asyncio.shield(gateway.reload())  # a client that goes away does not cut it short
        return {"status": "reloaded", "generation": gateway.generation}

    async def status() -> object:
        return {
            "pid": os.getpid(),
            "worker": gateway.worker,
            "workers": gateway.instances,
            "generation": gateway.generation,
            "ready": gateway.ready(),
            "draining": gateway.draining,
            "last_reload": gateway.last_reload,
        }

    async def backends() -> object:
        return gateway.runtime.upstream.snapshot()

    async def limiter() -> object:
        return limiter_status(gateway.runtime, gateway.instances)

    app.router.add_post("/admin/reload", guarded(reload))
    app.router.add_get("/admin/status", guarded(status))
    app.router.add_get("/admin/backends", guarded(backends))
    app.router.add_get("/admin/limiter", guarded(limiter))
    async def requests() -> object:
        return explained_ids(gateway.runtime)

    async def one_request(request: web.Request) -> web.Response:
        return await guarded(lambda: explanation(gateway.runtime, request.match_info["id"])
                             )(request)

    app.router.add_get("/admin/requests", guarded(requests))
    app.router.add_get("/admin/requests/{id}", one_request)


def explained_ids(runtime: Runtime) -> object:
    explainer = runtime.observability.explainer
    if explainer is None:
        raise NotFound("explain is off (config: observability.explain.enabled)")
    return {"requests": explainer.buffer.ids(), "bytes": explainer.buffer.bytes,
            "max_bytes": explainer.buffer.max_bytes}


async def explanation(runtime: Runtime, request_id: str) -> object:
    explainer = runtime.observability.explainer
    found = None if explainer is None else explainer.buffer.get(request_id)
    if found is None:
        raise NotFound(f"no explained request {request_id[:64]!r} is kept")
    return orjson.Fragment(found)


def limiter_status(runtime: Runtime, instances: int) -> Mapping[str, object]:
    config = runtime.compiled.config.rate_limits
    shared = config.store == "redis"
    status: dict[str, object] = {
        "store": config.store,
        # Without a shared store each worker enforces its share of every limit.
        "share": 1.0 if shared else 1 / instances,
        "rules": [rule.model_dump() for rule in config.rules],
    }
    store = runtime.limiter.limiter
    if isinstance(store, RedisLimiter):
        status["redis"] = {"allowed": store.allowed, "rejected": store.rejected,
                           "failures": store.redis_failures, "degraded": store.degraded}
    return status


def _token_matches(authorization: str, digest: bytes) -> bool:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return hmac.compare_digest(hashlib.sha256(token.strip().encode()).digest(), digest)


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                        headers=headers)


def _error(status: int, code: Code, message: str,
           headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(status, {"code": int(code), "message": message, "details": []}, headers)
