"""What the document says about the request contract: google.api.field_behavior and buf.validate
rules as JSON Schema 2020-12 keywords. Pure: stdlib and protobuf only.

The rules are read with the loaded schema's own buf.validate descriptors (the descriptor set
carries validate.proto when the protos import it), from the raw field options, so no
generated module is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

Json = dict[str, Any]

FIELD_BEHAVIOR: Final = 1052  # google.api.field_behavior on FieldOptions
REQUIRED: Final = 2
OUTPUT_ONLY: Final = 3
INPUT_ONLY: Final = 4
IDENTIFIER: Final = 8
_RULES: Final = 1159  # buf.validate.field
_FIELD_RULES: Final = "buf.validate.FieldRules"
_NUMBERS: Final = frozenset({"int32", "sint32", "sfixed32", "uint32", "fixed32", "float",
                             "double"})  # 64-bit integers are JSON strings: no bounds
_INT64S: Final = frozenset({"int64", "sint64", "sfixed64"})
_FORMATS: Final = {"email": "email", "hostname": "hostname", "ipv4": "ipv4", "ipv6": "ipv6",
                   "uri": "uri", "uri_ref": "uri-reference", "uuid": "uuid"}


def behaviors(item: FieldDescriptor) -> frozenset[int]:
    """google.api.field_behavior values, whether or not its module is imported here."""
    options = item.GetOptions()
    found: set[int] = set()
    for field, value in options.ListFields():
        if field.is_extension and field.number == FIELD_BEHAVIOR:
            found.update(value)
    unknown = UnknownFieldSet(options)
    for index in range(len(unknown)):
        entry = unknown[index]
        if entry.field_number == FIELD_BEHAVIOR:
            if entry.wire_type == 0:
                found.add(entry.data)
            else:  # packed
                found.update(_varints(entry.data))
    return frozenset(found)


class RuleReader:
    """buf.validate FieldRules of fields, as a dict in proto names (empty without rules)."""

    def __init__(self, pool: DescriptorPool) -> None:
        try:
            descriptor = pool.FindMessageTypeByName(_FIELD_RULES)
        except KeyError:
            self._class: type[Message] | None = None
        else:
            self._class = message_factory.GetMessageClass(descriptor)
        self._pool = pool

    def rules(self, item: FieldDescriptor) -> Json:
        if self._class is None:
            return {}
        options = item.GetOptions()
        data = b"".join(value.SerializeToString() for field, value in options.ListFields()
                        if field.is_extension and field.number == _RULES)
        unknown = UnknownFieldSet(options)
        data += b"".join(unknown[i].data for i in range(len(unknown))
                         if unknown[i].field_number == _RULES)
        if not data:
            return {}
        message = self._class.FromString(data)
        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         descriptor_pool=self._pool)


def default_passes(rules: Json, sent: bool = True) -> bool:
    """Whether the field's default value (what JSON null means) passes its rules: no rules,
    rules skipped for the zero value, or rules the zero value meets (a rule not understood
    here, such as CEL, counts as failing: the document then does not promise null).
    `sent`: the value is written (JSON null, an update); else the field is simply absent."""
    if sent and 0 in rules.get("enum", {}).get("not_in", ()):
        # the zero value, skipped when absent (IGNORE_IF_ZERO_VALUE), is refused where an
        # update writes it: so no null (sent), but no need to send it either (not sent)
        return False
    if not rules or rules.get("ignore") == "IGNORE_IF_ZERO_VALUE":
        return True
    for kind, found in rules.items():
        if kind == "ignore":
            continue
        if not isinstance(found, Mapping) or not _zero_passes(kind, found):
            return False
    return True


def _zero_passes(kind: str, found: Mapping[str, Any]) -> bool:
    if kind == "string":
        if set(found) - {"min_len", "max_len", "len", "pattern", "max_bytes", "min_bytes"}:
            return False
        return (int(found.get("min_len", 0)) == 0 and int(found.get("len", 0)) == 0
                and int(found.get("min_bytes", 0)) == 0
                and ("pattern" not in found or re.search(found["pattern"], "") is not None))
    if kind in _NUMBERS or kind in ("int64", "uint64", "sint64", "fixed64", "sfixed64"):
        if set(found) - {"gte", "lte", "gt", "lt"}:
            return False
        low_ok = float(found.get("gte", 0)) <= 0 and float(found.get("gt", -1)) < 0
        high_ok = float(found.get("lte", 0)) >= 0 and float(found.get("lt", 1)) > 0
        return low_ok and high_ok
    if kind == "enum":
        return set(found) <= {"defined_only"}  # 0 is the first value of every proto3 enum
    if kind == "repeated":
        return int(found.get("min_items", 0)) == 0
    if kind == "map":
        return int(found.get("min_pairs", 0)) == 0
    return False


def value_keywords(rules: Json) -> Json:
    """Keywords for one value (a scalar, or an element through `items` / map `values`)."""
    keywords: Json = {}
    for kind, found in rules.items():
        if not isinstance(found, Mapping):
            continue
        if kind == "string":
            keywords.update(_string(found))
        elif kind in _NUMBERS:
            keywords.update(_number(found))
        elif kind in _INT64S and set(found) <= {"gte", "gt"} and found:
            # a JSON string: only "not negative" / "positive" have a pattern
            if found.get("gte") in ("0", 0) or found.get("gt") in ("-1", -1):
                keywords["pattern"] = "^[0-9]+$"
            elif found.get("gt") in ("0", 0) or found.get("gte") in ("1", 1):
                keywords["pattern"] = "^0*[1-9][0-9]*$"
    return keywords


def enum_names(enum: Any, rules: Json) -> list[str] | None:
    """The enum's value names its `in` / `not_in` rules allow, or None when they allow all."""
    found = rules.get("enum", {})
    if "in" not in found and "not_in" not in found:
        return None
    allowed = [v for v in enum.values if ("in" not in found or v.number in found["in"])
               and v.number not in found.get("not_in", ())]
    return [v.name for v in allowed]


