"""Path variables and query parameters as chains of fields: resolved at load, and their
values written into the request JSON. Pure: imports gateway.errors and gateway.transcode only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.errors import ConfigError, InvalidArgument
from gateway.transcode.coerce import Coercer, FieldPlan, JsonObject, MessagePlan
from gateway.transcode.route import Route

# A body field that the path also binds, with another value: the path's wins, or a 400.
PathBodyConflict = Literal["path_wins", "reject"]


@dataclass(frozen=True, slots=True)
class PathVariable:
    """A leaf field that path or query text sets."""

    field_path: str  # proto names, "nested.label"
    chain: tuple[FieldPlan, ...]  # the fields from the request message down to the leaf
    coerce: Coercer


def resolve_path(
    route: Route, field_path: str, root: MessagePlan, messages: Mapping[str, MessagePlan]
) -> PathVariable:
    """The fields a path variable sets (google/api/http.proto: a chain of singular messages
    ending at a primitive, in proto names); ConfigError otherwise."""
    message, chain = root, list[FieldPlan]()
    for segment in field_path.split("."):
        if chain:
            parent = chain[-1]
            if parent.message is None or parent.repeated or parent.is_map:
                raise ConfigError(
                    f"{route}: path variable {field_path}: {parent.name} is not a singular message"
                )
            message = messages[parent.message]
        found = message.fields.get(segment)
        if found is None or found.name != segment:
            raise ConfigError(f"{route}: path variable {field_path} names no field")
        chain.append(found)
    leaf = chain[-1]
    if leaf.repeated or leaf.is_map or leaf.coerce is None:
        raise ConfigError(f"{route}: path variable {field_path} is not a singular primitive")
    return PathVariable(field_path, tuple(chain), leaf.coerce)


def put_value(
    root: JsonObject, chain: tuple[FieldPlan, ...], value: object, field_path: str
) -> None:
    """Set the leaf of `chain` in the request JSON (query parameters: a 400 if already set)."""
    target = root
    for field in chain[:-1]:
        target = _child(target, field, field_path)
    leaf = chain[-1]
    if leaf.name in target or leaf.json_name in target:
        raise InvalidArgument(f"field {field_path} is set by both the path and the body")
    target[leaf.name] = value


def put_path_value(
    root: JsonObject, variable: PathVariable, text: str, conflict: PathBodyConflict
) -> None:
    """Set a path variable's field in the request JSON. A body that repeats the field with the
    same value is fine (GET -> edit -> PATCH round trips); a different value is overwritten by
    the path's ("path_wins", as grpc-gateway and Envoy) or a 400 naming the field ("reject")."""
    value = variable.coerce(text, variable.field_path)
    target = root
    for field in variable.chain[:-1]:
        target = _child(target, field, variable.field_path)
    leaf = variable.chain[-1]
    for key in {leaf.name, leaf.json_name}:
        if key not in target:
            continue
        sent = target.pop(key)
        if conflict == "reject" and not _same_value(sent, value, variable):
            raise InvalidArgument(
                f"field {variable.field_path} is set by both the path and the body, "
                "to different values"
            )
    target[leaf.name] = value


def _same_value(sent: object, value: object, variable: PathVariable) -> bool:
    if sent == value:
        return True
    if isinstance(sent, bool) or not isinstance(sent, int | float | str):
        return False
    try:  # 5 and "5" are the same int64: compare both in the path's own form
        return variable.coerce(str(sent), variable.field_path) == value
    except InvalidArgument:
        return False


def _child(target: JsonObject, field: FieldPlan, field_path: str) -> JsonObject:
    key = field.json_name if field.json_name in target else field.name
    child = target.get(key)
    if child is None:
        child = target[key] = {}
    if not isinstance(child, dict):
        raise InvalidArgument(
            f"field {field.name} of the body must be a JSON object to take path variable "
            f"{field_path}"
        )
    return child
