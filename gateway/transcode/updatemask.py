"""The PATCH update_mask auto-fill: which routes get it, and the mask paths of a JSON body.

Pure: imports the stdlib and gateway.transcode only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gateway.transcode.coerce import FieldPlan, JsonObject, MessagePlan
from gateway.transcode.route import Route

MASK_FIELD: Final = "update_mask"
_FIELD_MASK: Final = "google.protobuf.FieldMask"


@dataclass(frozen=True, slots=True)
class MaskFill:
    """How one route fills update_mask from the body: the body field's message, and its
    fields that the path sets (relative to it), which the mask leaves out."""

    message: MessagePlan
    path_bound: frozenset[str]


def compile_mask_fill(
    route: Route, body_field: FieldPlan | None, messages: Mapping[str, MessagePlan]
) -> MaskFill | None:
    """The auto-fill of a PATCH route whose body is a singular message field and whose request
    has an `update_mask` FieldMask the path does not bind (grpc-gateway's rule); else None."""
    mask_field = route.input.fields_by_name.get(MASK_FIELD)
    if (
        route.http_method == "PATCH"
        and body_field is not None
        and body_field.message is not None
        and not body_field.repeated
        and not body_field.is_map
        and mask_field is not None
        and mask_field.message_type is not None
        and mask_field.message_type.full_name == _FIELD_MASK
        and MASK_FIELD not in route.path_fields
    ):
        prefix = body_field.name + "."
        return MaskFill(
            messages[body_field.message],
            frozenset(fp.removeprefix(prefix) for fp in route.path_fields if fp.startswith(prefix)),
        )
    return None


def mask_paths(
    body: JsonObject, message: MessagePlan, messages: Mapping[str, MessagePlan]
) -> list[str]:
    """grpc-gateway's FieldMaskFromRequestBody, breadth first, in proto names: objects expand
    to dotted paths; maps, lists, null and well-known types are leaves."""
    paths: list[str] = []
    queue: deque[tuple[JsonObject, MessagePlan, str]] = deque([(body, message, "")])
    while queue:
        obj, plan, prefix = queue.popleft()
        for key, value in obj.items():
            field = plan.fields.get(key)
            if field is None:
                continue
            here = prefix + field.name
            single = field.message is not None and not field.repeated and not field.is_map
            if single and isinstance(value, dict) and field.message is not None:
                queue.append((value, messages[field.message], here + "."))
            else:
                paths.append(here)
    return paths