def repeated_keywords(rules: Json) -> tuple[Json, Json]:
    """(keywords of the array, rules of each item)."""
    found = rules.get("repeated", {})
    keywords: Json = {}
    if "min_items" in found:
        keywords["minItems"] = int(found["min_items"])
    if "max_items" in found:
        keywords["maxItems"] = int(found["max_items"])
    if found.get("unique"):
        keywords["uniqueItems"] = True
    return keywords, found.get("items", {})


def map_keywords(rules: Json) -> tuple[Json, Json, Json]:
    """(keywords of the object, rules of the keys, rules of the values)."""
    found = rules.get("map", {})
    keywords: Json = {}
    if "min_pairs" in found:
        keywords["minProperties"] = int(found["min_pairs"])
    if "max_pairs" in found:
        keywords["maxProperties"] = int(found["max_pairs"])
    return keywords, found.get("keys", {}), found.get("values", {})


def _string(found: Mapping[str, Any]) -> Json:
    keywords: Json = {}
    for rule, keyword in (("min_len", "minLength"), ("max_len", "maxLength")):
        if rule in found:
            keywords[keyword] = int(found[rule])
    if "len" in found:
        keywords["minLength"] = keywords["maxLength"] = int(found["len"])
    if "pattern" in found:
        keywords["pattern"] = found["pattern"]
    if "in" in found:
        keywords["enum"] = list(found["in"])
    if "const" in found:
        keywords["const"] = found["const"]
    for rule, fmt in _FORMATS.items():
        if found.get(rule):
            keywords["format"] = fmt
    return keywords


def _number(found: Mapping[str, Any]) -> Json:
    keywords: Json = {}
    for rule, keyword in (("gte", "minimum"), ("lte", "maximum"), ("gt", "exclusiveMinimum"),
                          ("lt", "exclusiveMaximum"), ("const", "const")):
        if rule in found:
            keywords[keyword] = found[rule]
    if "in" in found:
        keywords["enum"] = list(found["in"])
    return keywords


def _varints(data: bytes) -> list[int]:
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
    return values
