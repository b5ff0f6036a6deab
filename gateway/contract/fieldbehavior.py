"""google.api.field_behavior of request messages (AIP-203), compiled at load per message type.

- REQUIRED: must be set. Fields without presence (proto3 scalars) count as set when they hold
  a non-default value, repeated and map fields when they hold an element, the others when
  present. A REQUIRED field inside a message counts only when that message is set.
- OUTPUT_ONLY: the server sets it; in a request it is cleared (or, configured, refused), and
  an update_mask path naming it is dropped (or refused) so that the backend does not
  overwrite the stored value with the cleared one.
- IMMUTABLE: may be set on create, never changed: an update_mask path naming it is refused
  when configured.
- IDENTIFIER (the resource name): neither required nor cleared; the path binds it on update
  and the backend assigns it on create.

Update requests (a top-level `update_mask` FieldMask and one resource message field, AIP-134):
with a non-empty mask only the fields the mask names are written, so REQUIRED is not checked
inside the resource. Pure: imports protobuf and gateway.contract only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.contract.violation import FieldPath, Violation, field_segment

OutputOnlyMode = Literal["clear", "reject"]

_REQUIRED: Final = field_behavior_pb2.REQUIRED
_OUTPUT_ONLY: Final = field_behavior_pb2.OUTPUT_ONLY
_IMMUTABLE: Final = field_behavior_pb2.IMMUTABLE
_FIELD_MASK: Final = "google.protobuf.FieldMask"
_MASK_FIELD: Final = "update_mask"


def behaviors(field: FieldDescriptor) -> frozenset[int]:
    """The google.api.field_behavior values of a field (any pool: options carry extensions)."""
    options = field.GetOptions()
    return frozenset(options.Extensions[field_behavior_pb2.field_behavior])


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """One message type: its own REQUIRED and OUTPUT_ONLY fields, and the message fields to
    descend into (only those under which some rule exists)."""

    required: tuple[FieldDescriptor, ...]
    output_only: tuple[FieldDescriptor, ...]
    children: tuple[FieldDescriptor, ...]


@dataclass(frozen=True, slots=True, eq=False)
class RequestBehavior:
    """The field_behavior checks of one method's request type, built once at load."""

    root: str
    plans: Mapping[str, _Plan]
    output_only: OutputOnlyMode
    resource: FieldDescriptor | None  # the message field an update_mask is relative to
    immutable_in_mask: bool  # refuse update_mask paths naming IMMUTABLE fields

    def apply(self, message: Message, violations: list[Violation]) -> bool:
        """Append the violations; clear OUTPUT_ONLY fields in place. True if `message` changed."""
        mask = self._mask(message)
        changed = False
        if self.resource is not None and mask:
            changed = self._check_mask(message, mask, violations)
        # With a non-empty mask, REQUIRED is not checked under the resource; OUTPUT_ONLY is.
        skip = self.resource if mask else None
        for path, plan, value, required in self._walk(message, self.root, (), skip, True):
            for field in plan.required if required else ():
                if not _is_set(value, field):
                    violations.append(Violation(
                        (*path, field_segment(field)), "REQUIRED", "is required"))
            for field in plan.output_only:
                if not _is_set(value, field):
                    continue
                if self.output_only == "reject":
                    violations.append(Violation(
                        (*path, field_segment(field)), "OUTPUT_ONLY",
                        "is output only: the server sets it"))
                else:
                    value.ClearField(field.name)
                    changed = True
        return changed

    def _mask(self, message: Message) -> list[str]:
        if self.resource is None:
            return []
        paths = list(getattr(message, _MASK_FIELD).paths)
        return [] if paths == ["*"] else paths

    def _walk(self, message: Message, type_name: str, path: FieldPath,
              skip: FieldDescriptor | None, required: bool
              ) -> Iterator[tuple[FieldPath, _Plan, Message, bool]]:
        plan = self.plans[type_name]
        yield path, plan, message, required
        for field in plan.children:
            value_type = _value_type_name(field)
            below = required and field is not skip
            here = (*path, field_segment(field))
            if _is_map(field):
                for key, item in getattr(message, field.name).items():
                    yield from self._walk(item, value_type, (*here, _subscript(repr(key))),
                                          None, below)
            elif field.is_repeated:
                for index, item in enumerate(getattr(message, field.name)):
                    yield from self._walk(item, value_type, (*here, _subscript(str(index))),
                                          None, below)
            elif message.HasField(field.name):
                yield from self._walk(getattr(message, field.name), value_type, here, None, below)

    def _check_mask(self, message: Message, mask: list[str], violations: list[Violation]) -> bool:
        """update_mask paths naming OUTPUT_ONLY fields are dropped (or refused); paths naming
        IMMUTABLE fields are refused when configured."""
        if self.resource is None:
            return False
        resource = self.resource.message_type
        target = getattr(message, self.resource.name)
        kept: list[str] = []
        for mask_path in mask:
            found = _behaviour_on_path(resource, mask_path)
            field = resource.fields_by_name.get(mask_path) if resource is not None else None
            if _REQUIRED in found and field is not None and not _is_set(target, field):
                # AIP-134: a REQUIRED field the mask writes must have a value
                violations.append(Violation(
                    (field_segment(self.resource), field_segment(field)), "REQUIRED",
                    "is required"))
            if _IMMUTABLE in found and self.immutable_in_mask:
                violations.append(Violation(
                    ((_MASK_FIELD, "updateMask"),), "IMMUTABLE",
                    f'names "{mask_path}", which cannot be changed once set'))
            if _OUTPUT_ONLY in found:
                if self.output_only == "reject":
                    violations.append(Violation(
                        ((_MASK_FIELD, "updateMask"),), "OUTPUT_ONLY",
                        f'names "{mask_path}", which is output only'))
                continue
            kept.append(mask_path)
        if len(kept) == len(mask):
            return False
        field_mask = getattr(message, _MASK_FIELD)
        del field_mask.paths[:]
        field_mask.paths.extend(kept)
        return True


def compile_request_behavior(
    request: Descriptor, output_only: OutputOnlyMode = "clear", immutable_in_mask: bool = False
) -> RequestBehavior | None:
    """The checks of one request type; None when no field under it has a behaviour to enforce."""
    own: dict[str, tuple[tuple[FieldDescriptor, ...], tuple[FieldDescriptor, ...]]] = {}
    edges: dict[str, tuple[FieldDescriptor, ...]] = {}
    immutable = False
    pending = [request]
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name in own:
            continue
        required: list[FieldDescriptor] = []
        out: list[FieldDescriptor] = []
        children: list[FieldDescriptor] = []
        for field in descriptor.fields:
            found = behaviors(field)
            immutable = immutable or _IMMUTABLE in found
            if _REQUIRED in found:
                required.append(field)
            if _OUTPUT_ONLY in found:
                out.append(field)
            value_type = _value_type(field)
            if value_type is not None:
                children.append(field)
                pending.append(value_type)
        own[descriptor.full_name] = (tuple(required), tuple(out))
        edges[descriptor.full_name] = tuple(children)
    # a type needs a visit if it, or a type below it, has a rule (a fixpoint: types recurse)
    needs = {name: bool(r or o) for name, (r, o) in own.items()}
    changed = True
    while changed:
        changed = False
        for name, below in edges.items():
            if not needs[name] and any(needs[_value_type_name(f)] for f in below):
                needs[name] = changed = True
    if not needs[request.full_name] and not (immutable and immutable_in_mask):
        return None
    plans = {
        name: _Plan(required, out, tuple(f for f in edges[name] if needs[_value_type_name(f)]))
        for name, (required, out) in own.items() if needs[name] or name == request.full_name
    }
    return RequestBehavior(request.full_name, plans, output_only, _resource(request),
                           immutable_in_mask)


def _resource(request: Descriptor) -> FieldDescriptor | None:
    mask = request.fields_by_name.get(_MASK_FIELD)
    if mask is None or mask.message_type is None or mask.message_type.full_name != _FIELD_MASK:
        return None
    candidates = [f for f in request.fields if f is not mask and f.message_type is not None
                  and not f.is_repeated]
    return candidates[0] if len(candidates) == 1 else None


def _behaviour_on_path(message: Descriptor | None, mask_path: str) -> frozenset[int]:
    """Every behaviour of the fields a mask path crosses ("address.city": both fields')."""
    found: set[int] = set()
    current: Descriptor | None = message
    for name in mask_path.split("."):
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            break  # an unknown path is the backend's to refuse
        found |= behaviors(field)
        current = field.message_type
    return frozenset(found)


def _subscript(key: str) -> tuple[str, str]:
    return (f"[{key}]", f"[{key}]")


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _value_type(field: FieldDescriptor) -> Descriptor | None:
    """The message type held by a field (a map's value type), or None."""
    entry = field.message_type
    if entry is None:
        return None
    if entry.GetOptions().map_entry:
        return entry.fields_by_name["value"].message_type
    return entry


def _value_type_name(field: FieldDescriptor) -> str:
    value_type = _value_type(field)
    assert value_type is not None  # only message-valued fields are edges
    return value_type.full_name


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return bool(getattr(message, field.name) != field.default_value)
