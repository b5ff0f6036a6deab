"""`serve --workers N`: a supervisor runs N `serve` processes sharing the listening ports
(SO_REUSEPORT), forwards SIGTERM/SIGINT/SIGHUP to them and exits when they have exited.

Port 0 is resolved once, by the supervisor, so that every worker binds the same port. The ops
listener is per worker (metrics are per process): port 0 gives each worker a free port of its
own, port P gives worker i port P + i.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.config import GatewayConfig, Listener

log = logging.getLogger("gateway.workers")

SHARED = ("rest", "grpc")  # listeners every worker binds; ops is per worker
PR_SET_PDEATHSIG = 1


def reserve_ports(config: GatewayConfig) -> tuple[dict[str, int], list[socket.socket]]:
    """Pick a free port for each shared listener on port 0, held (bound, not listening, with
    SO_REUSEPORT) until the workers are gone, so nothing else takes it meanwhile."""
    ports: dict[str, int] = {}
    held: list[socket.socket] = []
    for name in SHARED:
        listener: Listener | None = getattr(config.listen, name)
        if listener is not None and listener.port == 0:
            family = socket.getaddrinfo(listener.host, 0, type=socket.SOCK_STREAM)[0][0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((listener.host, 0))
            held.append(sock)
            ports[name] = int(sock.getsockname()[1])
    return ports, held


def worker_config(config: GatewayConfig, index: int, ports: Mapping[str, int]) -> GatewayConfig:
    """Worker `index`'s view of the config: the supervisor's ports, its own ops port."""
    listen = config.listen
    update: dict[str, Listener] = {}
    for name, port in ports.items():
        listener: Listener | None = getattr(listen, name)
        if listener is not None:
            update[name] = listener.model_copy(update={"port": port})
    if listen.ops is not None and listen.ops.port != 0:
        update["ops"] = listen.ops.model_copy(update={"port": listen.ops.port + index})
    return config.model_copy(update={"listen": listen.model_copy(update=update)})


def worker_command(config: Path, workers: int, index: int, ports: Mapping[str, int]
                   ) -> list[str]:
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config),
               "--workers", str(workers), "--worker", str(index)]
    for name, port in ports.items():
        command += ["--port", f"{name}={port}"]
    return command


async def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Run one child per command until they exit. 0 when a signal stopped them and each exited
    0; when one exits unasked, the others are stopped and the result is its code (or 1)."""
    loop = asyncio.get_running_loop()
    children: list[asyncio.subprocess.Process] = []
    asked = False

    def forward(sig: signal.Signals) -> None:
        nonlocal asked
        asked = asked or sig != signal.SIGHUP
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)

    loop.add_signal_handler(signal.SIGHUP, forward, signal.SIGHUP)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward, signal.SIGTERM)
    for command in commands:
        if asked:
            break
        children.append(await asyncio.create_subprocess_exec(*command,
                                                             preexec_fn=_die_with_parent))
    log.info("supervisor pid %d: %d workers (pids %s)", os.getpid(), len(children),
             ", ".join(str(child.pid) for child in children))
    waits = [asyncio.ensure_future(child.wait()) for child in children]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    unasked = not asked
    if unasked:
        gone = next(child for child in children if child.returncode is not None)
        log.error("worker pid %d exited with %s; stopping the others", gone.pid, gone.returncode)
        forward(signal.SIGTERM)
    codes = await asyncio.gather(*waits)
    if not unasked and all(code == 0 for code in codes):
        return 0
    return next((code for code in codes if code > 0), 1)


def _die_with_parent() -> None:
    """In a new worker, before exec: SIGTERM when the supervisor dies, even by SIGKILL (Linux),
    so no worker outlives it unsupervised."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
