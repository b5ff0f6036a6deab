"""Compiled proto -> JSON renderers: per message descriptor, each field's JSON key and converter.

Built once at load (jsonmessage.py turns them into one function per message). The output equals
google.protobuf.json_format.MessageToDict with the same options (tests/transcode prove it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.transcode import jsonwkt
from gateway.transcode.jsonmessage import Convert, listed, map_entry, straight_line
from gateway.transcode.schema import Schema

Json = Any  # a dict for ordinary messages; str, list, float, ... for some well-known types

_WELL_KNOWN: dict[str, Convert] = {
    "google.protobuf.Timestamp": jsonwkt.timestamp,
    "google.protobuf.Duration": jsonwkt.duration,
    "google.protobuf.FieldMask": jsonwkt.field_mask,
    "google.protobuf.Struct": jsonwkt.struct,
    "google.protobuf.Value": jsonwkt.value,
    "google.protobuf.ListValue": jsonwkt.list_value,
}
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"
_SCALARS: dict[int, Convert | None] = {
    FieldDescriptor.CPPTYPE_INT32: None,
    FieldDescriptor.CPPTYPE_UINT32: None,
    FieldDescriptor.CPPTYPE_BOOL: None,
    FieldDescriptor.CPPTYPE_STRING: None,
    FieldDescriptor.CPPTYPE_INT64: str,  # 64-bit integers are JSON strings
    FieldDescriptor.CPPTYPE_UINT64: str,
    FieldDescriptor.CPPTYPE_DOUBLE: jsonwkt.double,
    FieldDescriptor.CPPTYPE_FLOAT: jsonwkt.float32,
}


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """The two proto3 JSON printer options the gateway exposes."""

    use_proto_names: bool = False  # "display_name" instead of json_name "displayName"
    emit_unpopulated: bool = False  # print fields without presence at their defaults


@dataclass(frozen=True, slots=True, eq=False)
class Renderer:
    """Renders messages of one descriptor; see compile_renderer."""

    descriptor: Descriptor
    options: RenderOptions
    convert: Convert  # message -> JSON value; raises ValueError where json_format refuses

    def to_dict(self, message: Message) -> Json:
        """The proto3 JSON value of `message`, equal to json_format.MessageToDict's.

        Raises json_format.SerializeToJsonError where json_format refuses to print (a
        Timestamp out of range, NaN in a google.protobuf.Value), and TypeError for a message
        of another type or pool, or an Any whose type the schema does not hold.
        """
        if message.DESCRIPTOR is not self.descriptor:
            raise TypeError(
                f"renderer for {self.descriptor.full_name} got a {message.DESCRIPTOR.full_name} "
                "(from another descriptor pool?)"
            )
        try:
            return self.convert(message)
        except ValueError as exc:
            raise json_format.SerializeToJsonError(str(exc)) from exc

    def to_json(self, message: Message) -> bytes:
        """to_dict, serialized by orjson (compact UTF-8)."""
        return orjson.dumps(self.to_dict(message))


def compile_renderer(schema: Schema, descriptor: Descriptor, options: RenderOptions) -> Renderer:
    """Compile the proto3 JSON mapping for one message type of `schema` (and all it reaches).

    Per the proto3 JSON mapping: keys are json_name (or the proto name), 64-bit integers
    are strings, bytes are base64, enums are names (unknown numbers stay numbers), maps
    are objects with string keys, well-known types have their special forms. Example:
    User(id="u-1", state=ACTIVE) -> {"id": "u-1", "state": "USER_STATE_ACTIVE"}.

        renderer = compile_renderer(schema, schema.pool.FindMessageTypeByName("users.v1.User"),
                                    RenderOptions())
        renderer.to_json(user)  # b'{"id":"u-1","state":"USER_STATE_ACTIVE"}'
    """
    return Renderer(descriptor, options, _Compiler(schema, options).message(descriptor))


def compile_field_renderer(
    schema: Schema, field: FieldDescriptor, options: RenderOptions
) -> Callable[[Message], Json]:
    """Compile a function that renders the value of one field of a message, set or not.

    The proto3 JSON form of the value alone, as for google.api.http `response_body`:
    Book(author="Le Guin") with field "author" -> "Le Guin"; a repeated field -> a list.
    Raises ValueError where json_format refuses to print the value.
    """
    convert = _Compiler(schema, options).field(field)
    name = field.name
    if convert is None:
        return lambda message: getattr(message, name)
    return lambda message: convert(getattr(message, name))


class _Compiler:
    """One compilation: memoises message converters by full name, so recursion terminates."""

    def __init__(self, schema: Schema, options: RenderOptions) -> None:
        self._pool = schema.pool
        self._options = options
        self._messages: dict[str, Convert] = {}
        try:  # json_format reads custom enum value names from the default pool only
            self._enum_json: Any = (
                descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
            )
        except KeyError:
            self._enum_json = None

    def message(self, descriptor: Descriptor) -> Convert:
        name = descriptor.full_name
        known = self._messages.get(name)
        if known is not None:
            return known
        convert = self._special(descriptor)
        if convert is not None:
            self._messages[name] = convert
            return convert
        late: list[Convert] = []  # recursive references go through this until it is built
        self._messages[name] = lambda message: late[0](message)
        plan = [(field, *self.entry(field)) for field in descriptor.fields]
        emit = self._options.emit_unpopulated
        if descriptor.extension_ranges:
            found = self._pool.FindAllExtensions(descriptor)
            convert = listed(plan, [(ext, *self.entry(ext)) for ext in found], self.entry, emit)
        else:
            convert = straight_line(name, plan, emit)
        late.append(convert)
        self._messages[name] = convert
        return convert

    def entry(self, field: FieldDescriptor) -> tuple[str, Convert | None]:
        """(JSON key, converter) of a field."""
        if field.is_extension:
            key = f"[{field.full_name}]"
        elif self._options.use_proto_names:
            key = field.name
        else:
            key = field.json_name
        return key, self.field(field)

    def field(self, field: FieldDescriptor) -> Convert | None:
        """The converter of a field's whole value: a map, a repeated field or one value."""
        entry = map_entry(field)
        if entry is not None:
            key = _map_key(entry.fields_by_name["key"])
            return _map(key, self.value(entry.fields_by_name["value"]))
        convert = self.value(field)
        if not field.is_repeated:
            return convert
        if convert is None:
            return _copy
        return lambda values: list(map(convert, values))

    def value(self, field: FieldDescriptor) -> Convert | None:
        """The converter of one value of a field; None when the value is already JSON."""
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self._enum(field.enum_type)
        if field.type == FieldDescriptor.TYPE_BYTES:
            return jsonwkt.b64
        return _SCALARS[field.cpp_type]

    def _special(self, descriptor: Descriptor) -> Convert | None:
        if descriptor.file.name == _WRAPPERS_FILE:
            inner = self.value(descriptor.fields_by_name["value"])
            if inner is None:
                return _wrapped
            return lambda wrapper: inner(wrapper.value)
        if descriptor.full_name == "google.protobuf.Any":
            # Rare on the hot path: resolving the type URL at run time is json_format's job.
            return partial(
                json_format.MessageToDict,
                preserving_proto_field_name=self._options.use_proto_names,
                always_print_fields_with_no_presence=self._options.emit_unpopulated,
                descriptor_pool=self._pool,
            )
        return _WELL_KNOWN.get(descriptor.full_name)

    def _enum(self, enum: EnumDescriptor) -> Convert:
        if enum.full_name == "google.protobuf.NullValue":
            return _null
        names: dict[int, str] = {}
        for number, value in enum.values_by_number.items():
            names[number] = value.name
            options = value.GetOptions()
            if self._enum_json is not None and options.HasExtension(self._enum_json):
                names[number] = options.Extensions[self._enum_json].string
        if enum.is_closed:
            return partial(_closed_enum, names, enum.full_name)
        return _EnumNames(names).__getitem__


