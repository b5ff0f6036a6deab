"""Serve an aiohttp app on loopback under uvloop until SIGINT/SIGTERM, announcing its port."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

import uvloop
from aiohttp import web

from bench.procs import LOOPBACK


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = ephemeral)")
    return parser


def serve(name: str, port: int, build: Callable[[], Awaitable[web.Application]]) -> None:
    """Build the app inside the loop, print "<name> listening on 127.0.0.1:PORT", run."""
    uvloop.run(_serve(name, port, build))


async def _serve(name: str, port: int, build: Callable[[], Awaitable[web.Application]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(await build(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, port)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"{name} listening on {LOOPBACK}:{bound}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
