"""JSON schemas (2020-12) of messages, enums and well-known types in the proto3 JSON mapping,
as components of an OpenAPI 3.1 document, with the request contract: `required` from
REQUIRED, `readOnly` / `writeOnly` from OUTPUT_ONLY / INPUT_ONLY, buf.validate rules as
keywords, `null` where the parser takes it (a field that may hold its default), and
`additionalProperties: false` where unknown fields are refused. Pure: stdlib and protobuf only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.transcode.openapi_rules import (
    INPUT_ONLY,
    OUTPUT_ONLY,
    REQUIRED,
    RuleReader,
    behaviors,
    default_passes,
    enum_names,
    map_keywords,
    repeated_keywords,
    value_keywords,
)

__all__ = ["ANY", "STATUS", "WKT", "Json", "JsonSchemas", "join", "ref"]

Json = dict[str, Any]
_REF: Final = "#/components/schemas/"
STATUS: Final = "google.rpc.Status"
ANY: Final = "google.protobuf.Any"
_REPLY_SUFFIX: Final = "-Reply"  # "-" cannot occur in a proto name, so twins never clash

_T = FieldDescriptor
_INT32: Final[Json] = {"type": "integer", "format": "int32"}
_UINT32: Final[Json] = {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}
_INT64: Final[Json] = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64: Final[Json] = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
_NON_FINITE: Final = 'NaN and infinities are the JSON strings "NaN", "Infinity", "-Infinity".'
_SCALARS: Final[Mapping[int, Json]] = MappingProxyType({
    _T.TYPE_INT32: _INT32, _T.TYPE_SINT32: _INT32, _T.TYPE_SFIXED32: _INT32,
    _T.TYPE_UINT32: _UINT32, _T.TYPE_FIXED32: _UINT32,
    _T.TYPE_INT64: _INT64, _T.TYPE_SINT64: _INT64, _T.TYPE_SFIXED64: _INT64,
    _T.TYPE_UINT64: _UINT64, _T.TYPE_FIXED64: _UINT64,
    _T.TYPE_FLOAT: {"type": "number", "format": "float", "description": _NON_FINITE},
    _T.TYPE_DOUBLE: {"type": "number", "format": "double", "description": _NON_FINITE},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte"},
})
# Well-known types with a JSON form of their own, inlined where they are used.
WKT: Final[Mapping[str, Json]] = MappingProxyType({
    "google.protobuf.Timestamp": {
        "type": "string", "format": "date-time",
        "description": 'RFC 3339 in UTC, such as "2024-01-02T03:04:05.678Z".',
    },
    "google.protobuf.Duration": {
        "type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$",
        "description": 'Seconds with up to 9 fractional digits and an "s", such as "1.5s".',
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": 'Comma-separated lowerCamelCase paths, such as "displayName,address.city".',
    },
    "google.protobuf.Struct": {
        "type": "object", "additionalProperties": {}, "description": "Any JSON object.",
    },
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}, "description": "Any JSON array."},
    "google.protobuf.Empty": {"type": "object", "description": "An empty JSON object."},
})
_FIXED: Final[Mapping[str, Json]] = MappingProxyType({
    STATUS: {
        "type": "object",
        "description": "The error body of every failed call (google.rpc.Status); the HTTP status "
        "follows from the code.",
        "properties": {
            "code": {**_INT32, "description": "The google.rpc.Code, such as 5 for NOT_FOUND."},
            "message": {"type": "string", "description": "A developer-facing error message."},
            "details": {
                "type": "array", "items": {"$ref": _REF + ANY},
                "description": "Machine-readable details, such as google.rpc.BadRequest.",
            },
        },
    },
    ANY: {
        "type": "object",
        "description": "A message of any type (google.protobuf.Any): the fields of the message "
        'and its type URL under "@type" (well-known types put their JSON under "value").',
        "properties": {"@type": {
            "type": "string",
            "description": 'The type URL, such as "type.googleapis.com/google.rpc.BadRequest".',
        }},
        "required": ["@type"],
        "additionalProperties": {},
    },
})


class JsonSchemas:
    """The schemas of one document and the components they refer to; mutable while that
    document is built, never shared."""

    def __init__(self, comments: Mapping[str, str], *, use_proto_names: bool,
                 rules: RuleReader | None = None, closed: bool = False) -> None:
        self.comments = comments
        self.use_proto_names = use_proto_names
        self.rules = rules
        self.closed = closed  # unknown body fields are refused: additionalProperties false
        self.components: dict[str, Json] = copy.deepcopy(dict(_FIXED))

    def field_rules(self, item: FieldDescriptor) -> Json:
        return self.rules.rules(item) if self.rules is not None else {}

    def key(self, item: FieldDescriptor) -> str:
        return item.name if self.use_proto_names else item.json_name

    def text_schema(self, item: FieldDescriptor) -> Json:
        """The schema of one element of a path or query field (scalar, enum or text WKT)."""
        if item.enum_type is not None:
            return _enum_values(item.enum_type)
        if item.message_type is not None:
            wrapped = _wrapped(item.message_type)
            if wrapped is None:
                return copy.deepcopy(WKT[item.message_type.full_name])
            return copy.deepcopy(dict(_SCALARS[wrapped.type]))
        return copy.deepcopy(dict(_SCALARS[item.type]))

    def field_schema(self, item: FieldDescriptor, *, twin: bool, described: bool = True) -> Json:
        entry = item.message_type
        rules = {} if twin else self.field_rules(item)  # a reply twin: what is printed
        if entry is not None and _is_map(item):
            key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
            keywords, key_rules, value_rules = map_keywords(rules)
            schema: Json = {"type": "object", "additionalProperties": _constrained(
                self.value(value, twin), value_keywords(value_rules)), **keywords}
            if key.type != _T.TYPE_STRING:
                kind = _SCALARS[key.type].get("format", "bool")
                schema["description"] = f"Keys are {kind} values written as JSON strings."
            elif value_keywords(key_rules):
                schema["propertyNames"] = value_keywords(key_rules)
        elif item.is_repeated:
            keywords, item_rules = repeated_keywords(rules)
            element = _constrained(self.value(item, twin), value_keywords(item_rules))
            names = enum_names(item.enum_type, item_rules) if item.enum_type else None
            if names is not None:
                element = {"allOf": [element], "enum": names}
            schema = {"type": "array", "items": element, **keywords}
        else:
            schema = _constrained(self.value(item, twin), value_keywords(rules))
            names = enum_names(item.enum_type, rules) if item.enum_type else None
            if names is not None:
                schema = {"allOf": [schema], "enum": names}
        if not described:
            return schema
        found = behaviors(item)
        if REQUIRED in found and not twin:
            schema = _not_default(item, schema)
        if not twin and REQUIRED not in found and default_passes(rules):
            schema = _nullable(schema)  # proto3 JSON: null is the default value
        if OUTPUT_ONLY in found:
            schema = {**_wrapped_ref(schema), "readOnly": True}
        if INPUT_ONLY in found:
            schema = {**_wrapped_ref(schema), "writeOnly": True}
        notes = [self.comments.get(item.full_name, "")]
        oneof = item.containing_oneof
        if oneof is not None and not _proto3_optional(item):
            members = ", ".join(f"`{self.key(f)}`" for f in oneof.fields)
            notes.append(f"Member of oneof `{oneof.name}`: set at most one of {members}.")
        return _described(schema, notes, deprecated=item.GetOptions().deprecated)

    def value(self, item: FieldDescriptor, twin: bool) -> Json:
        if item.message_type is not None:
            return self.message_value(item.message_type, twin)
        if item.enum_type is not None:
            if item.enum_type.full_name == "google.protobuf.NullValue":
                return {"type": "null", "description": "Always null."}
            name = item.enum_type.full_name
            if name not in self.components:
                self.components[name] = _described(
                    _enum_values(item.enum_type), [self.enum_description(item.enum_type)],
                    deprecated=item.enum_type.GetOptions().deprecated,
                )
            return ref(name)
        return copy.deepcopy(dict(_SCALARS[item.type]))

    def message_value(self, message: Descriptor, twin: bool) -> Json:
        name = message.full_name
        if name in WKT:
            return copy.deepcopy(WKT[name])
        if name in _FIXED:
            return ref(name)
        wrapped = _wrapped(message)
        if wrapped is not None:
            return _nullable(self.value(wrapped, twin))
        key = name + _REPLY_SUFFIX if twin else name
        if key not in self.components:
            self.components[key] = {}  # a placeholder: recursive types refer to it meanwhile
            self.components[key] = self.message_schema(message, frozenset(), twin=twin)
        return ref(key)

    def message_schema(self, message: Descriptor, skip: frozenset[str], *, twin: bool,
                       partial: bool = False) -> Json:
        """The object schema of `message`; the dotted field paths in `skip` are left out (the
        properties on their way are inlined). `twin`: a reply printed with emit_unpopulated.
        `partial`: an update's resource, whose REQUIRED fields the mask may leave out."""
        properties: Json = {}
        required: list[str] = []
        for item in message.fields:
            if item.name in skip:
                continue
            key = self.key(item)
            inner = frozenset(p.partition(".")[2] for p in skip if p.startswith(item.name + "."))
            if inner and item.message_type is not None:
                properties[key] = _described(
                    self.message_schema(item.message_type, inner, twin=twin),
                    [self.comments.get(item.full_name, "")], deprecated=False, replace=True,
                )
            else:
                properties[key] = self.field_schema(item, twin=twin)
            # a reply twin lists what the renderer always prints; otherwise REQUIRED fields,
            # and fields whose rules refuse the default that an absent field holds
            if (not item.has_presence) if twin else not partial and (
                    REQUIRED in behaviors(item) or (
                        not item.has_presence
                        and not default_passes(self.field_rules(item), sent=False))):
                required.append(key)
        schema: Json = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if self.closed:
            schema["additionalProperties"] = False
        if partial and any(REQUIRED in behaviors(f) for f in message.fields):
            schema["minProperties"] = 1  # an empty update replaces all, REQUIRED ones too
        notes = [self.comments.get(message.full_name, "")]
        if twin:
            notes.append("As a reply: fields without presence are always present.")
        return _described(schema, notes, deprecated=message.GetOptions().deprecated)

    def enum_description(self, enum: EnumDescriptor) -> str:
        lines = []
        for value in enum.values:
            comment = self.comments.get(f"{enum.full_name}.{value.name}")
            lines.append(f"- `{value.name}`: {comment}" if comment else f"- `{value.name}`")
        return join(self.comments.get(enum.full_name, ""), "\n".join(lines))


