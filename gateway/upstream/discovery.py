"""Keeps one backend's instances in step with its `addresses`: plain host:port entries once, dns:
entries resolved at start, every resolve_interval_s, and at once when an instance cannot be
reached (a call's transport failure, an unreachable health check, no usable instance), at most
once per RERESOLVE_MIN_S.

A re-resolution changes only what changed: a new address gets its channel and health check and
takes calls; a gone one takes no new calls and its channel closes when its calls in flight are
over (BackendPool.remove); addresses that stay keep their Instance, so health, ejection and
calls in flight survive. A failed lookup keeps that entry's last good set (logged, counted in
`failures`, the gateway_backend_resolve_failures metric). Log lines name the config entry
(backends.<name>.addresses.<i>), never the DNS name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from gateway.config import Backend
from gateway.naming import DnsName, parse_address
from gateway.upstream.health import HealthChecker
from gateway.upstream.pool import BackendPool
from gateway.upstream.resolver import ResolveFailed, Resolver

log = logging.getLogger(__name__)
RERESOLVE_MIN_S = 1.0  # on-demand lookups no more often than this (or resolve_interval_s)


class Discovery:
    """The addresses of one backend, applied to its pool and its health checker."""

    def __init__(self, backend: str, config: Backend, pool: BackendPool, health: HealthChecker,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backend = backend
        self.pool = pool
        self._health = health
        self._clock = clock
        self._interval = config.resolve_interval_s
        self._min_gap = min(RERESOLVE_MIN_S, self._interval)
        entries = [(i, parse_address(a)) for i, a in enumerate(config.addresses)]
        self._static = tuple(a for _, a in entries if isinstance(a, str))
        self._resolvers = {i: Resolver(a) for i, a in entries if isinstance(a, DnsName)}
        self._last: dict[int, tuple[str, ...]] = {}  # entry -> its last good answer
        self._authority = {i: f"{a.host}:{a.port}" for i, a in entries if isinstance(a, DnsName)}
        self._resolved_at = float("-inf")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # lookups that got no answer
        pool.on_unreachable = self.soon

    async def start(self) -> None:
        """Resolve once (so the first health round and readiness see the instances)."""
        if not self._resolvers:
            return
        await self.resolve_now()
        self._task = asyncio.create_task(self._every_interval())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def soon(self) -> None:
        """An instance cannot be reached: look the names up again without waiting."""
        if self._resolvers:
            self._wake.set()

    async def resolve_now(self) -> None:
        self._resolved_at = self._clock()
        order = list(self._resolvers)
        answers = await asyncio.gather(*(self._resolvers[i].resolve() for i in order),
                                       return_exceptions=True)
        for i, answer in zip(order, answers, strict=True):
            if isinstance(answer, ResolveFailed):
                self.failures += 1
                kept = self._last.get(i, ())
                log.warning("backends.%s.addresses.%d: DNS lookup failed (%s); keeping its %d "
                            "last address(es)", self._backend, i, answer, len(kept))
            elif isinstance(answer, BaseException):
                raise answer
            else:
                if not answer and self._last.get(i):
                    log.warning("backends.%s.addresses.%d resolves to no address",
                                self._backend, i)
                self._last[i] = answer
        self._apply()

    def _apply(self) -> None:
        wanted: dict[str, str | None] = dict.fromkeys(self._static)
        for i in sorted(self._last):
            for address in self._last[i]:
                wanted.setdefault(address, self._authority[i])
        current = {instance.address: instance for instance in self.pool.instances}
        for address, authority in wanted.items():
            if address not in current:
                self._health.add(self._backend, self.pool.add(address, authority))
                log.info("backend %r: instance %s added", self._backend, address)
        for address, instance in current.items():
            if address not in wanted:
                self.pool.remove(instance)
                self._health.remove(self._backend, instance)
                log.info("backend %r: instance %s removed (its calls in flight finish)",
                         self._backend, address)

    async def _every_interval(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
                # woken early: wait out the minimum gap since the last lookup
                await asyncio.sleep(max(0.0, self._resolved_at + self._min_gap - self._clock()))
            self._wake.clear()
            try:
                await self.resolve_now()
            except Exception:  # a bug must not stop discovery for the life of the process
                log.exception("backends.%s: applying a DNS lookup failed", self._backend)
