"""Upstream: the terminal Handler. breaker -> retry(concurrency slot -> pick instance -> grpc.aio
call -> record the outcome) for the four call kinds; built from config, started and closed."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from gateway.call import Call, Kind, Metadata, Reply, StreamEnd
from gateway.config import Backend, GatewayConfig
from gateway.errors import DeadlineExceeded, Unimplemented
from gateway.upstream.balancer import make_balancer
from gateway.upstream.breaker import Breakers, BreakerStatus, CircuitBreaker, State
from gateway.upstream.budget import RetryBudget
from gateway.upstream.channel import credentials, open_channel
from gateway.upstream.discovery import Discovery
from gateway.upstream.health import HealthChecker
from gateway.upstream.idle import IdleTimer, touching
from gateway.upstream.limit import ConcurrencyLimit
from gateway.upstream.outlier import OutlierDetector
from gateway.upstream.pool import BackendPool, Instance, InstanceStatus, Picked
from gateway.upstream.retry import RetryPolicy, Sleep
from gateway.upstream.status import BackendFailed, Failure, classify, to_metadata

if TYPE_CHECKING:
    from gateway.observability.explain import Explanation

REQUEST_ID = "x-request-id"


@dataclass(frozen=True, slots=True, eq=False)
class _Backend:
    """Everything the gateway holds for one backend, built once."""

    name: str
    config: Backend
    pool: BackendPool
    breakers: Breakers
    budget: RetryBudget
    limit: ConcurrencyLimit
    retry: RetryPolicy


@dataclass(frozen=True, slots=True)
class BackendStatus:
    instances: tuple[InstanceStatus, ...]
    breakers: tuple[BreakerStatus, ...]
    in_flight: int
    max_requests: int
    resolve_failures: int = 0  # DNS lookups of its dns: addresses that got no answer


DEADLINE_OFFSET_S = 0.005


class Upstream:
    """Routes a Call to the backend serving its service and returns the backend's Reply."""

    def __init__(self, backends: Mapping[str, _Backend], services: Mapping[str, str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backends = backends
        self._routes = {service: backends[name] for service, name in services.items()}
        self._clock = clock
        self.health = HealthChecker({
            name: (b.config.health_check, b.pool.instances) for name, b in backends.items()
        }, on_recovered=lambda name: backends[name].breakers.recovered(),
            on_unreachable=lambda name: self.discovery[name].soon())
        self.discovery = {name: Discovery(name, b.config, b.pool, self.health)
                          for name, b in backends.items()}

    @classmethod
    def from_config(cls, config: GatewayConfig, services: Mapping[str, str],
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Sleep = asyncio.sleep) -> Upstream:
        """`services` maps proto service full names to backend names."""
        creds = {name: credentials(name, b.tls) for name, b in config.backends.items()}
        backends = {}
        for name, backend in config.backends.items():
            server_name = backend.tls.server_name if backend.tls else None
            connect = functools.partial(open_channel, creds=creds[name], server_name=server_name,
                                        max_reply_bytes=config.transcoding.max_reply_bytes)
            instances = [Instance(address, connect(address))
                         for address in backend.addresses if not address.startswith("dns:")]
            outlier = OutlierDetector(name, backend.outlier, instances)
            budget = RetryBudget(backend.retry, clock)
            backends[name] = _Backend(
                name, backend,
                BackendPool(name, instances, make_balancer(backend.lb), outlier, clock, connect),
                Breakers(name, backend.breaker, clock), budget,
                ConcurrencyLimit(name, backend.max_requests),
                RetryPolicy(backend.retry, budget, clock, sleep),
            )
        return cls(backends, services, clock)

    async def start(self) -> None:
        await asyncio.gather(*(d.start() for d in self.discovery.values()))
        await self.health.start()

    async def close(self) -> None:
        for discovery in self.discovery.values():
            await discovery.close()
        await self.health.close()
        for backend in self._backends.values():
            await backend.pool.close()

    def ready(self) -> bool:
        """Every required backend has an instance that passes its health check."""
        return all(self.health.healthy_instances(name) >= 1
                   for name, backend in self._backends.items() if backend.config.required)

    def snapshot(self) -> dict[str, BackendStatus]:
        return {
            name: BackendStatus(b.pool.status(), b.breakers.status(), b.limit.in_flight,
                                b.limit.max_requests, self.discovery[name].failures)
            for name, b in self._backends.items()
        }

    async def __call__(self, call: Call) -> Reply:
        service = call.method[1:].partition("/")[0]
        backend = self._routes.get(service)
        if backend is None:
            raise Unimplemented(f"no backend serves {service!r}")
        breaker = backend.breakers.get(call.method)
        if call.explain is not None:
            call.explain.breaker(backend.name, call.method, breaker)
        probe = breaker.admit()
        idle = _idle_timer(backend, call)
        if idle is not None and call.kind.streams_requests:
            assert not isinstance(call.payload, bytes)
            call = dataclasses.replace(call, payload=touching(call.payload, idle))
        try:
            backend.budget.record_request()
            if call.kind.streams_replies:
                return await self._open_stream(backend, breaker, probe, call, idle)
            tried: list[Instance] = []
            try:
                return await self._unary(backend, breaker, probe, call, tried, idle)
            except BackendFailed as failed:
                return await backend.retry.after(
                    failed, call,
                    lambda: self._unary(backend, breaker, probe, call, tried, idle),
                    lambda: breaker.state is State.CLOSED,
                )
        finally:
            breaker.release(probe)

    async def _unary(self, backend: _Backend, breaker: CircuitBreaker, probe: bool, call: Call,
                     tried: list[Instance], idle: IdleTimer | None = None) -> Reply:
        rpc, picked = self._start(backend, call, tried)
        try:
            try:
                if idle is None:
                    payload = await rpc
                else:  # a client stream: the reply may wait while requests still flow
                    try:
                        async with idle.watch():
                            payload = await rpc
                    except TimeoutError:
                        rpc.cancel()
                        raise idle.expired() from None
                initial = to_metadata(await rpc.initial_metadata())
                trailers = to_metadata(await rpc.trailing_metadata())
            except grpc.aio.AioRpcError as exc:
                failure = classify(exc, backend.name)
                _record(backend, breaker, picked, probe, failure, call.explain)
                raise BackendFailed(failure) from None
            _record(backend, breaker, picked, probe, None, call.explain)
        finally:
            _give_back(backend, picked)
        return Reply(payload, initial, trailers, backend=backend.name)

    async def _open_stream(self, backend: _Backend, breaker: CircuitBreaker, probe: bool,
                           call: Call, idle: IdleTimer | None = None) -> Reply:
        """Open a reply stream; never retried (T-11). Its outcome counts when it ends (grpc.aio
        reports even a refused connection only then); a stream cut short counts for nothing."""
        rpc, picked = self._start(backend, call, [])
        try:
            initial = to_metadata(await rpc.initial_metadata())
        except BaseException:
            rpc.cancel()
            _give_back(backend, picked)
            raise
        # the slot and the instance load last as long as the stream (at once if already over)
        rpc.add_done_callback(lambda _: _give_back(backend, picked))
        ended = functools.partial(_record, backend, breaker, picked, probe)
        end = StreamEnd()
        return Reply(_replies(rpc, backend.name, ended, end, idle), initial,
                     backend=backend.name, stream_end=end)

    def _start(self, backend: _Backend, call: Call, tried: list[Instance]) -> tuple[Any, Picked]:
        """Take a slot and an instance and start the call on it. The caller hands both back
        with _give_back when the call is over (try/finally, not an ExitStack: per call)."""
        timeout = self._timeout(call, backend.config)
        backend.limit.acquire()
        try:
            picked = backend.pool.pick(tried)
        except BaseException:
            backend.limit.release()
            raise
        try:
            tried.append(picked.instance)
            if call.explain is not None:
                call.explain.attempt(backend.pool, backend.config.lb, call.method, picked)
            invoke = picked.instance.multicallable(call.method, call.kind)
            return invoke(call.payload, timeout=timeout, metadata=_outgoing(call) or None), picked
        except BaseException:
            _give_back(backend, picked)
            raise

    def _timeout(self, call: Call, config: Backend) -> float | None:
        if call.deadline is None:  # None: the call runs until it ends
            if call.kind is not Kind.UNARY:
                return config.stream_timeout_s
            return config.timeout_s if config.default_deadline else None
        # Leave the backend a little less than we have (Envoy's grpc_timeout_header_offset), so
        # its DEADLINE_EXCEEDED reaches our client before the client's own timer fires (T-16).
        remaining = call.deadline - self._clock() - DEADLINE_OFFSET_S
        if remaining <= 0:
            raise DeadlineExceeded(f"deadline exceeded before calling {call.method}")
        return remaining


def _give_back(backend: _Backend, picked: Picked) -> None:
    backend.pool.release(picked)
    backend.limit.release()


def _record(backend: _Backend, breaker: CircuitBreaker, picked: Picked, probe: bool,
            failure: Failure | None, explain: Explanation | None = None) -> None:
    if explain is not None:
        explain.attempt_done(picked, failure)
    fault = failure is not None and failure.fault
    backend.pool.record(picked, fault, unreachable=failure is not None and failure.transport)
    breaker.record(fault, probe)


def _outgoing(call: Call) -> Metadata:
    """The call's metadata, with its request id on every attempt."""
    if call.request_id and all(key != REQUEST_ID for key, _ in call.metadata):
        return (*call.metadata, (REQUEST_ID, call.request_id))
    return call.metadata


def _idle_timer(backend: _Backend, call: Call) -> IdleTimer | None:
    idle_s = backend.config.stream_idle_timeout_s
    if idle_s is None or call.kind is Kind.UNARY:
        return None
    return IdleTimer(backend.name, idle_s)


async def _replies(rpc: Any, backend: str, ended: Callable[[Failure | None], None],
                   end: StreamEnd, idle: IdleTimer | None = None) -> AsyncIterator[bytes]:
    """The reply stream; closing it early (client gone) cancels the backend call. Idle (no
    message either way for the idle time): DEADLINE_EXCEEDED, counted for nothing (no fault).
    At its end `end` holds the backend's trailers (a failure carries them on its error)."""
    try:
        if idle is None:
            async for message in rpc:
                yield message
        else:
            while True:
                try:
                    async with idle.watch():
                        message = await rpc.read()
                except TimeoutError:
                    raise idle.expired() from None
                if message is grpc.aio.EOF:
                    break
                yield message
        end.trailers = to_metadata(await rpc.trailing_metadata())
    except grpc.aio.AioRpcError as exc:
        failure = classify(exc, backend)
        ended(failure)
        raise failure.error from None
    else:
        ended(None)
    finally:
        rpc.cancel()