def _described(schema: Json, notes: Sequence[str], *, deprecated: bool,
               replace: bool = False) -> Json:
    """`schema` with a description (and deprecation); a $ref is wrapped in allOf, so that
    tools that still read $ref alone (as OpenAPI 3.0 did) keep the description."""
    text = join(*notes)
    if not text and not deprecated:
        return schema
    schema = {"allOf": [schema]} if "$ref" in schema else dict(schema)
    if text:
        schema["description"] = text if replace else join(text, schema.get("description", ""))
    if deprecated:
        schema["deprecated"] = True
    return schema


def _not_default(item: FieldDescriptor, schema: Json) -> Json:
    """REQUIRED: a field without presence that holds its default is missing, so the default
    is not a valid value (an empty list, map or string; zero; false)."""
    if item.is_repeated:
        count = "minProperties" if _is_map(item) else "minItems"
        return {**schema, count: max(1, schema.get(count, 0))}
    if item.has_presence:
        return schema  # a message or optional field: present is enough
    if item.type == _T.TYPE_STRING or item.type == _T.TYPE_BYTES:
        return {**schema, "minLength": max(1, schema.get("minLength", 0))}
    if item.type == _T.TYPE_BOOL:
        return {**schema, "const": True}
    if item.enum_type is not None:
        return {"allOf": [schema], "not": {"const": item.enum_type.values[0].name}}
    if "minimum" in schema and schema["minimum"] > 0:
        return schema
    zero: object = "0" if schema.get("type") == "string" else 0
    return {**schema, "not": {"const": zero}}


