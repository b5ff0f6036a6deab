"""A contract violation, its field path in both spellings, and the google.rpc.BadRequest that
carries them to the client. Pure: imports protobuf and googleapis-common-protos only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2

from gateway.errors import InvalidArgument

# One segment per field or subscript: (proto name, JSON name); subscripts are "[0]", "['k']".
FieldPath = tuple[tuple[str, str], ...]

_LISTED: Final = 5  # violations spelled out in the error message; details carry all of them


@dataclass(frozen=True, slots=True)
class Violation:
    field: FieldPath
    reason: str  # "REQUIRED", "OUTPUT_ONLY", "IMMUTABLE" or a buf.validate rule id
    description: str


def field_segment(field: FieldDescriptor) -> tuple[str, str]:
    return (field.name, field.json_name)


def render_path(path: FieldPath, json_names: bool) -> str:
    """"user.displayName" (JSON names, the REST edge) or "user.display_name" (gRPC)."""
    text = ""
    for proto_name, json_name in path:
        name = json_name if json_names else proto_name
        text += name if not text or name.startswith("[") else "." + name
    return text


def invalid_request(type_name: str, violations: Sequence[Violation], json_names: bool
                    ) -> InvalidArgument:
    """One INVALID_ARGUMENT naming every field and rule, with a google.rpc.BadRequest."""
    request = error_details_pb2.BadRequest()
    parts = []
    for violation in violations:
        field = render_path(violation.field, json_names)
        request.field_violations.add(field=field, description=violation.description,
                                     reason=violation.reason)
        parts.append(f"{field or type_name}: {violation.description} [{violation.reason}]")
    more = len(parts) - _LISTED
    shown = "; ".join(parts[:_LISTED]) + (f"; and {more} more" if more > 0 else "")
    packed = any_pb2.Any()
    packed.Pack(request)
    return InvalidArgument(f"invalid {type_name}: {shown}", (packed.SerializeToString(),))
