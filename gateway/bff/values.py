"""Reading values out of messages and setting them on requests, along resolved field paths."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

Path = tuple[FieldDescriptor, ...]


def read(message: Message, path: Path) -> list[Any]:
    """Every value at `path`; a repeated field on the way contributes each of its elements.

    An unset field reads as its default, as proto3 does: read(order, (user_id,)) == [""].
    """
    values: list[Any] = [message]
    for field in path:
        found: list[Any] = []
        for value in values:
            got = getattr(value, field.name)
            if field.is_repeated:
                found.extend(got)
            else:
                found.append(got)
        values = found
    return values


def assign(message: Message, path: Path, values: Sequence[Any]) -> None:
    """Set the field at `path` (its parents are singular messages): a repeated field takes every
    value, a singular one the one value given. Messages are copied."""
    *parents, leaf = path
    target: Any = message
    for field in parents:
        target = getattr(target, field.name)
    if leaf.is_repeated:
        container = getattr(target, leaf.name)
        if leaf.message_type is not None:
            for value in values:
                container.add().CopyFrom(value)
        else:
            container.extend(values)
    elif leaf.message_type is not None:
        getattr(target, leaf.name).CopyFrom(values[-1])
    else:
        setattr(target, leaf.name, values[-1])


def distinct(values: Iterable[Any]) -> list[Any]:
    """The values without repeats, first occurrence kept (messages compared by content)."""
    seen: set[Hashable] = set()
    kept = []
    for value in values:
        key = value.SerializeToString(deterministic=True) if isinstance(value, Message) else value
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept
