"""Strict reading of a backend's reply: parsed bytes that are not really the declared type.

protobuf's parser (upb) is lenient by design: a field whose wire type does not match its
declaration (a varint where a string is declared, a fixed64 where a message is) is not an
error but an *unknown field*, kept for re-serialization and invisible to JSON rendering. A reply
of entirely the wrong type then renders as `200 {}`. protobuf offers no strict parse mode, so
after parsing we walk the message and its set sub-messages for unknown fields whose number is a
field the type declares: those are wire-type mismatches. Unknown fields with numbers the schema
does not know stay allowed (a backend built from a newer proto, the forward compatibility
protobuf promises). A closed (proto2) enum field keeps unknown values as unknown varints with its
own number: that wire type is allowed too.

    parse = compile_strict_parser(cls)
    message = parse(payload)  # WireTypeMismatch("field 'author.name' (3) has wire type 0, ...")

The walk costs about 1 µs per message visited (as much as rendering the JSON), so it runs only
when there is something to find: unknown fields are re-serialized verbatim, so a message has
some (anywhere in its tree) exactly when DiscardUnknownFields() makes it smaller. That test costs
two ByteSize() and one discard, about a tenth of rendering (docs/security.md has the figures);
the message handed back has no unknown fields, which JSON rendering ignores anyway.
Pure: protobuf only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

__all__ = ["WireTypeMismatch", "compile_strict_parser", "strict_problem"]

VARINT, FIXED64, LEN, START_GROUP, FIXED32 = 0, 1, 2, 3, 5
_WIRE: dict[int, int] = {
    FieldDescriptor.TYPE_DOUBLE: FIXED64, FieldDescriptor.TYPE_FLOAT: FIXED32,
    FieldDescriptor.TYPE_INT64: VARINT, FieldDescriptor.TYPE_UINT64: VARINT,
    FieldDescriptor.TYPE_INT32: VARINT, FieldDescriptor.TYPE_FIXED64: FIXED64,
    FieldDescriptor.TYPE_FIXED32: FIXED32, FieldDescriptor.TYPE_BOOL: VARINT,
    FieldDescriptor.TYPE_STRING: LEN, FieldDescriptor.TYPE_GROUP: START_GROUP,
    FieldDescriptor.TYPE_MESSAGE: LEN, FieldDescriptor.TYPE_BYTES: LEN,
    FieldDescriptor.TYPE_UINT32: VARINT, FieldDescriptor.TYPE_ENUM: VARINT,
    FieldDescriptor.TYPE_SFIXED32: FIXED32, FieldDescriptor.TYPE_SFIXED64: FIXED64,
    FieldDescriptor.TYPE_SINT32: VARINT, FieldDescriptor.TYPE_SINT64: VARINT,
}
_SINGULAR, _REPEATED, _MAP = 0, 1, 2


class WireTypeMismatch(DecodeError):
    """The bytes parse, but a declared field arrived with another wire type."""


@dataclass(slots=True, eq=False)
class _Plan:
    """What to check in one message type; children are filled after creation (recursion)."""

    name: str
    wire: dict[int, tuple[str, frozenset[int]]] = field(default_factory=dict)
    children: list[tuple[str, int, _Plan]] = field(default_factory=list)


def compile_strict_parser(cls: type[Message]) -> Callable[[bytes], Message]:
    """`cls.FromString` that also raises WireTypeMismatch (a DecodeError) on a wire-type
    mismatch anywhere in the message."""
    plan = _compile(cast(Descriptor, cls.DESCRIPTOR), {})
    from_string = cls.FromString

    def parse(payload: bytes) -> Message:
        message = from_string(payload)
        size = message.ByteSize()
        message.DiscardUnknownFields()
        if message.ByteSize() != size:  # it had unknown fields: are any of them ours?
            problem = _check(from_string(payload), plan, "")
            if problem is not None:
                raise WireTypeMismatch(problem)
        return message

    return parse


def strict_problem(message: Message) -> str | None:
    """The first wire-type mismatch in a parsed message, or None (the walk, uncompiled)."""
    return _check(message, _compile(cast(Descriptor, message.DESCRIPTOR), {}), "")


def _compile(descriptor: Descriptor, plans: dict[str, _Plan]) -> _Plan:
    plan = plans.get(descriptor.full_name)
    if plan is not None:
        return plan
    plan = plans[descriptor.full_name] = _Plan(descriptor.full_name)
    for fd in descriptor.fields:
        allowed = {_WIRE[fd.type]}
        if fd.is_repeated and fd.type not in (fd.TYPE_STRING, fd.TYPE_BYTES, fd.TYPE_MESSAGE,
                                              fd.TYPE_GROUP):
            allowed.add(LEN)  # packed or not, both are valid encodings of a repeated scalar
        plan.wire[fd.number] = (fd.name, frozenset(allowed))
        child = fd.message_type
        if child is None:
            continue
        if child.GetOptions().map_entry:
            value = child.fields_by_name["value"].message_type
            if value is not None:
                plan.children.append((fd.name, _MAP, _compile(value, plans)))
            continue
        plan.children.append((fd.name, _REPEATED if fd.is_repeated else _SINGULAR,
                              _compile(child, plans)))
    return plan


def _check(message: Message, plan: _Plan, path: str) -> str | None:
    for unknown in UnknownFieldSet(message):  # type: ignore[attr-defined]  # stub lacks it
        known = plan.wire.get(unknown.field_number)
        if known is not None and unknown.wire_type not in known[1]:
            name, allowed = known
            return (f"field {path + name!r} ({unknown.field_number}) has wire type "
                    f"{unknown.wire_type}, declared {min(allowed)}")
    for name, mode, child in plan.children:
        if mode == _SINGULAR:
            if message.HasField(name):
                problem = _check(getattr(message, name), child, f"{path}{name}.")
                if problem is not None:
                    return problem
            continue
        values = getattr(message, name)
        for index, value in enumerate(values.values() if mode == _MAP else values):
            problem = _check(value, child, f"{path}{name}[{index}].")
            if problem is not None:
                return problem
    return None