def _wrapped_ref(schema: Json) -> Json:
    return {"allOf": [schema]} if "$ref" in schema else dict(schema)


def _constrained(schema: Json, keywords: Json) -> Json:
    """A value schema with rule keywords (a reference is wrapped: they apply to its value)."""
    if not keywords:
        return schema
    if "$ref" in schema:
        return {"allOf": [schema], **keywords}
    return {**schema, **keywords}


def _nullable(schema: Json) -> Json:
    """`schema` or JSON null (2020-12 has a null type; OpenAPI 3.1 dropped `nullable`)."""
    kind = schema.get("type")
    if kind is None:
        if not {"$ref", "allOf", "anyOf"} & set(schema):
            return schema  # any JSON value already
        return {"anyOf": [schema, {"type": "null"}]}
    if isinstance(kind, list) or kind == "null":
        return schema
    nullable = {**schema, "type": [kind, "null"]}
    if "enum" in nullable:
        nullable["enum"] = [*nullable["enum"], None]
    return nullable


def join(*texts: str) -> str:
    return "\n\n".join(dict.fromkeys(text for text in texts if text))  # each text once


def ref(name: str) -> Json:
    return {"$ref": _REF + name}


def _enum_values(enum: EnumDescriptor) -> Json:
    return {"type": "string", "enum": [value.name for value in enum.values]}


def _is_map(item: FieldDescriptor) -> bool:
    return item.message_type is not None and item.message_type.GetOptions().map_entry


def _wrapped(message: Descriptor) -> FieldDescriptor | None:
    """The `value` field of a google.protobuf wrapper (StringValue, ...), else None."""
    if message.file.name != "google/protobuf/wrappers.proto":
        return None
    return message.fields_by_name["value"]


def _proto3_optional(item: FieldDescriptor) -> bool:
    # its oneof is synthetic: the field is not a member of a real oneof
    proto = descriptor_pb2.DescriptorProto()
    assert item.containing_type is not None
    item.containing_type.CopyToProto(proto)
    return proto.field[item.index].proto3_optional
