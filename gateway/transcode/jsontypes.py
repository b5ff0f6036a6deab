"""Plain words for a JSON value of the wrong type, found only once json_format has refused a body.

json_format's messages for a type mismatch come from Python (`expected string or bytes-like
object, got 'int'`) and name only the innermost field. When parsing fails, this walk finds the
first value whose JSON type its field cannot take and says so with the whole field path:
`field user.displayName must be a string, not a number`. It runs on the error path only, so a
good request pays nothing. Pure: protobuf descriptors and stdlib.
"""

from __future__ import annotations

import re
from typing import Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_F = FieldDescriptor
_INTEGER_TEXT: Final = re.compile(r"-?[0-9]+")
_INT32: Final = frozenset({_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32, _F.TYPE_UINT32,
                           _F.TYPE_FIXED32})
_INT64: Final = frozenset({_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64, _F.TYPE_UINT64,
                           _F.TYPE_FIXED64})
_FLOATS: Final = frozenset({_F.TYPE_FLOAT, _F.TYPE_DOUBLE})
_STRING_WKTS: Final = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration",
                                 "google.protobuf.FieldMask"})
_WRAPPERS: Final = frozenset({"google.protobuf.StringValue", "google.protobuf.BytesValue",
                              "google.protobuf.BoolValue", "google.protobuf.Int32Value",
                              "google.protobuf.UInt32Value", "google.protobuf.Int64Value",
                              "google.protobuf.UInt64Value", "google.protobuf.FloatValue",
                              "google.protobuf.DoubleValue"})
_ANYTHING: Final = frozenset({"google.protobuf.Value"})
_OBJECTS: Final = frozenset({"google.protobuf.Struct", "google.protobuf.Any",
                             "google.protobuf.Empty"})


def type_error(root: object, message: Descriptor, body_field: str | None = None) -> str | None:
    """The first value in `root` (a request's JSON) of a type its field cannot take, in words;
    None when every value has a type its field accepts (the problem lies elsewhere).

    `body_field`: the top-level field the HTTP body fills (`body: "user"`); paths below it are
    named as the client wrote them, from the body's top (`email`, not `user.email`).
    """
    if not isinstance(root, dict):
        return None
    return _message(root, message, "", body_field)


def _message(obj: dict[str, object], message: Descriptor, path: str,
             body_field: str | None = None) -> str | None:
    by_json = {field.json_name: field for field in message.fields}
    for key, value in obj.items():
        field = message.fields_by_name.get(key) or by_json.get(key)
        if field is None or value is None:
            continue  # unknown keys and nulls: json_format's own messages are clear
        if key == body_field and field.message_type is not None and isinstance(value, dict):
            problem = _message(value, field.message_type, "")
            if problem is not None:
                return f"{problem} (in the body)"
            continue
        here = f"{path}.{key}" if path else key
        problem = _field(field, value, here)
        if problem is not None:
            return problem
    return None


def _field(field: FieldDescriptor, value: object, here: str) -> str | None:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, dict):
            return _wrong(here, "an object (a map)", value)
        value_field = entry.fields_by_name["value"]
        for key, item in value.items():
            problem = _single(value_field, item, f"{here}[{key}]")
            if problem is not None:
                return problem
        return None
    if field.is_repeated:
        if not isinstance(value, list):
            return _wrong(here, "an array", value)
        for index, item in enumerate(value):
            problem = _single(field, item, f"{here}[{index}]")
            if problem is not None:
                return problem
        return None
    return _single(field, value, here)


def _single(field: FieldDescriptor, value: object, here: str) -> str | None:
    if value is None:
        return None
    message = field.message_type
    if message is None:
        return _scalar(field.type, value, here)
    name = message.full_name
    if name in _ANYTHING:
        return None
    if name in _STRING_WKTS:
        return None if isinstance(value, str) else _wrong(here, "a string", value)
    if name in _WRAPPERS:
        return _scalar(message.fields_by_name["value"].type, value, here)
    if name == "google.protobuf.ListValue":
        return None if isinstance(value, list) else _wrong(here, "an array", value)
    if not isinstance(value, dict):
        return _wrong(here, "an object", value)
    if name in _OBJECTS:
        return None
    return _message(value, message, here)


def _scalar(kind: int, value: object, here: str) -> str | None:
    if kind == _F.TYPE_STRING:
        ok = isinstance(value, str)
        expected = "a string"
    elif kind == _F.TYPE_BYTES:
        ok = isinstance(value, str)
        expected = "a base64 string"
    elif kind == _F.TYPE_BOOL:
        ok = isinstance(value, bool)
        expected = "true or false"
    elif kind in _INT32 or kind in _INT64:
        ok = (isinstance(value, int) and not isinstance(value, bool)
              or isinstance(value, float) and value.is_integer()
              or isinstance(value, str) and _INTEGER_TEXT.fullmatch(value) is not None)
        expected = ("an integer (a number, or a string of digits)" if kind in _INT64
                    else "an integer")
    elif kind in _FLOATS:
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              or isinstance(value, str))  # "NaN", "Infinity", "1.5": json_format judges them
        expected = "a number"
    elif kind == _F.TYPE_ENUM:
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
        expected = "an enum value name (a string) or number"
    else:
        return None
    return None if ok else _wrong(here, expected, value)


def _wrong(here: str, expected: str, value: object) -> str:
    return f"field {here} must be {expected}, not {_json_type(value)}"


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
