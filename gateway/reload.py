"""Hot reload: validate a new config completely and start its runtime (prepare), and close the
runtimes a reload replaced once no request holds them any more (Retired)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from gateway.compiled import compile_config
from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.observability.metrics import GatewayMetrics
from gateway.runtime import Runtime, build_runtime

log = logging.getLogger("gateway.reload")

# What is set up once on the listeners: a reload that changes one of these is rejected.
RESTART_ONLY: tuple[tuple[str, Callable[[GatewayConfig], object]], ...] = (
    ("listen.rest", lambda c: c.listen.rest),
    ("listen.grpc", lambda c: c.listen.grpc),
    ("listen.ops", lambda c: c.listen.ops),
    ("connections", lambda c: c.connections),
    ("observability.metrics", lambda c: c.observability.metrics),  # /metrics mounted
)


def check_reloadable(current: GatewayConfig, new: GatewayConfig) -> None:
    """ConfigError naming every restart-only key the new config changes."""
    changed = [key for key, read in RESTART_ONLY if read(current) != read(new)]
    if changed:
        raise ConfigError(f"{', '.join(changed)}: changes need a restart "
                          "(a reload keeps the listeners and what is set up on them)")


async def prepare(current: Runtime, config: GatewayConfig, instances: int) -> Runtime:
    """Compile `config` and build and start its runtime, keeping the gateway's metrics.

    A ready gateway does not swap in a runtime that is not ready (a backend without a healthy
    instance, an issuer without keys): that is most likely a mistake in the new config.
    Raises ConfigError (or what starting raised) and leaves `current` as it was.
    """
    check_reloadable(current.compiled.config, config)
    metrics = current.observability.metrics
    runtime = build_runtime(compile_config(config), instances, metrics,
                            current.observability.access_sink)
    try:
        await runtime.start()
        if current.ready() and not runtime.ready():
            raise ConfigError(f"the new config is not ready: {_unready(runtime)}")
    except BaseException:
        await runtime.close()
        _watch(metrics, current)  # building pointed the scrape-time gauges at the new one
        raise
    return runtime


def _unready(runtime: Runtime) -> str:
    config, health = runtime.compiled.config, runtime.upstream.health
    problems = [f"backends.{name} has no healthy instance ({', '.join(backend.addresses)})"
                for name, backend in config.backends.items()
                if backend.required and health.healthy_instances(name) == 0]
    if not runtime.auth.ready():
        problems.append("an auth issuer has no keys (its JWKS fetch failed)")
    return "; ".join(problems)


def _watch(metrics: GatewayMetrics | None, runtime: Runtime) -> None:
    if metrics is not None:
        metrics.watch(runtime.upstream, runtime.limiter.limiter)


class Retired:
    """Runtimes replaced by a reload, each closed once the edge tables made from it are gone.

    Every request holds the tables it started with (read once from its edge), so when the
    last reference goes the runtime has no request left: the interpreter counts them, the
    request path does nothing extra. `grace_s` bounds the wait.
    """

    def __init__(self) -> None:
        self._closing: dict[asyncio.Task[None], asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._closing)

    def retire(self, runtime: Runtime, tables: list[object], grace_s: float) -> None:
        """Close `runtime` when every object in `tables` is gone. Empties `tables`: the caller
        must keep no other reference to them."""
        loop = asyncio.get_running_loop()
        released = asyncio.Event()
        left = [len(tables)]

        def one_gone() -> None:  # on the loop's thread
            left[0] -= 1
            if left[0] == 0:
                released.set()

        def gone() -> None:  # wherever the last reference went (the GC may run on any thread)
            if not loop.is_closed():
                loop.call_soon_threadsafe(one_gone)

        finalizers = [weakref.finalize(held, gone) for held in tables]
        tables.clear()
        for finalizer in finalizers:
            finalizer.atexit = False
        if not finalizers:
            released.set()
        task = loop.create_task(_close_when_released(runtime, released, finalizers, grace_s))
        self._closing[task] = released
        task.add_done_callback(self._closing.pop)

    async def wait(self) -> None:
        """Until every retired runtime is closed."""
        while self._closing:
            await asyncio.gather(*self._closing)

    async def close_now(self) -> None:
        """Close every retired runtime without waiting for its requests (at shutdown)."""
        for released in self._closing.values():
            released.set()
        await self.wait()


async def _close_when_released(runtime: Runtime, released: asyncio.Event,
                               finalizers: list[weakref.finalize[[], object]],
                               grace_s: float) -> None:
    try:
        await asyncio.wait_for(released.wait(), grace_s)
    except TimeoutError:
        log.warning("closing a replaced config's runtime after %.1f s with requests still on it",
                    grace_s)
    finally:
        for finalizer in finalizers:
            finalizer.detach()
    await runtime.close()
