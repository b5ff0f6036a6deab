"""Passive outlier ejection (T-03, T-05): consecutive backend faults eject an instance for a
growing time; when that runs out one probe call decides whether it comes back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.config import Outlier

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Ejection:
    """Outlier state of one instance."""

    consecutive: int = 0  # backend faults in a row
    times: int = 0  # ejections in a row (reset by a successful probe)
    until: float | None = None  # ejected until this instant; None = in rotation
    probe: int = 0  # token of the probe in flight; 0 = none
    probes: int = 0  # probes handed out so far (token source)


class HasEjection(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def ejection(self) -> Ejection: ...


class OutlierDetector:
    """Ejects for base x 2^(n-1) capped at max; never more than max_ejection_percent (min one)."""

    def __init__(self, backend: str, config: Outlier, instances: Sequence[HasEjection]) -> None:
        self._backend = backend
        self._config = config
        self._instances: Sequence[HasEjection] = ()
        self._max_ejected = 1
        self.track(instances)

    def track(self, instances: Sequence[HasEjection]) -> None:
        """The backend's instances now (they change with DNS discovery)."""
        self._instances = instances
        self._max_ejected = max(1, len(instances) * self._config.max_ejection_percent // 100)

    def admits(self, instance: HasEjection, now: float) -> bool:
        """In rotation, or its ejection ran out and no probe is in flight."""
        e = instance.ejection
        return e.until is None or (now >= e.until and not e.probe)

    def ejected(self, instance: HasEjection, now: float) -> bool:
        return not self.admits(instance, now)

    def picked(self, instance: HasEjection, now: float) -> int:
        """Note a pick; a pick of an instance out of rotation is its probe (token returned)."""
        e = instance.ejection
        if e.until is None:
            return 0
        e.probes += 1
        e.probe = e.probes
        return e.probe

    def probe_done(self, instance: HasEjection, token: int) -> None:
        if instance.ejection.probe == token:
            instance.ejection.probe = 0

    def record(self, instance: HasEjection, fault: bool, probe: int, now: float) -> None:
        e = instance.ejection
        if e.until is not None:  # out of rotation: only the latest probe's outcome counts
            if not probe or e.probe not in (0, probe):
                return
            e.probe = 0
            if fault:
                self._eject(instance, now)
            else:
                e.until, e.times, e.consecutive = None, 0, 0
                log.info("backend %r instance %s is back in rotation", self._backend,
                         instance.address)
            return
        if not fault:
            e.consecutive = 0
            return
        e.consecutive += 1
        if e.consecutive >= self._config.consecutive_failures and self._room():
            self._eject(instance, now)

    def _room(self) -> bool:
        out = sum(1 for i in self._instances if i.ejection.until is not None)
        return out < self._max_ejected

    def _eject(self, instance: HasEjection, now: float) -> None:
        e = instance.ejection
        e.times += 1
        e.consecutive = 0
        duration = min(self._config.base_ejection_s * 2 ** (e.times - 1),
                       self._config.max_ejection_s)
        e.until = now + duration
        log.warning("backend %r instance %s ejected for %.1f s (ejection %d)", self._backend,
                    instance.address, duration, e.times)
