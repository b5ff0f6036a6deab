"""buf.validate rules (protovalidate's native validator), found and compiled at load.

The validator reads the rules from the message's own descriptor, so it works with the dynamic
messages of the gateway's private pool. A message whose rules do not compile is a ConfigError
naming it at load, never a per-request 500. Pure: imports protobuf and protovalidate only.
"""

from __future__ import annotations

from typing import Any, Final

import protovalidate
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from gateway.contract.violation import FieldPath, Violation
from gateway.errors import ConfigError

# buf.validate's extension number on FieldOptions, MessageOptions and OneofOptions.
_RULES_EXTENSION: Final = 1159


class Rules:
    """One validator per loaded config (it caches what it compiles, per message type)."""

    def __init__(self) -> None:
        self._validator = protovalidate.Validator()

    def compile(self, message_class: type[Message], method: str) -> None:
        """Compile the rules of a request type now; ConfigError naming it if they are bad."""
        try:
            self._validator.collect_violations(message_class())
        except (protovalidate.CompilationError, protovalidate.EvaluationError) as exc:
            name = message_class.DESCRIPTOR.full_name
            raise ConfigError(
                f"buf.validate rules of {name} (the request of {method}) do not compile: {exc}"
            ) from None

    def violations(self, message: Message) -> list[Violation]:
        try:
            found = self._validator.collect_violations(message)
        except protovalidate.EvaluationError as exc:  # a rule that fails at run time
            return [Violation((), "buf.validate", f"a rule could not be evaluated: {exc}")]
        return [_violation(message.DESCRIPTOR, v.proto) for v in found]


def has_rules(root: Descriptor) -> bool:
    """Whether any message type reachable from `root` carries buf.validate options."""
    seen: set[str] = set()
    pending = [root]
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name in seen:
            continue
        seen.add(descriptor.full_name)
        owners: list[Any] = [descriptor, *descriptor.fields, *descriptor.oneofs]
        if any(_carries_rules(owner.GetOptions()) for owner in owners):
            return True
        pending.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return False


def _carries_rules(options: Message) -> bool:
    # Known when buf/validate/validate_pb2 was imported into the default pool, else unknown.
    if any(field.is_extension and field.number == _RULES_EXTENSION
           for field, _ in options.ListFields()):
        return True
    unknown = UnknownFieldSet(options)
    return any(unknown[i].field_number == _RULES_EXTENSION for i in range(len(unknown)))


def _violation(root: Any, proto: Any) -> Violation:
    """A buf.validate.Violation, its field path in proto and JSON names."""
    path: list[tuple[str, str]] = []
    current: Any = root
    for element in proto.field.elements:
        field = current.fields_by_number.get(element.field_number) if current else None
        path.append((element.field_name, field.json_name if field else element.field_name))
        subscript = element.subscript
        if subscript is not None:
            key = subscript.value
            text = f"[{key!r}]" if isinstance(key, str) else f"[{key}]"
            path.append((text, text))
        current = None
        if field is not None and field.message_type is not None:
            entry = field.message_type
            current = (entry.fields_by_name["value"].message_type
                       if entry.GetOptions().map_entry else entry)
    if proto.for_key:
        path.append(("[key]", "[key]"))
    fields: FieldPath = tuple(path)
    return Violation(fields, proto.rule_id or "buf.validate", proto.message or "is invalid")
