"""Active health checks (T-06): grpc.health.v1 Check on each instance every interval_s.

Polling Check (as Envoy's gRPC health checker does) rather than Watch, so timeout_s and both
thresholds mean what they say. An explicit NOT_SERVING answer takes the instance out at once;
errors and timeouts must repeat unhealthy_threshold times. So a NOT_SERVING flip stops new calls
within interval_s (+ the check's round trip): set interval_s <= 1 for T-06's 1 s.
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


class HealthChecker:
    """Checks every instance of every backend whose health_check is enabled."""

    def __init__(self, backends: Mapping[str, tuple[HealthCheck, Sequence[Instance]]]) -> None:
        self._instances = {name: tuple(instances) for name, (_, instances) in backends.items()}
        self._targets = [
            _Target(name, config, instance, instance.channel.unary_unary(
                CHECK,
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            ))
            for name, (config, instances) in backends.items() if config.enabled
            for instance in instances
        ]
        for target in self._targets:
            target.instance.health = Health.UNKNOWN
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Check every instance once (so readiness is known on return), then every interval_s."""
        await self.check_now()
        self._tasks = [asyncio.create_task(self._every_interval(t)) for t in self._targets]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def check_now(self) -> None:
        """One check of every instance, concurrently."""
        await asyncio.gather(*(self._check(target) for target in self._targets))

    def healthy_instances(self, backend: str) -> int:
        return sum(1 for i in self._instances.get(backend, ()) if i.health is Health.HEALTHY)

    def snapshot(self) -> dict[str, dict[str, str]]:
        """backend -> instance address -> "healthy" | "unhealthy" | "unknown"."""
        return {name: {i.address: i.health.value for i in instances}
                for name, instances in self._instances.items()}

    async def _every_interval(self, target: _Target) -> None:
        while True:
            await asyncio.sleep(target.config.interval_s)
            await self._check(target)

    async def _check(self, target: _Target) -> None:
        request = health_pb2.HealthCheckRequest(service=target.config.service)
        try:
            reply = await target.check(request, timeout=target.config.timeout_s)
        except grpc.aio.AioRpcError as exc:
            self._observe(target, ok=False, said_so=False, why=exc.code().name)
            return
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        why = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        self._observe(target, ok=serving, said_so=True, why=why)

    def _observe(self, target: _Target, ok: bool, said_so: bool, why: str) -> None:
        instance, config = target.instance, target.config
        if ok:
            target.successes, target.failures = target.successes + 1, 0
            if instance.health is Health.UNKNOWN or (
                instance.health is Health.UNHEALTHY
                and target.successes >= config.healthy_threshold
            ):
                self._become(target, Health.HEALTHY, why)
            return
        target.successes, target.failures = 0, target.failures + 1
        if instance.health is not Health.UNHEALTHY and (
            said_so or instance.health is Health.UNKNOWN
            or target.failures >= config.unhealthy_threshold
        ):
            self._become(target, Health.UNHEALTHY, why)

    @staticmethod
    def _become(target: _Target, health: Health, why: str) -> None:
        target.instance.health = health
        level = logging.INFO if health is Health.HEALTHY else logging.WARNING
        log.log(level, "backend %r instance %s is %s (%s)", target.backend,
                target.instance.address, health.value, why)
