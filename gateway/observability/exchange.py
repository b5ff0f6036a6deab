"""Exchange: one request as observability sees it, filled in as the call travels the chain.

The one mutable record of the request path. The Observe policy makes it and puts it in a context
variable; policies further in (and the backend tap, BFF parts included) note what they learn.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from gateway.call import Call
from gateway.errors import Code, GatewayError


@dataclass(slots=True, eq=False)
class Exchange:
    call: Call  # as the edge handed it to the chain
    started: float  # time.perf_counter() when the chain began
    trace_id: str = ""  # 32 hex digits; "" when there is no trace
    user: str = ""  # principal subject, once authenticated; never a credential
    backend: str = ""  # the backend called ("a,b" when an aggregate called several)
    backend_start: float = 0.0  # first backend call began (perf_counter)
    backend_end: float = 0.0  # last backend call ended
    calls: int = 0  # backend calls made (an aggregate makes several)
    attempts: int = 0  # backend attempts over all those calls (retries included)
    code: Code = Code.OK
    error: GatewayError | None = None
    duration_s: float = 0.0

    @property
    def backend_s(self) -> float:
        """Wall time from the first backend call's start to the last one's end."""
        return self.backend_end - self.backend_start

    @property
    def retries(self) -> int:
        return self.attempts - self.calls

    def note_backend(self, backend: str, started: float, ended: float, attempts: int) -> None:
        if not self.calls:
            self.backend, self.backend_start, self.backend_end = backend, started, ended
        else:
            if backend and backend not in self.backend.split(","):
                self.backend = f"{self.backend},{backend}" if self.backend else backend
            self.backend_start = min(self.backend_start, started)
            self.backend_end = max(self.backend_end, ended)
        self.calls += 1
        self.attempts += attempts


CURRENT: ContextVar[Exchange | None] = ContextVar("gateway_exchange", default=None)
