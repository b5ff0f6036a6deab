"""The ops listener's aiohttp app: /metrics in the Prometheus text format (OpenMetrics on request).

The admin API is added to the same app; the app is served on its own port (listen.ops).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def ops_application(registry: CollectorRegistry | None) -> web.Application:
    """The ops app; /metrics only when metrics are collected."""
    app = web.Application()
    if registry is not None:
        add_metrics_route(app, registry)
    return app


def add_metrics_route(app: web.Application, registry: CollectorRegistry) -> None:
    async def metrics(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(registry), headers={"Content-Type": content_type})

    app.router.add_get("/metrics", metrics)
