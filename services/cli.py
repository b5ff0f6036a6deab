"""Command line for the demo backends: `python -m services` runs users, orders and notifications
in one process; `python -m services.<name> --port N` runs one. SIGINT/SIGTERM stop cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from services.server import RunningBackend, start_backend

GRACE_S = 2.0  # calls in flight get this long to finish on shutdown

log = logging.getLogger("services")


def main(names: Sequence[str], argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services" + ("" if len(names) > 1 else f".{names[0]}"),
        description=f"Serve the {', '.join(names)} demo backend(s) over gRPC.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    if len(names) == 1:
        parser.add_argument("--port", type=int, default=0, help="port (0 = ephemeral)")
    else:
        for name in names:
            parser.add_argument(f"--{name}-port", type=int, default=0,
                                help=f"port of {name} (0 = ephemeral)")
    args = parser.parse_args(argv)
    if len(names) == 1:
        ports = {names[0]: args.port}
    else:
        ports = {name: getattr(args, f"{name}_port") for name in names}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        _run(_serve(args.host, ports))
    except OSError as exc:
        log.error("%s", exc)
        sys.exit(1)


async def _serve(host: str, ports: Mapping[str, int]) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    backends: list[RunningBackend] = []
    try:
        for name, port in ports.items():
            backend = await start_backend(name, host, port)
            backends.append(backend)
            print(f"{name} listening on {backend.address}", flush=True)
        await stopping.wait()
        log.info("stopping")
    finally:
        await asyncio.gather(*(backend.stop(GRACE_S) for backend in backends))


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # optional speed-up
        asyncio.run(main)
    else:
        uvloop.run(main)
