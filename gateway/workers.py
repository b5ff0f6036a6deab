"""`serve --workers N`: a supervisor runs N `serve` processes sharing the listening ports
(SO_REUSEPORT), forwards SIGTERM/SIGINT/SIGHUP to them and exits when they have exited.

Before any worker starts, every port is probed without SO_REUSEPORT (gateway.startup_errors), so
a port another gateway holds is a one-line error instead of a silent split of its traffic; the
supervisor then holds each shared port (bound with SO_REUSEPORT, not listening) until the workers
are gone, so nothing else takes it meanwhile. Port 0 is resolved then, once, so that every worker
binds the same port. The ops listener is per worker (metrics are per process): port 0 gives each
worker a free port of its own, port P gives worker i port P + i.

A worker that dies is started again after a backoff (0.05 s, doubling per death of that worker in
the crash-loop window, at most 5 s); the supervisor gives up, stops the others and exits 1 only
on a crash loop (Restarts: 5 deaths in 60 s), naming it. A worker that exits 2 at its first start
could not start with this config (its one line says why): restarting cannot help, so that stops
the supervisor at once with 2 (a replacement that exits 2 is a death like any other: the config
file may have been edited since, and the other workers serve on).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.config import GatewayConfig, Listener
from gateway.startup_errors import StartError, preflight, probe

log = logging.getLogger("gateway.workers")

SHARED = ("rest", "grpc")  # listeners every worker binds; ops is per worker
PR_SET_PDEATHSIG = 1
START_ERROR = 2  # a worker's exit code when it cannot start with this config (one line said why)


@dataclass(frozen=True)
class Restarts:
    """When the supervisor starts a dead worker again, and when it gives up (a crash loop)."""

    crash_loop_deaths: int = 5  # deaths of any worker within the window that stop everything
    crash_loop_window_s: float = 60.0
    base_backoff_s: float = 0.05  # before the first restart; doubled per death in the window
    max_backoff_s: float = 5.0


def reserve_ports(config: GatewayConfig, workers: int = 1
                  ) -> tuple[dict[str, int], list[socket.socket]]:
    """Probe every port the workers will bind (StartError if one is taken), then hold each
    shared one (bound with SO_REUSEPORT, not listening) until the workers are gone. Returns the
    port picked for each shared listener on port 0, and the held sockets."""
    preflight(config, ops_ports=workers)
    ports: dict[str, int] = {}
    held: list[socket.socket] = []
    for name in SHARED:
        listener: Listener | None = getattr(config.listen, name)
        if listener is not None:
            try:
                sock = _hold(listener)
            except OSError as exc:  # taken since the probe, a moment ago
                for other in held:
                    other.close()
                probe(f"listen.{name}", listener.host, listener.port)
                raise StartError(f"listen.{name}", f"cannot hold {listener.host}:"
                                 f"{listener.port} for the workers: {exc.strerror}") from None
            held.append(sock)
            if listener.port == 0:
                ports[name] = int(sock.getsockname()[1])
    return ports, held


def _hold(listener: Listener) -> socket.socket:
    """The port bound with SO_REUSEPORT only, so that a probe (SO_REUSEADDR) by another gateway
    fails on it even before the workers listen. Only if that fails on connections of an earlier
    process in TIME_WAIT that had no SO_REUSEPORT (the probe passed): SO_REUSEADDR too."""
    family = socket.getaddrinfo(listener.host, 0, type=socket.SOCK_STREAM)[0][0]
    try:
        return _bound(family, listener, socket.SO_REUSEPORT)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
    return _bound(family, listener, socket.SO_REUSEPORT, socket.SO_REUSEADDR)


def _bound(family: int, listener: Listener, *options: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in options:
            sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind((listener.host, listener.port))
    except BaseException:
        sock.close()
        raise
    return sock


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


def worker_command(config: Path, workers: int, index: int | None, ports: Mapping[str, int]
                   ) -> list[str]:
    """Worker `index`'s command line; index None: the spare's (`--standby`)."""
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config),
               "--workers", str(workers),
               *(["--standby"] if index is None else ["--worker", str(index)])]
    for name, port in ports.items():
        command += ["--port", f"{name}={port}"]
    return command


def wait_as_spare() -> int | None:
    """In a spare (`serve --standby`): import what a worker needs, which is most of a worker's
    start, then wait for the supervisor to write the index of the worker it replaces (None: the
    supervisor closed the pipe, stop)."""
    import gateway.app
    import gateway.observability.accesslog  # noqa: F401

    line = sys.stdin.readline()
    return int(line) if line.strip() else None


class Spare:
    """At most one warm spare worker: a process that has imported the gateway and waits on its
    stdin, so a dead worker's replacement serves in about the time it takes to bind
    instead of a cold start (~1 s of imports on an idle core, several under load)."""

    def __init__(self, command: Sequence[str] | None) -> None:
        self._command = command
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None

    def refill(self) -> None:
        if self._command is not None and self._process is None and self._starting is None:
            self._starting = asyncio.ensure_future(self._start(self._command))

    async def _start(self, command: Sequence[str]) -> None:
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
        finally:
            self._starting = None

    async def take(self, index: int) -> asyncio.subprocess.Process | None:
        """The spare, told to become worker `index`; None if there is none alive."""
        if self._starting is not None:
            with contextlib.suppress(OSError):
                await self._starting
        spare, self._process = self._process, None
        if spare is None or spare.returncode is not None or spare.stdin is None:
            return None
        try:
            spare.stdin.write(f"{index}\n".encode())
            await spare.stdin.drain()
            spare.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            return None
        return spare

    async def close(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(OSError):
                await self._starting
        spare, self._process = self._process, None
        if spare is not None and spare.stdin is not None:
            spare.stdin.close()  # it reads end-of-file and exits 0
            await spare.wait()


async def supervise(commands: Sequence[Sequence[str]], restarts: Restarts = Restarts(),
                    clock: Callable[[], float] = time.monotonic,
                    spare: Sequence[str] | None = None) -> int:
    """Run one child per command, starting each again when it dies (from the warm `spare`
    command's process when there is one), until a signal stops them (0 when each exited 0), a
    crash loop (1) or a child that could not start (2)."""
    loop = asyncio.get_running_loop()
    spares = Spare(spare)
    stopping = asyncio.Event()
    children: dict[int, asyncio.subprocess.Process] = {}
    deaths: deque[float] = deque()  # of any worker, within the crash-loop window
    verdict: list[int] = []  # the supervisor's own exit code once it gave up
    replaced: set[int] = set()  # workers started again at least once

    def forward(sig: signal.Signals) -> None:
        if sig != signal.SIGHUP:
            stopping.set()
        for child in children.values():
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(sig)

    def give_up(code: int, reason: str) -> None:
        if not verdict:
            verdict.append(code)
            log.error("supervisor: %s; stopping the other workers", reason)
        forward(signal.SIGTERM)

    async def run(index: int, command: Sequence[str]) -> int:
        child = None
        while not stopping.is_set():
            if child is not None:  # a restart: the spare if there is one, and a new spare
                child = await spares.take(index)
                spares.refill()
            if child is None:
                child = await asyncio.create_subprocess_exec(*command,
                                                             preexec_fn=_die_with_parent)
            children[index] = child
            if stopping.is_set():  # the signal came while it was being started
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
            code = await child.wait()
            if stopping.is_set():
                return code
            how = _ended(code)
            if code == START_ERROR and index not in replaced:  # the first start: the config
                give_up(START_ERROR, f"worker {index} (pid {child.pid}) could not start ({how})")
                return code
            replaced.add(index)  # a replacement that cannot start (the file edited since)
            now = clock()         # is a death: the others serve on, a crash loop stops it
            deaths.append(now)
            while deaths and deaths[0] <= now - restarts.crash_loop_window_s:
                deaths.popleft()
            if len(deaths) >= restarts.crash_loop_deaths:
                give_up(1, f"crash loop: {len(deaths)} worker deaths in "
                           f"{restarts.crash_loop_window_s:g} s, the last worker {index} "
                           f"(pid {child.pid}) {how}")
                return code
            delay = min(restarts.max_backoff_s,
                        restarts.base_backoff_s * 2 ** (len(deaths) - 1))
            log.error("worker %d (pid %d) %s; starting it again in %.2f s (%d of %d deaths "
                      "in %g s before the supervisor gives up)", index, child.pid, how, delay,
                      len(deaths), restarts.crash_loop_deaths, restarts.crash_loop_window_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
        return 0  # stopped while waiting to start it again: its death was logged

    loop.add_signal_handler(signal.SIGHUP, forward, signal.SIGHUP)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward, signal.SIGTERM)
    log.info("supervisor pid %d: %d workers", os.getpid(), len(commands))
    spares.refill()
    try:
        codes = await asyncio.gather(*(run(i, command) for i, command in enumerate(commands)))
    finally:
        await spares.close()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if verdict:
        return verdict[0]
    if all(code == 0 for code in codes):
        return 0
    return next((code for code in codes if code > 0), 1)


def _ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _die_with_parent() -> None:
    """In a new worker, before exec: SIGTERM when the supervisor dies, even by SIGKILL (Linux),
    so no worker outlives it unsupervised."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
