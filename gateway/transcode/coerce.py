"""HTTP text -> JSON values: path/query text by field type, and each field's plan (names,
JSON shape, converters). Pure: imports the stdlib, protobuf, gateway.errors and gateway.transcode.
Strict query and JSON body reading lives in httpinput; its names are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.errors import InvalidArgument
from gateway.transcode.httpinput import parse_json_body, parse_query, quote

__all__ = [
    "Coercer",
    "FieldPlan",
    "JsonNormalizer",
    "JsonObject",
    "JsonScalar",
    "MessagePlan",
    "compile_coercer",
    "compile_message_plans",
    "normalize_base64",
    "parse_json_body",
    "parse_query",
    "quote",
]

JsonObject = dict[str, object]
JsonScalar = bool | int | float | str
# (text, field path for messages) -> the value ParseDict expects for that field
Coercer = Callable[[str, str], JsonScalar]
# (JSON value from a body, field path) -> the value ParseDict reads correctly
JsonNormalizer = Callable[[object, str], object]

_INT_RE: Final = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_FLOAT_SPECIAL: Final = frozenset({"NaN", "Infinity", "-Infinity"})  # proto3 JSON spellings
_BOOLS: Final = {"true": True, "false": False, "1": True, "0": False}
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/\-_]*(={0,2})", re.ASCII)
_URLSAFE: Final = str.maketrans("-_", "+/")

_T = FieldDescriptor
# (JSON kind name, lowest, highest) per integer type
_INT_RANGES: Final = {
    _T.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    _T.TYPE_SINT32: ("sint32", -(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: ("sfixed32", -(2**31), 2**31 - 1),
    _T.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    _T.TYPE_FIXED32: ("fixed32", 0, 2**32 - 1),
    _T.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    _T.TYPE_SINT64: ("sint64", -(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: ("sfixed64", -(2**63), 2**63 - 1),
    _T.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    _T.TYPE_FIXED64: ("fixed64", 0, 2**64 - 1),
}
_WRAPPERS: Final = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
# Well-known types with a JSON form of their own: json_format reads them whole.
_OWN_JSON: Final = _WRAPPERS | {
    f"google.protobuf.{name}"
    for name in ("Any", "Duration", "FieldMask", "ListValue", "Struct", "Timestamp", "Value")
}


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """What one field accepts, resolved at load: its names, JSON shape and text converter."""

    name: str  # proto name: the key the decoder writes and the name errors use
    json_name: str
    type_name: str | None  # full name of the message type (the map entry's value type for maps)
    repeated: bool  # a JSON array (maps are not)
    is_map: bool
    message: str | None  # type_name when it is a message read field by field (not a WKT)
    # fixes up the JSON value (each element, each map value) before json_format reads it
    normalize: JsonNormalizer | None
    oneof: str | None
    coerce: Coercer | None  # path/query text -> JSON; None when text cannot carry the field


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """The fields of one message type by proto name and by JSON name (both spellings are
    accepted in bodies and queries, as protojson and grpc-gateway do)."""

    fields: Mapping[str, FieldPlan]


def compile_message_plans(root: Descriptor) -> dict[str, MessagePlan]:
    """Plans for `root` and every message type reachable from it through fields that are
    read field by field (well-known types with a JSON form of their own are leaves).

    >>> plans = compile_message_plans(echo_kitchen_request)
    >>> plans["testing.v1.EchoKitchenRequest"].fields["int32Value"].name
    'int32_value'
    """
    plans: dict[str, MessagePlan] = {}
    pending = [root]
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name in plans:
            continue
        fields: dict[str, FieldPlan] = {}
        for field in descriptor.fields:
            plan, value_type = _field_plan(field)
            fields.setdefault(field.json_name, plan)
            fields[field.name] = plan  # a proto name wins over a clashing JSON name
            if plan.message is not None and value_type is not None:
                pending.append(value_type)
        plans[descriptor.full_name] = MessagePlan(MappingProxyType(fields))
    return plans


def compile_coercer(field: FieldDescriptor) -> Coercer | None:
    """The converter from path/query text to the proto3 JSON value of one element of `field`.

    google/api/http.proto: path and query parameters carry primitive fields (and repeated
    primitives, one element per parameter); the well-known types with a string form in the
    proto3 JSON mapping (Timestamp, Duration, FieldMask, the wrappers) count as primitives.
    Returns None for anything text cannot carry: maps, Struct/Value/Any, other messages.

    >>> compile_coercer(int32_field)("42", "int32_value")
    42
    """
    if field.type in _INT_RANGES:
        kind, low, high = _INT_RANGES[field.type]
        return _integer(kind, low, high)
    if field.type in (_T.TYPE_FLOAT, _T.TYPE_DOUBLE):
        return _float if field.type == _T.TYPE_FLOAT else _double
    if field.type == _T.TYPE_BOOL:
        return _bool
    if field.type == _T.TYPE_STRING:
        return _string
    if field.type == _T.TYPE_BYTES:
        return normalize_base64
    if field.enum_type is not None:
        return _enum(field.enum_type)
    if field.message_type is None or field.message_type.GetOptions().map_entry:
        return None
    name = field.message_type.full_name
    if name in _WRAPPERS:
        return compile_coercer(field.message_type.fields_by_name["value"])
    return _WKT_TEXT.get(name)


def normalize_base64(text: str, path: str) -> str:
    """Standard padded base64 for a bytes value sent as base64 or base64url, padded or not.

    The proto3 JSON mapping accepts both alphabets, with or without padding. json_format
    would silently drop characters outside the alphabet; this rejects them.

    >>> normalize_base64("-_8", "bytes_value")
    '+/8='
    """
    found = _BASE64_RE.fullmatch(text)
    data = text.rstrip("=")
    if found is None or len(data) % 4 == 1 or (found.group(1) and len(text) % 4):
        raise InvalidArgument(f"invalid base64 in {path}")
    try:
        raw = base64.b64decode(data.translate(_URLSAFE) + "=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        raise InvalidArgument(f"invalid base64 in {path}") from None
    return base64.b64encode(raw).decode("ascii")


def _field_plan(field: FieldDescriptor) -> tuple[FieldPlan, Descriptor | None]:
    entry = field.message_type
    is_map = entry is not None and entry.GetOptions().map_entry
    value = entry.fields_by_name["value"] if entry is not None and is_map else field
    value_type = value.message_type
    type_name = value_type.full_name if value_type is not None else None
    oneof = field.containing_oneof
    plan = FieldPlan(
        name=field.name,
        json_name=field.json_name,
        type_name=type_name,
        repeated=field.is_repeated and not is_map,
        is_map=is_map,
        message=type_name if type_name is not None and type_name not in _OWN_JSON else None,
        normalize=_NORMALIZERS.get(type_name or value.type),
        oneof=oneof.name if oneof is not None else None,
        coerce=None if is_map else compile_coercer(field),
    )
    return plan, value_type


def _integer(kind: str, low: int, high: int) -> Coercer:
    def coerce(text: str, path: str) -> JsonScalar:
        if _INT_RE.fullmatch(text) is None:
            raise InvalidArgument(f"invalid {kind} value {quote(text)} for field {path}")
        value = int(text)
        if not low <= value <= high:
            raise InvalidArgument(f"value {text} out of range for {kind} field {path}")
        return value

    return coerce


def _double(text: str, path: str) -> JsonScalar:
    if text in _FLOAT_SPECIAL:
        return text
    if _FLOAT_RE.fullmatch(text) is None:
        raise InvalidArgument(f"invalid double value {quote(text)} for field {path}")
    value = float(text)
    if math.isinf(value):
        raise InvalidArgument(f"value {text} out of range for double field {path}")
    return value


def _float(text: str, path: str) -> JsonScalar:
    value = _double(text, path)
    return value if isinstance(value, str) else _to_float32(value, text, path)


def _to_float32(value: float, shown: object, path: str) -> float:
    # json_format rejects values above FLT_MAX that round to it, such as the 3.4028235e+38 that
    # its own printer writes; rounding first, as protojson does, keeps the JSON round trip.
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        raise InvalidArgument(f"value {shown} out of range for float field {path}") from None


def _float32_json(value: object, path: str) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value  # json_format reports the wrong type
    if isinstance(value, str):
        if value in _FLOAT_SPECIAL or _FLOAT_RE.fullmatch(value) is None:
            return value
        number = float(value)
    else:
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            number = math.inf
    return value if math.isnan(number) else _to_float32(number, value, path)


def _bytes_json(value: object, path: str) -> object:
    return normalize_base64(value, path) if isinstance(value, str) else value


def _bool(text: str, path: str) -> JsonScalar:
    value = _BOOLS.get(text)
    if value is None:
        raise InvalidArgument(f"invalid bool value {quote(text)} for field {path}")
    return value


def _string(text: str, path: str) -> JsonScalar:
    return text


def _enum(enum: EnumDescriptor) -> Coercer:
    names = frozenset(enum.values_by_name)
    numbers = frozenset(enum.values_by_number)

    def coerce(text: str, path: str) -> JsonScalar:
        if text in names:
            return text
        # grpc-gateway: a number must name a declared value (proto3 JSON bodies may carry others)
        if _INT_RE.fullmatch(text) is not None and int(text) in numbers:
            return int(text)
        raise InvalidArgument(f"unknown enum value {quote(text)} for {path}")

    return coerce


def _timestamp(text: str, path: str) -> JsonScalar:
    try:
        timestamp_pb2.Timestamp().FromJsonString(text)
    except ValueError:
        raise InvalidArgument(f"invalid RFC 3339 timestamp in {path}: {quote(text)}") from None
    return text


def _duration(text: str, path: str) -> JsonScalar:
    try:
        duration_pb2.Duration().FromJsonString(text)
    except ValueError:
        raise InvalidArgument(
            f'invalid duration in {path}: {quote(text)} (want seconds with an "s" suffix, "1.5s")'
        ) from None
    return text


def _field_mask(text: str, path: str) -> JsonScalar:
    # Query masks may name fields in lowerCamel (the JSON form) or snake_case (as grpc-gateway
    # takes them); the JSON form ParseDict reads is lowerCamel.
    try:
        camel = ",".join(
            field_mask_pb2.FieldMask(paths=[part]).ToJsonString() if "_" in part else part
            for part in text.split(",")
            if part
        )
        field_mask_pb2.FieldMask().FromJsonString(camel)
    except ValueError:
        raise InvalidArgument(f"invalid field mask in {path}: {quote(text)}") from None
    return camel


_NORMALIZERS: Final[dict[str | int, JsonNormalizer]] = {
    _T.TYPE_BYTES: _bytes_json,
    "google.protobuf.BytesValue": _bytes_json,
    _T.TYPE_FLOAT: _float32_json,
    "google.protobuf.FloatValue": _float32_json,
}
_WKT_TEXT: Final[dict[str, Coercer]] = {
    "google.protobuf.Timestamp": _timestamp,
    "google.protobuf.Duration": _duration,
    "google.protobuf.FieldMask": _field_mask,
}