def _map_key(field: FieldDescriptor) -> Convert | None:
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return None
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return _bool_key
    return str  # integer keys


def _map(key: Convert | None, value: Convert | None) -> Convert:
    # Indexing by key measured faster than .items() on upb map containers.
    if value is None:
        if key is None:
            return lambda entries: {k: entries[k] for k in entries}
        convert_key = key
        return lambda entries: {convert_key(k): entries[k] for k in entries}
    convert = value
    if key is None:
        return lambda entries: {k: convert(entries[k]) for k in entries}
    convert_key = key
    return lambda entries: {convert_key(k): convert(entries[k]) for k in entries}


def _copy(values: Any) -> list[Any]:
    copied: list[Any] = values[:]  # a plain list of a repeated scalar container
    return copied


class _EnumNames(dict[int, str | int]):
    """Number -> name; an open enum's unknown number stays a number (a C-speed lookup)."""

    def __missing__(self, number: int) -> int:
        return number


def _bool_key(key: bool) -> str:
    return "true" if key else "false"


def _wrapped(wrapper: Any) -> Any:
    return wrapper.value


def _null(_: int) -> None:
    return None


def _closed_enum(names: dict[int, str], enum: str, number: int) -> str:
    try:
        return names[number]
    except KeyError:
        raise ValueError(f"{enum} has no value {number} (a closed enum)") from None
