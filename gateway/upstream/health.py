"""Active health checks (T-06): grpc.health.v1 Check on each instance every interval_s.

Polling Check (as Envoy's gRPC health checker does) rather than Watch, so timeout_s and both
thresholds mean what they say. An explicit NOT_SERVING answer takes the instance out at once;
errors and timeouts must repeat unhealthy_threshold times. So a NOT_SERVING flip stops new calls
within interval_s (+ the check's round trip): set interval_s <= 1 for T-06's 1 s.

A server without grpc.health.v1 answers UNIMPLEMENTED: that instance is healthy (as gRPC's own
client-side health checking, gRFC A17, has it), with one warning per instance, so a plain
grpc.aio server works with the defaults. NOT_SERVING (and NOT_FOUND: the service is unknown to
the health service) is "not serving"; any other error or a timeout is "unreachable".

A SERVING answer after a failed check is a recovery: `on_recovered(backend)` is called, and
the upstream half-opens that backend's open breakers at once instead of at the end of their
cooldown (recovery within about one interval_s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from gateway.config import HealthCheck
from gateway.upstream.pool import Health, Instance

log = logging.getLogger(__name__)
CHECK = "/grpc.health.v1.Health/Check"


@dataclass(eq=False, slots=True)
class _Target:
    backend: str
    config: HealthCheck
    instance: Instance
    check: Callable[..., Any]
    successes: int = 0  # in a row
    failures: int = 0  # in a row
    warned: bool = False  # the UNIMPLEMENTED warning was logged
    recovering: bool = False  # a check failed since the instance was last healthy


class HealthChecker:
    """Checks every instance of every backend whose health_check is enabled; instances added
    while it runs (add) are checked at once, then every interval_s."""

    def __init__(self, backends: Mapping[str, tuple[HealthCheck, Sequence[Instance]]],
                 on_recovered: Callable[[str], None] = lambda backend: None,
                 on_unreachable: Callable[[str], None] = lambda backend: None) -> None:
        self._on_recovered = on_recovered
        self._on_unreachable = on_unreachable
        self._configs = {name: config for name, (config, _) in backends.items()}
        self._instances: dict[str, tuple[Instance, ...]] = {name: () for name in backends}
        self._targets: dict[Instance, _Target] = {}
        self._tasks: dict[Instance, asyncio.Task[None]] = {}
        self._started = False
        for name, (_, instances) in backends.items():
            for instance in instances:
                self.add(name, instance)

    def add(self, backend: str, instance: Instance) -> None:
        self._instances[backend] = (*self._instances[backend], instance)
        config = self._configs[backend]
        if not config.enabled:
            return
        instance.health = Health.UNKNOWN
        target = _Target(backend, config, instance, instance.channel.unary_unary(
            CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        ))
        self._targets[instance] = target
        if self._started:
            self._tasks[instance] = asyncio.create_task(self._every_interval(target, first=True))

    def remove(self, backend: str, instance: Instance) -> None:
        self._instances[backend] = tuple(i for i in self._instances[backend] if i is not instance)
        self._targets.pop(instance, None)
        task = self._tasks.pop(instance, None)
        if task is not None:
            task.cancel()

    async def start(self) -> None:
        """Check every instance once (so readiness is known on return), then every interval_s."""
        await self.check_now()
        self._started = True
        self._tasks = {instance: asyncio.create_task(self._every_interval(target))
                       for instance, target in self._targets.items()}

    async def close(self) -> None:
        self._started = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_now(self) -> None:
        """One check of every instance, concurrently."""
        await asyncio.gather(*(self._check(target) for target in list(self._targets.values())))

    def healthy_instances(self, backend: str) -> int:
        return sum(1 for i in self._instances.get(backend, ()) if i.health is Health.HEALTHY)

    def snapshot(self) -> dict[str, dict[str, str]]:
        """backend -> instance address -> "healthy" | "unhealthy" | "unknown"."""
        return {name: {i.address: i.health.value for i in instances}
                for name, instances in self._instances.items()}

    async def _every_interval(self, target: _Target, first: bool = False) -> None:
        if first:
            await self._check(target)
        while True:
            await asyncio.sleep(target.config.interval_s)
            await self._check(target)

    async def _check(self, target: _Target) -> None:
        request = health_pb2.HealthCheckRequest(service=target.config.service)
        try:
            reply = await target.check(request, timeout=target.config.timeout_s)
        except grpc.aio.UsageError:  # its channel is closed: the instance was removed
            return
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code is grpc.StatusCode.UNIMPLEMENTED:
                self._no_health_service(target)
                self._observe(target, ok=True, said_so=True, why="no health service")
            elif code is grpc.StatusCode.NOT_FOUND:  # the health service does not know it
                self._observe(target, ok=False, said_so=True, why=code.name)
            else:
                self._observe(target, ok=False, said_so=False, why=code.name)
            return
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        why = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        self._observe(target, ok=serving, said_so=True, why=why)

    @staticmethod
    def _no_health_service(target: _Target) -> None:
        if not target.warned:
            target.warned = True
            log.warning("backend %r instance %s has no grpc.health.v1 service (UNIMPLEMENTED): "
                        "taken as healthy while it answers", target.backend,
                        target.instance.address)

    def _observe(self, target: _Target, ok: bool, said_so: bool, why: str) -> None:
        instance, config = target.instance, target.config
        if ok:
            target.successes, target.failures = target.successes + 1, 0
            if instance.health is Health.UNKNOWN or (
                instance.health is Health.UNHEALTHY
                and target.successes >= config.healthy_threshold
            ):
                self._become(target, Health.HEALTHY, why)
            if target.recovering and instance.health is Health.HEALTHY:
                target.recovering = False  # serving again after a failed check, and usable
                self._on_recovered(target.backend)
            return
        target.successes, target.failures = 0, target.failures + 1
        target.recovering = True
        if instance.health is Health.UNHEALTHY:
            instance.why = "not serving" if said_so else "unreachable"
        elif (
            said_so or instance.health is Health.UNKNOWN
            or target.failures >= config.unhealthy_threshold
        ):
            self._become(target, Health.UNHEALTHY, why, said_so)
        if not said_so:
            self._on_unreachable(target.backend)  # a moved instance: discovery re-resolves

    @staticmethod
    def _become(target: _Target, health: Health, why: str, said_so: bool = True) -> None:
        target.instance.health = health
        # said so: the health service answered that it is not serving; else it was not reached
        target.instance.why = "" if health is Health.HEALTHY else (
            "not serving" if said_so else "unreachable")
        level = logging.INFO if health is Health.HEALTHY else logging.WARNING
        log.log(level, "backend %r instance %s is %s (%s)", target.backend,
                target.instance.address, health.value, why)
