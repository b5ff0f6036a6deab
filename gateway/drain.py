"""Stopping the HTTP listeners within the grace period (T-34): aiohttp's own shutdown waits up to
the grace for handlers, then cancels the request and waits up to the grace AGAIN for a handler
that is not reading its body, as a stream's is not (it waits on the backend): 2 x the grace with
a REST stream open. Here the connections still busy when the grace is over are closed, which
cancels their handlers (handler_cancellation), so the stop ends at the grace, as grpc's does."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def stop_http(runner: web.BaseRunner | None, grace_s: float) -> None:
    """Stop listening, close idle connections, give requests under way grace_s, then cancel."""
    if runner is None:
        return
    runner._shutdown_timeout = grace_s  # set only in the constructor; read only in cleanup()
    server = runner.server
    if server is None or not isinstance(server, web.Server):
        await runner.cleanup()
        return
    cut = asyncio.get_running_loop().call_later(grace_s, _close_busy, server)
    try:
        await runner.cleanup()
    finally:
        cut.cancel()


def _close_busy(server: web.Server) -> None:
    for connection in server.connections:
        connection.force_close()  # connection_lost cancels the handler, streams included
