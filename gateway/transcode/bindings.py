"""Path variables and query parameters as chains of fields: resolved at load, and their
values written into the request JSON. Pure: imports gateway.errors and gateway.transcode only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import ConfigError, InvalidArgument
from gateway.transcode.coerce import Coercer, FieldPlan, JsonObject, MessagePlan
from gateway.transcode.route import Route


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
    """Set the leaf of `chain` in the request JSON; a 400 if the body already sets it."""
    target = root
    for field in chain[:-1]:
        target = _child(target, field, field_path)
    leaf = chain[-1]
    if leaf.name in target or leaf.json_name in target:
        raise InvalidArgument(f"field {field_path} is set by both the path and the body")
    target[leaf.name] = value


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
