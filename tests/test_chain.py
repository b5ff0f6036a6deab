"""The compiled policy chain: steps (synchronous rewrites) and async policies keep their order,
a refusing step stops the call before the terminal, and both forms of a policy agree."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest

from gateway.call import Call, Handler, Kind, Principal, Reply, chain
from gateway.errors import PermissionDenied
from gateway.observability.explain import Explanation


class Tag:
    """Appends its name to the call's metadata: as a step, or as an async policy."""

    def __init__(self, name: str, as_step: bool) -> None:
        self.name = name
        if as_step:
            self.step = self.rewrite

    def rewrite(self, call: Call) -> Call:
        return replace(call, metadata=(*call.metadata, ("seen", self.name)))

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        return await call_next(self.rewrite(call))


class Refuse:
    def step(self, call: Call) -> Call:
        raise PermissionDenied("no")

    async def __call__(self, call: Call, call_next: Handler) -> Reply:
        return await call_next(self.step(call))


async def echo_seen(call: Call) -> Reply:
    return Reply(b"", metadata=call.metadata)


@pytest.mark.parametrize("steps", [
    "", "a", "abcd", "ac", "bd", "abd",  # which of a, b, c, d run as steps
])
async def test_order_is_the_list_order_whatever_runs_as_a_step(steps: str) -> None:
    policies = [Tag(name, name in steps) for name in "abcd"]
    reply = await chain(policies, echo_seen)(Call("/p.S/M", b""))
    assert [value for _, value in reply.metadata] == ["a", "b", "c", "d"]


async def test_a_refusing_step_stops_the_call_before_the_terminal() -> None:
    reached: list[Call] = []

    async def terminal(call: Call) -> Reply:
        reached.append(call)
        return Reply(b"")

    handler = chain([Tag("a", True), Refuse(), Tag("c", False)], terminal)
    with pytest.raises(PermissionDenied):
        await handler(Call("/p.S/M", b""))
    assert reached == []


async def test_empty_chain_is_the_terminal() -> None:
    assert chain([], echo_seen) is echo_seen


def test_evolve_is_replace_for_what_it_changes_and_keeps_every_other_field() -> None:
    call = Call("/p.S/M", b"x", Kind.SERVER_STREAM, (("k", "v"),), "10.0.0.1", 5.0, True,
                Principal("alice", ("admin",)), "r-1", "grpc", Explanation("grpc", "r-1", "1"))
    assert {f.name for f in fields(Call)} == {  # a new field must be added to evolve too
        "method", "payload", "kind", "metadata", "peer", "deadline", "idempotent",
        "principal", "request_id", "edge", "explain"}
    assert call.evolve() == call
    changes: dict[str, Any] = {"metadata": (("a", "b"),), "deadline": 9.0,
                               "principal": Principal("bob"), "request_id": "r-2"}
    for name, value in changes.items():
        assert call.evolve(**{name: value}) == replace(call, **{name: value})
