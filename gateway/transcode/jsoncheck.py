"""The pre-check walk of a request's JSON, before json_format reads it: depth, duplicate
fields and oneofs, and the bytes/float fix-ups. Pure: stdlib, gateway.errors, gateway.transcode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.errors import InvalidArgument
from gateway.transcode.coerce import FieldPlan, JsonNormalizer, JsonObject, MessagePlan, quote

# (JSON value, its message plan, field path, depth, depth step of plain JSON below it)
_Pending = tuple[object, MessagePlan | None, str, int, int]
_CONTAINERS: Final = (dict, list)
# A level of these is two levels of the binary message, where decoders stop at 100 by default.
_STRUCTS: Final = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


def check_json(
    root: JsonObject, message: MessagePlan, messages: Mapping[str, MessagePlan], limit: int
) -> None:
    """Walk the request JSON without recursion, before json_format recurses through it: depth,
    a field given twice (by proto and JSON name), two members of a oneof, bytes and floats."""
    pending: list[_Pending] = [(root, message, "", 1, 1)]
    while pending:
        value, plan, path, depth, step = pending.pop()
        if depth > limit:
            raise InvalidArgument(
                f"JSON nests deeper than {limit} levels (in {path or 'the top level'})"
            )
        if isinstance(value, dict) and plan is not None:
            _check_message(value, plan, messages, path, depth, pending)
        elif isinstance(value, dict | list):
            items = value.values() if isinstance(value, dict) else value
            pending.extend(
                (v, None, path, depth + step, step) for v in items if isinstance(v, _CONTAINERS)
            )


def _check_message(
    obj: JsonObject,
    message: MessagePlan,
    messages: Mapping[str, MessagePlan],
    path: str,
    depth: int,
    pending: list[_Pending],
) -> None:
    seen: dict[str, str] = {}  # proto name -> the key that set it
    oneofs: dict[str, str] = {}  # oneof name -> the member that set it
    for key, value in obj.items():
        field = message.fields.get(key)
        if field is None:  # json_format reports it, or drops it with ignore_unknown_body_fields
            if isinstance(value, _CONTAINERS):
                pending.append((value, None, path, depth + 1, 1))
            continue
        name = field.name
        if name in seen:
            raise InvalidArgument(
                f"field {_join(path, name)} is given twice "
                f"(as {quote(seen[name])} and {quote(key)})"
            )
        seen[name] = key
        if field.oneof is not None and value is not None:
            other = oneofs.setdefault(field.oneof, name)
            if other != name:
                raise InvalidArgument(
                    f"oneof {_join(path, field.oneof)} has two members set: "
                    f"{_join(path, other)}, {_join(path, name)}"
                )
        if field.normalize is not None:
            _normalize(obj, key, field, field.normalize, _join(path, name))
        if not isinstance(value, _CONTAINERS):
            continue
        here = _join(path, name)
        plan = messages[field.message] if field.message is not None else None
        if plan is None:
            step = 2 if field.type_name in _STRUCTS else 1
            pending.append((value, None, here, depth + step, step))
        elif field.is_map and isinstance(value, dict):
            pending.extend(
                (v, plan, f"{here}[{k}]", depth + 2, 1)
                for k, v in value.items()
                if isinstance(v, _CONTAINERS)
            )
        elif field.repeated and isinstance(value, list):
            pending.extend(
                (v, plan, f"{here}[{i}]", depth + 2, 1)
                for i, v in enumerate(value)
                if isinstance(v, _CONTAINERS)
            )
        else:
            single = not field.repeated and not field.is_map
            pending.append((value, plan if single else None, here, depth + 1, 1))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _normalize(
    obj: JsonObject, key: str, field: FieldPlan, normalize: JsonNormalizer, here: str
) -> None:
    value = obj[key]
    if field.repeated and isinstance(value, list):
        value[:] = [normalize(item, f"{here}[{i}]") for i, item in enumerate(value)]
    elif field.is_map and isinstance(value, dict):
        for k, item in value.items():
            value[k] = normalize(item, f"{here}[{k}]")
    else:
        obj[key] = normalize(value, here)
