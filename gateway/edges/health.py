"""/healthz (the process is alive) and /readyz (it can serve: config loaded, backends healthy)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def add_health_routes(app: web.Application, ready: Callable[[], bool]) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "not ready"}, status=503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
