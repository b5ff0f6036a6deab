"""The explanation of one request: every decision the gateway made for it, as a list of steps.

An edge makes an Explanation only for a request that carries `x-gateway-explain`; otherwise
`Call.explain` is None and each decision point's `if call.explain is not None` is all it costs.
Whether the caller may see it is decided later (gateway/observability/explainer.py): with the
admin token as the header's value at the chain's head, or by the principal's roles once
authentication noted them. Until then, and for a caller who may not ask, it is only a list that
is dropped at the end: no header, no trailer, nothing stored, no span event.

What a step may hold (checked by tests/observability/test_explain.py): names, codes, counts,
durations, the route's path variables, backend instance addresses (the admin API lists them
too). Never a credential (of a token only its issuer, kid, algorithm, subject and roles), never
a header or body value, never a query value. Values are cut to a bounded size and an
explanation to MAX_STEPS steps, so one explanation stays within a few kilobytes.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from gateway.call import Principal
    from gateway.config import AccessRule
    from gateway.errors import GatewayError
    from gateway.ratelimit.limiter import Decision
    from gateway.transcode.route import Route
    from gateway.upstream.breaker import CircuitBreaker
    from gateway.upstream.pool import BackendPool, Picked
    from gateway.upstream.status import Failure

KEY = "x-gateway-explain"  # the request header / gRPC metadata key, and the reply's
MAX_STEPS = 64
MAX_TEXT = 160  # characters of any one value
MAX_ITEMS = 16  # entries of any one list
REDACTED = "[redacted]"
Step = dict[str, Any]
_SCALARS = frozenset({int, float, bool, type(None)})


class Explanation:
    """Steps noted as a request goes through the chain; finished once, by its edge."""

    __slots__ = ("edge", "request_id", "started", "wall", "steps", "dropped", "principal",
                 "asked", "policy", "by_admin", "span", "_attempts", "_events")

    def __init__(self, edge: str, request_id: str, asked: str) -> None:
        self.edge = edge
        self.request_id = request_id
        self.started = time.monotonic()
        self.wall = time.time()
        self.steps: list[Step] = []
        self.dropped = 0  # steps over MAX_STEPS
        self.principal: Principal | None = None
        self.asked = asked  # the header's value until the chain's head reads it (then "")
        self.policy: Any = None  # the Explainer that bound it (None: explain is off)
        self.by_admin = False
        self.span: Span | None = None  # the request's span, when tracing is on
        self._attempts: dict[int, tuple[Step, float]] = {}  # id(Picked) -> its step, start
        self._events = 0  # steps already sent as span events

    @property
    def allowed(self) -> bool:
        if self.policy is None:
            return False
        return self.by_admin or self.policy.permits(self.principal)

    def note(self, step: str, **fields: Any) -> Step:
        """Record a step (its values bounded); returns it, for a step finished later."""
        entry: Step = {"step": step, "at_ms": _ms(time.monotonic() - self.started)}
        for key, value in fields.items():  # most values are small scalars: checked inline
            plain = type(value) in _SCALARS or type(value) is str and len(value) <= MAX_TEXT
            entry[key] = value if plain else _bounded(value)
        if len(self.steps) < MAX_STEPS:
            self.steps.append(entry)
        else:
            self.dropped += 1
        if self.span is not None:
            self.send_events()
        return entry

    def send_events(self) -> None:
        """The steps not yet on the request's span become its events (once allowed)."""
        if self.span is None or not self.allowed:
            return
        for entry in self.steps[self._events:]:
            attributes = {key: value if isinstance(value, str | int | float | bool)
                          else orjson.dumps(value).decode()
                          for key, value in entry.items() if key != "step" and value is not None}
            at_ns = int((self.wall + entry["at_ms"] / 1000) * 1e9)
            self.span.add_event(f"explain.{entry['step']}", attributes, at_ns)
        self._events = len(self.steps)

    # The decision points, in chain order. Each is one call from the module that decides.

    def rest_request(self, route: Route, bindings: Mapping[str, str], query: Collection[str],
                     body: bytes, content_type: str) -> None:
        variables = {name: REDACTED if _redacted(route, name) else value
                     for name, value in bindings.items()}
        self.note("route", http=f"{route.http_method} {route.template}", method=route.method,
                  path_variables=variables, query_fields=sorted(set(query)))
        fields: list[str] = []
        if body and content_type.startswith("application/json"):
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
            fields = sorted(parsed) if isinstance(parsed, dict) else []
        self.note("decode", body=route.body, content_type=content_type or None,
                  bytes=len(body), body_fields=fields)

    def grpc_request(self, method: str, payload: object) -> None:
        self.note("route", method=method)
        self.note("decode", bytes=len(payload) if isinstance(payload, bytes) else None,
                  stream=not isinstance(payload, bytes))

    def credential(self, sent: str | bytes | None, principal: Principal) -> None:
        """Authentication accepted `principal`; of a bearer token only its header's kid and
        alg and its issuer are read again (it has just been verified), never kept."""
        self.principal = principal
        issuer = kid = alg = None
        if principal.via == "jwt" and isinstance(sent, str):
            token = sent.strip().partition(" ")[2].strip()
            header, payload = _segment(token, 0), _segment(token, 1)
            kid, alg, issuer = header.get("kid"), header.get("alg"), payload.get("iss")
        self.note("authenticate", via=principal.via, issuer=issuer, kid=kid, alg=alg,
                  subject=principal.subject, roles=list(principal.roles),
                  scopes=list(principal.scopes))

    def rule(self, method: str, rule: AccessRule | None, default: str) -> None:
        if rule is None:
            self.note("authorize", method=method, rule=None, access=default)
        else:
            self.note("authorize", method=method, rule=rule.match, access=rule.access,
                      roles=list(rule.roles), scopes=list(rule.scopes))

    def identity(self, metadata: Sequence[tuple[str, object]], signed: bool) -> None:
        keys = sorted({key for key, _ in metadata if key.startswith("x-user-")})
        self.note("identity", keys=keys, signed=signed)

    def rate_limit(self, rule: str, key: str, decision: Decision) -> None:
        self.note("rate_limit", rule=rule, key=key, allowed=decision.allowed,
                  limit=decision.limit, remaining=decision.remaining,
                  retry_after_ms=None if decision.allowed else _ms(decision.retry_after_s))

    def deadline(self, now: float, client: float | None, configured: float | None,
                 chosen: float | None) -> None:
        """`configured` None: no timeout applies (a stream without stream_timeout_s); `chosen`
        None: the call runs without a deadline."""
        if chosen is None:
            source = "none"
        elif client is not None and (configured is None or client <= configured):
            source = "client"
        else:
            source = "backend timeout"
        self.note("deadline", timeout_ms=None if chosen is None else _ms(chosen - now),
                  source=source, client_ms=None if client is None else _ms(client - now),
                  configured_ms=None if configured is None else _ms(configured - now))

    def breaker(self, backend: str, method: str, breaker: CircuitBreaker) -> None:
        self.note("breaker", backend=backend, method=method, scope=breaker.scope,
                  state=breaker.state.value)

    def attempt(self, pool: BackendPool, lb: str, method: str, picked: Picked) -> None:
        """An attempt starts on `picked`: which instances could have been picked and why this
        one; its outcome comes with attempt_done. Backoff: the time since the attempt before."""
        now = time.monotonic()
        earlier = [s for s in self.steps if s["step"] == "attempt" and s["method"] == method]
        backoff = None
        if earlier and earlier[-1].get("duration_ms") is not None:
            ended = earlier[-1]["at_ms"] + earlier[-1]["duration_ms"]
            backoff = max(0.0, round(_ms(now - self.started) - ended, 3))
        candidates = [{"instance": s.address, "health": s.health, "ejected": s.ejected,
                       "in_flight": s.outstanding} for s in pool.status()]
        step = self.note("attempt", backend=pool.name, method=method, number=len(earlier) + 1,
                         instance=picked.instance.address, balancer=lb,
                         candidates=candidates, ejection_probe=bool(picked.probe),
                         backoff_ms=backoff, code=None, duration_ms=None)
        self._attempts[id(picked)] = (step, now)

    def attempt_done(self, picked: Picked, failure: Failure | None) -> None:
        found = self._attempts.pop(id(picked), None)
        if found is None:
            return
        step, began = found
        step["duration_ms"] = _ms(time.monotonic() - began)
        step["code"] = "OK" if failure is None else failure.error.code.name
        if failure is not None:
            step["message"] = _bounded(failure.error.message)
            step["backend_fault"] = failure.fault

    def part(self, name: str, method: str, required: bool, error: BaseException | None) -> None:
        if error is None:
            self.note("part", part=name, method=method, required=required, code="OK")
            return
        code = getattr(getattr(error, "code", None), "name", "INTERNAL")
        self.note("part", part=name, method=method, required=required, code=code,
                  message=_bounded(getattr(error, "message", type(error).__name__)),
                  effect="the call fails" if required else "left out of the reply")

    # The end, for the Explainer.

    def decided_by(self, error: GatewayError | None) -> str:
        """The step whose decision gave the answer: the last one noted, except that a refused
        credential notes nothing (authentication raised before its note)."""
        last = self.steps[-1]["step"] if self.steps else "edge"
        if error is not None and error.code.name == "UNAUTHENTICATED" and last != "authorize":
            return "authenticate"
        if last == "part":  # an aggregate: the required part that failed, else the whole
            failed = [s for s in self.steps if s["step"] == "part" and s["code"] != "OK"
                      and s["required"]]
            return f"part {failed[-1]['part']}" if failed else "aggregate"
        return str(last)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "..."
    if isinstance(value, list | tuple):
        return [_bounded(item) for item in value[:MAX_ITEMS]]
    if isinstance(value, dict):
        return {str(k)[:MAX_TEXT]: _bounded(v) for k, v in list(value.items())[:MAX_ITEMS]}
    return value


def _segment(token: str, index: int) -> dict[str, Any]:
    """One JSON segment of a compact JWS that authentication has just verified (so no checks
    beyond decoding; pyjwt's own decoding costs as much as the verification)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    text = parts[index]
    try:
        found = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _redacted(route: Route, path: str) -> bool:
    """A path variable whose field (or any field on its path) is marked debug_redact."""
    message = route.input
    for name in path.split("."):
        field = message.fields_by_name.get(name)
        if field is None:
            return False
        if field.GetOptions().debug_redact:
            return True
        if field.message_type is None:
            return False
        message = field.message_type
    return False
