"""/healthz (the process is alive) and /readyz (it can serve: config loaded, backends healthy)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from aiohttp import web


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
