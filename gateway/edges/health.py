"""/healthz (the process is alive) and /readyz (it can serve: config loaded, backends healthy);
grpc.health.v1 on the gRPC edge, whose overall ("") status says what /readyz says."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any, Final

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2

SERVING: Final = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING
FOLLOW_EVERY_S: Final = 1.0  # how often a Watch("") sees readiness change


def add_health_routes(app: web.Application, ready: Callable[[], bool]) -> None:
    pages = health_pages(ready)
    for path, page in pages.items():
        app.router.add_get(path, functools.partial(_answer, page))


def health_pages(ready: Callable[[], bool]) -> dict[str, Callable[[], web.Response]]:
    def healthz() -> web.Response:
        return web.json_response({"status": "alive"})

    def readyz() -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready"}, status=503)

    return {"/healthz": healthz, "/readyz": readyz}


async def _answer(page: Callable[[], web.Response], _: web.Request) -> web.Response:
    return page()


class ReadinessHealth(health.aio.HealthServicer):  # type: ignore[misc]  # untyped
    """grpc.health.v1 whose overall status ("") is readiness, as /readyz: NOT_SERVING while an
    issuer's keys were never fetched or a required backend has no healthy instance, and from
    the first moment of a stop. A Check reads readiness then; while anyone Watches "", it is
    read every FOLLOW_EVERY_S. Per-service statuses stay as the gateway sets them."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._ready = ready
        self._watching = 0
        self._follower: asyncio.Task[None] | None = None

    async def Check(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext[Any, Any]) -> health_pb2.HealthCheckResponse:
        if request.service == "":
            await self._sync()
        response: health_pb2.HealthCheckResponse = await super().Check(request, context)
        return response

    async def Watch(self, request: health_pb2.HealthCheckRequest,
                    context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if request.service != "":
            await super().Watch(request, context)
            return
        await self._sync()
        self._watching += 1
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())
        try:
            await super().Watch(request, context)
        finally:
            self._watching -= 1
            if self._watching == 0 and self._follower is not None:
                self._follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._follower
                self._follower = None

    async def _sync(self) -> None:
        status = SERVING if self._ready() else NOT_SERVING
        if self._server_status.get("") != status:
            await self.set("", status)  # ignored once a graceful shutdown began

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(FOLLOW_EVERY_S)
            await self._sync()
