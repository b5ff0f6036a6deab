"""The instances of one backend: channel, health, ejection and load per instance; pick() one.

Instances come and go while the gateway runs (dns: addresses, discovery.py): add() opens the
channel of a new address; remove() takes an instance out of pick() at once and closes its
channel when its last call in flight is over (streams included), so no call is cut.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc

from gateway.call import Kind
from gateway.errors import Unavailable
from gateway.upstream.balancer import Balancer
from gateway.upstream.outlier import Ejection, OutlierDetector


class Health(Enum):
    UNKNOWN = "unknown"  # not checked yet: still picked, not counted as ready
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(eq=False, slots=True)
class Instance:
    """One address of a backend and the state the gateway keeps about it."""

    address: str
    channel: grpc.aio.Channel
    health: Health = Health.HEALTHY
    why: str = ""  # why it is unhealthy, for the 503: "not serving" | "unreachable"
    outstanding: int = 0  # calls in flight (streams until they end)
    ejection: Ejection = field(default_factory=Ejection)
    _callables: dict[tuple[str, Kind], Callable[..., Any]] = field(default_factory=dict)

    def multicallable(self, method: str, kind: Kind) -> Callable[..., Any]:
        key = (method, kind)
        found = self._callables.get(key)
        if found is None:
            # No (de)serializers: payloads pass through as the serialized bytes they are.
            factory = getattr(self.channel, kind.value)
            found = factory(method, _registered_method=True)
            self._callables[key] = found
        return found


@dataclass(frozen=True, slots=True, eq=False)
class Picked:
    instance: Instance
    probe: int  # non-zero: the one call let through to an instance whose ejection ran out


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    address: str
    health: str
    ejected: bool
    ejections: int
    outstanding: int


class BackendPool:
    """pick() skips unhealthy and ejected instances and prefers ones not tried yet."""

    def __init__(self, name: str, instances: Sequence[Instance], balancer: Balancer,
                 outlier: OutlierDetector, clock: Callable[[], float],
                 connect: Callable[..., grpc.aio.Channel] | None = None) -> None:
        self.name = name
        self.instances = tuple(instances)
        self._balancer = balancer
        self._outlier = outlier
        self._clock = clock
        self._connect = connect
        self._draining: dict[str, Instance] = {}  # removed, calls still in flight
        self._closing: set[asyncio.Task[None]] = set()
        # Called when a call or a pick finds no instance reachable (discovery re-resolves).
        self.on_unreachable: Callable[[], None] = lambda: None

    @property
    def draining(self) -> int:
        """Removed instances whose calls in flight have not all ended yet."""
        return len(self._draining)

    def add(self, address: str, authority: str | None = None) -> Instance:
        """A new instance (or a draining one back in rotation, its state kept); `authority`:
        the name:port it was resolved from (see channel.open_channel)."""
        instance = self._draining.pop(address, None)
        if instance is None:
            if self._connect is None:
                raise RuntimeError(f"backend {self.name!r} cannot open channels")
            instance = Instance(address, self._connect(address, authority=authority))
        self.instances = (*self.instances, instance)
        self._outlier.track(self.instances)
        return instance

    def remove(self, instance: Instance) -> None:
        """No new calls; the channel closes once the calls in flight are over."""
        self.instances = tuple(i for i in self.instances if i is not instance)
        self._outlier.track(self.instances)
        if instance.outstanding:
            self._draining[instance.address] = instance
        else:
            self._close_later(instance)

    def _close_later(self, instance: Instance) -> None:
        task = asyncio.get_running_loop().create_task(instance.channel.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def pick(self, avoid: Collection[Instance] = ()) -> Picked:
        now = self._clock()
        usable = [i for i in self.instances
                  if i.health is not Health.UNHEALTHY and self._outlier.admits(i, now)]
        fresh = [i for i in usable if i not in avoid] or usable
        if not fresh:
            self.on_unreachable()
            raise Unavailable(self._none_usable())
        instance = self._balancer.pick(fresh)
        picked = Picked(instance, self._outlier.picked(instance, now))
        instance.outstanding += 1
        return picked

    def _none_usable(self) -> str:
        """Why no instance can take the call, counted by reason; never an address."""
        if not self.instances:
            return f"backend {self.name!r} has no instance (its addresses resolve to none)"
        reasons: Counter[str] = Counter(
            (i.why or "unhealthy") if i.health is Health.UNHEALTHY else "ejected"
            for i in self.instances
        )
        counted = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        return f"backend {self.name!r} has no healthy instance: {counted}"

    def record(self, picked: Picked, fault: bool, unreachable: bool = False) -> None:
        self._outlier.record(picked.instance, fault, picked.probe, self._clock())
        if unreachable:
            self.on_unreachable()

    def release(self, picked: Picked) -> None:
        instance = picked.instance
        instance.outstanding -= 1
        if picked.probe:
            self._outlier.probe_done(instance, picked.probe)
        if not instance.outstanding and self._draining.get(instance.address) is instance:
            del self._draining[instance.address]
            self._close_later(instance)

    def status(self) -> tuple[InstanceStatus, ...]:
        now = self._clock()
        return tuple(
            InstanceStatus(i.address, i.health.value, self._outlier.ejected(i, now),
                           i.ejection.times, i.outstanding)
            for i in self.instances
        )

    async def close(self) -> None:
        for instance in (*self.instances, *self._draining.values()):
            await instance.channel.close()
        self._draining.clear()
        if self._closing:
            await asyncio.gather(*self._closing)
