"""The compiled proto -> JSON renderer against json_format, and the per-route reply encoder."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from google.api import httpbody_pb2
from google.protobuf import any_pb2, descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import Code, ConfigError, GatewayError
from gateway.transcode.jsonrender import RenderOptions, compile_field_renderer, compile_renderer
from gateway.transcode.response import compile_reply_encoder, render_status_details
from gateway.transcode.route import Route
from gateway.transcode.schema import load_schema
from gateway.transcode.template import Literal, Template
from tests.conftest import DESCRIPTOR_SET

# One schema for the whole module: renderers refuse messages of another pool's descriptors.
SCHEMA = load_schema(DESCRIPTOR_SET.read_bytes())
POOL = SCHEMA.pool
OPTIONS = [RenderOptions(proto, emit) for proto in (False, True) for emit in (False, True)]
INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)  # no lone surrogates
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
SNAKE = st.from_regex(r"[a-z][a-z0-9]{0,4}(_[a-z][a-z0-9]{0,3}){0,2}", fullmatch=True)
ANY_PAYLOADS = ["testing.v1.Book", "testing.v1.Nested", "google.protobuf.Timestamp",
                "google.protobuf.Int64Value", "google.protobuf.Struct", "google.protobuf.Empty"]
MAX_DEPTH = 3


def message_type(name: str) -> Descriptor:
    return POOL.FindMessageTypeByName(name)


def new(type_name: str, /, **fields: Any) -> Any:
    return SCHEMA.message_class(message_type(type_name))(**fields)


def all_message_types() -> Iterator[str]:
    def walk(descriptor: Descriptor) -> Iterator[str]:
        yield descriptor.full_name
        for nested in descriptor.nested_types:
            yield from walk(nested)

    for proto in SCHEMA.files:
        for descriptor in POOL.FindFileByName(proto.name).message_types_by_name.values():
            yield from walk(descriptor)


# -- hypothesis: messages of any descriptor, random values per field kind ---------------------


def scalars(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    cpp = field.cpp_type
    if field.enum_type is not None:
        known = st.sampled_from(sorted(field.enum_type.values_by_number))
        return known if field.enum_type.is_closed else known | st.integers(-(2**31), 2**31 - 1)
    if cpp in INT_RANGES:
        low, high = INT_RANGES[cpp]
        return st.integers(low, high)
    if cpp == FieldDescriptor.CPPTYPE_FLOAT:
        return st.floats(width=32)  # NaN and infinities included
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return st.floats()
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return st.booleans()
    return st.binary(max_size=8) if field.type == FieldDescriptor.TYPE_BYTES else TEXT


def fill(draw: Callable[..., Any], message: Any, depth: int) -> None:
    """Set a random subset of `message`'s fields in place (at most one per oneof)."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        message.seconds = draw(st.integers(-62135596800, 253402300799))
        message.nanos = draw(st.sampled_from([0, 5_000_000, 7_000]) | st.integers(0, 10**9 - 1))
    elif name == "google.protobuf.Duration":
        seconds = draw(st.integers(-315576000000, 315576000000))
        nanos = draw(st.integers(0, 10**9 - 1) | st.sampled_from([0, 500_000_000]))
        message.seconds, message.nanos = seconds, -nanos if seconds < 0 else nanos
    elif name == "google.protobuf.FieldMask":
        message.paths.extend(draw(st.lists(st.lists(SNAKE, min_size=1, max_size=2).map(".".join),
                                           max_size=3)))
    elif name in ("google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"):
        shape = {"google.protobuf.Struct": st.dictionaries(TEXT, JSON_VALUES, max_size=3),
                 "google.protobuf.ListValue": st.lists(JSON_VALUES, max_size=3)}
        json_format.ParseDict(draw(shape.get(name, JSON_VALUES)), message)
    elif name == "google.protobuf.Any":
        if depth < MAX_DEPTH and draw(st.booleans()):
            payload = SCHEMA.message_class(message_type(draw(st.sampled_from(ANY_PAYLOADS))))()
            fill(draw, payload, depth + 1)
            message.Pack(payload)
    else:
        fill_fields(draw, message, depth)


def fill_fields(draw: Callable[..., Any], message: Any, depth: int) -> None:
    descriptor = message.DESCRIPTOR
    chosen = {o.name: draw(st.sampled_from([None, *o.fields])) for o in descriptor.oneofs}
    fields = [*descriptor.fields, *POOL.FindAllExtensions(descriptor)]
    for field in fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof.name] is not field:
            continue
        if oneof is None and not draw(st.booleans()):
            continue
        container = message.Extensions if field.is_extension else None
        set_field(draw, message, field, container, depth)


def set_field(draw: Callable[..., Any], message: Any, field: FieldDescriptor,
              extensions: Any, depth: int) -> None:
    def get() -> Any:
        return extensions[field] if extensions is not None else getattr(message, field.name)

    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        keys = draw(st.lists(scalars(key_field), max_size=3, unique=True))
        target = get()
        for key in keys:
            if value_field.message_type is None:
                target[key] = draw(scalars(value_field))
            elif depth < MAX_DEPTH:
                fill(draw, target[key], depth + 1)
    elif field.is_repeated and entry is not None:
        if depth < MAX_DEPTH:
            for _ in range(draw(st.integers(0, 2))):
                fill(draw, get().add(), depth + 1)
    elif field.is_repeated:
        get().extend(draw(st.lists(scalars(field), max_size=3)))
    elif entry is not None:
        if depth < MAX_DEPTH:
            target = get()
            target.SetInParent()
            fill(draw, target, depth + 1)
    elif extensions is not None:
        extensions[field] = draw(scalars(field))
    else:
        setattr(message, field.name, draw(scalars(field)))


@st.composite
def messages(draw: Callable[..., Any], name: str) -> Any:
    message = SCHEMA.message_class(message_type(name))()
    fill(draw, message, 0)
    return message


# -- the differential check ------------------------------------------------------------------


def typed(value: Any) -> Any:
    """JSON value with each leaf's type beside it: 1, 1.0 and True must not compare equal."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return type(value).__name__, value


def assert_renders_like_json_format(message: Any) -> None:
    for options in OPTIONS:
        renderer = compile_renderer(SCHEMA, message.DESCRIPTOR, options)
        try:
            expected = json_format.MessageToDict(
                message,
                preserving_proto_field_name=options.use_proto_names,
                always_print_fields_with_no_presence=options.emit_unpopulated,
                descriptor_pool=POOL,
            )
        except (json_format.Error, ValueError, TypeError):
            with pytest.raises((json_format.Error, TypeError)):
                renderer.to_dict(message)
            continue
        got = renderer.to_dict(message)
        assert typed(got) == typed(expected), options
        assert orjson.loads(renderer.to_json(message)) == expected, options


@pytest.mark.parametrize("name", sorted(set(all_message_types())))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_message_type_renders_like_json_format(name: str, data: st.DataObject) -> None:
    assert_renders_like_json_format(data.draw(messages(name)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages("testing.v1.EchoKitchenRequest"))
def test_kitchen_sink_renders_like_json_format(message: Any) -> None:
    assert_renders_like_json_format(message)


# -- fixed examples: the mapping's rules spelled out ------------------------------------------


def test_kitchen_example_spells_out_the_mapping() -> None:
    kitchen = new(
        "testing.v1.EchoKitchenRequest",
        int64_value=-(2**63), uint64_value=2**64 - 1, float_value=0.1, double_value=-math.inf,
        bytes_value=b"\xff\x00", color=2, repeated_color=[1, 99], custom_json="x",
        bool_map={True: 1, False: -2}, nested_map={7: new("testing.v1.Nested", label="n")},
        optional_int32=0,
    )
    kitchen.timestamp.FromJsonString("2024-02-29T23:59:59.120Z")
    kitchen.duration.FromJsonString("-1.000001s")
    kitchen.field_mask.paths.extend(["book.display_name", "title"])
    kitchen.wrapped_string.value = ""
    kitchen.value.SetInParent()
    kitchen.any.Pack(new("testing.v1.Book", name="shelves/1/books/2", page_count=3))
    renderer = compile_renderer(SCHEMA, kitchen.DESCRIPTOR, RenderOptions())
    assert renderer.to_dict(kitchen) == {
        "int64Value": "-9223372036854775808",
        "uint64Value": "18446744073709551615",
        "floatValue": 0.1,
        "doubleValue": "-Infinity",
        "bytesValue": "/wA=",
        "color": "COLOR_GREEN",
        "repeatedColor": ["COLOR_RED", 99],
        "customJSON": "x",
        "boolMap": {"true": "1", "false": "-2"},
        "nestedMap": {"7": {"label": "n"}},
        "optionalInt32": 0,
        "timestamp": "2024-02-29T23:59:59.120Z",
        "duration": "-1.000001s",
        "fieldMask": "book.displayName,title",
        "wrappedString": "",
        "value": None,
        "any": {"@type": "type.googleapis.com/testing.v1.Book", "name": "shelves/1/books/2",
                "pageCount": "3"},
    }
    proto_names = compile_renderer(SCHEMA, kitchen.DESCRIPTOR, RenderOptions(use_proto_names=True))
    assert proto_names.to_dict(kitchen)["custom_json"] == "x"


def test_emit_unpopulated_prints_fields_without_presence_only() -> None:
    book = new("testing.v1.Book")
    renderer = compile_renderer(SCHEMA, book.DESCRIPTOR, RenderOptions(emit_unpopulated=True))
    assert renderer.to_dict(book) == {"name": "", "title": "", "author": "", "pageCount": "0"}
    assert renderer.to_json(book) == b'{"name":"","title":"","author":"","pageCount":"0"}'


@pytest.mark.parametrize(
    ("field", "setup"),
    [
        ("timestamp", lambda m: setattr(m.timestamp, "seconds", 253402300800)),
        ("timestamp", lambda m: setattr(m.timestamp, "nanos", -1)),
        ("duration", lambda m: m.duration.MergeFrom(new("google.protobuf.Duration", seconds=1,
                                                                      nanos=-1))),
        ("field_mask", lambda m: m.field_mask.paths.append("bookTitle")),
        ("field_mask", lambda m: m.field_mask.paths.append("trailing_")),
        ("value", lambda m: setattr(m.value, "number_value", math.nan)),
        ("struct_value", lambda m: m.struct_value.update({"x": math.inf})),
    ],
)
def test_values_json_format_refuses_are_refused(field: str, setup: Callable[[Any], Any]) -> None:
    kitchen = new("testing.v1.EchoKitchenRequest")
    setup(kitchen)
    with pytest.raises(json_format.SerializeToJsonError):
        json_format.MessageToDict(kitchen, descriptor_pool=POOL)
    renderer = compile_renderer(SCHEMA, kitchen.DESCRIPTOR, RenderOptions())
    with pytest.raises(json_format.SerializeToJsonError):
        renderer.to_dict(kitchen)
    with pytest.raises(ValueError):
        compile_field_renderer(SCHEMA, kitchen.DESCRIPTOR.fields_by_name[field], RenderOptions())(
            kitchen
        )


def test_any_of_a_type_the_schema_lacks_is_a_type_error() -> None:
    kitchen = new("testing.v1.EchoKitchenRequest")
    kitchen.any.type_url = "type.googleapis.com/nowhere.Missing"
    with pytest.raises(TypeError, match="nowhere.Missing"):
        compile_renderer(SCHEMA, kitchen.DESCRIPTOR, RenderOptions()).to_dict(kitchen)


def test_a_message_of_another_type_is_refused() -> None:
    renderer = compile_renderer(SCHEMA, message_type("testing.v1.Book"), RenderOptions())
    with pytest.raises(TypeError, match=r"testing\.v1\.Book got a testing\.v1\.Shelf"):
        renderer.to_dict(new("testing.v1.Shelf"))


def test_recursive_messages_render_at_any_depth() -> None:
    nested = new("testing.v1.Nested", label="0")
    node = nested
    for depth in range(1, 40):
        node = node.child
        node.label = str(depth)
    renderer = compile_renderer(SCHEMA, nested.DESCRIPTOR, RenderOptions())
    assert renderer.to_dict(nested) == json_format.MessageToDict(nested, descriptor_pool=POOL)


# -- the reply encoder ------------------------------------------------------------------------


def route(rpc: str, output: str, response_body: str | None = None) -> Route:
    return Route(
        http_method="GET",
        template=Template((Literal("test"),)),
        method=f"/testing.v1.Echo/{rpc}",
        service="testing.v1.Echo",
        input=message_type("testing.v1.GetBookRequest"),
        output=message_type(output),
        body=None,
        response_body=response_body,
        client_streaming=False,
        server_streaming=False,
        idempotent=True,
        path_fields=(),
    )


BOOK = new("testing.v1.Book", name="shelves/1/books/2", author="Le Guin", page_count=250)


@pytest.mark.parametrize("options", OPTIONS)
def test_whole_reply_is_its_json(options: RenderOptions) -> None:
    encoder = compile_reply_encoder(SCHEMA, route("GetBook", "testing.v1.Book"), options)
    content_type, body = encoder.encode(BOOK.SerializeToString())
    assert content_type == "application/json"
    assert orjson.loads(body) == json_format.MessageToDict(
        BOOK,
        preserving_proto_field_name=options.use_proto_names,
        always_print_fields_with_no_presence=options.emit_unpopulated,
        descriptor_pool=POOL,
    )


def test_response_body_renders_one_scalar_field() -> None:
    encoder = compile_reply_encoder(
        SCHEMA, route("GetBookAuthor", "testing.v1.Book", "author"), RenderOptions()
    )
    assert encoder.encode(BOOK.SerializeToString()) == ("application/json", b'"Le Guin"')
    assert encoder.encode(b"") == ("application/json", b'""')  # unset: the field's default


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("nested", {"label": "a", "child": {"count": 2}}),
        ("repeated_int64", ["1", "-2"]),
        ("nested_map", {"3": {"label": "m"}}),
        ("timestamp", "1970-01-01T00:00:01.500Z"),
        ("wrapped_int64", "9"),
        ("duration", "0s"),  # unset message field: the value of an empty message
        ("repeated_nested", []),
    ],
)
def test_response_body_renders_the_value_of_any_field_kind(field: str, expected: Any) -> None:
    kitchen = new(
        "testing.v1.EchoKitchenRequest",
        nested=new("testing.v1.Nested", label="a", child=new("testing.v1.Nested", count=2)),
        repeated_int64=[1, -2],
        nested_map={3: new("testing.v1.Nested", label="m")},
    )
    kitchen.timestamp.FromJsonString("1970-01-01T00:00:01.5Z")
    kitchen.wrapped_int64.value = 9
    rule = route("EchoKitchen", "testing.v1.EchoKitchenRequest", field)
    content_type, body = compile_reply_encoder(SCHEMA, rule, RenderOptions()).encode(
        kitchen.SerializeToString()
    )
    assert (content_type, orjson.loads(body)) == ("application/json", expected)


def test_http_body_reply_passes_through_raw() -> None:
    encoder = compile_reply_encoder(
        SCHEMA, route("DownloadCover", "google.api.HttpBody"), RenderOptions()
    )
    png = b"\x89PNG\r\n\x1a\n\x00"
    reply = httpbody_pb2.HttpBody(content_type="image/png", data=png)
    assert encoder.encode(reply.SerializeToString()) == ("image/png", png)
    untyped = httpbody_pb2.HttpBody(data=b"abc").SerializeToString()
    assert encoder.encode(untyped) == ("application/octet-stream", b"abc")


def test_response_body_naming_an_http_body_field_passes_it_through_raw() -> None:
    rule = route("UploadCover", "testing.v1.UploadCoverRequest", "cover")
    reply = new("testing.v1.UploadCoverRequest", name="x")
    reply.cover.content_type = "text/csv"
    reply.cover.data = b"a,b\n"
    encoder = compile_reply_encoder(SCHEMA, rule, RenderOptions())
    assert encoder.encode(reply.SerializeToString()) == ("text/csv", b"a,b\n")


def test_a_reply_that_does_not_parse_is_a_bad_gateway() -> None:
    encoder = compile_reply_encoder(SCHEMA, route("GetBook", "testing.v1.Book"), RenderOptions())
    with pytest.raises(GatewayError) as caught:
        encoder.encode(b"\x0a\xff")  # field 1, length 255, then nothing
    assert (caught.value.code, caught.value.http_status) == (Code.INTERNAL, 502)
    assert caught.value.message == "backend reply is not a valid testing.v1.Book"


def test_a_reply_with_a_wire_type_mismatch_is_a_bad_gateway() -> None:
    encoder = compile_reply_encoder(SCHEMA, route("GetBook", "testing.v1.Book"), RenderOptions())
    with pytest.raises(GatewayError) as caught:
        encoder.encode(b"\x08\x96\x01")  # field 1 (name, a string) as a varint
    assert caught.value.http_status == 502
    assert caught.value.message == ("backend reply is not a valid testing.v1.Book: field 'name' "
                                    "(1) has wire type 0, declared 2")


def test_a_reply_json_cannot_print_is_a_bad_gateway() -> None:
    encoder = compile_reply_encoder(SCHEMA, route("GetBook", "testing.v1.Book"), RenderOptions())
    reply = new("testing.v1.Book")
    reply.publish_time.seconds = -62135596801
    with pytest.raises(GatewayError, match="cannot be rendered as JSON") as caught:
        encoder.encode(reply.SerializeToString())
    assert (caught.value.code, caught.value.http_status) == (Code.INTERNAL, 502)


def test_response_body_must_name_a_field_of_the_reply() -> None:
    with pytest.raises(ConfigError, match="'nope' is not a field of testing.v1.Book"):
        compile_reply_encoder(SCHEMA, route("GetBook", "testing.v1.Book", "nope"), RenderOptions())


# -- google.rpc.Status details ----------------------------------------------------------------


def packed(message: Message) -> bytes:
    wrapper = any_pb2.Any()
    wrapper.Pack(message)
    return wrapper.SerializeToString()


def test_status_details_render_google_rpc_and_schema_types() -> None:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="page_size", description="too big")
        ]
    )
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromJsonString("1.5s")
    details = [packed(bad_request), packed(info), packed(BOOK)]
    assert render_status_details(SCHEMA, details) == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "page_size", "description": "too big"}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"},
        {
            "@type": "type.googleapis.com/testing.v1.Book",
            "name": "shelves/1/books/2",
            "author": "Le Guin",
            "pageCount": "250",
        },
    ]
    proto_names = render_status_details(SCHEMA, details[:1], RenderOptions(use_proto_names=True))
    assert proto_names[0]["field_violations"] == [{"field": "page_size", "description": "too big"}]


def test_status_details_that_do_not_resolve_render_as_base64() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/acme.v1.Secret", value=b"\x01\x02")
    broken = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\x0a\xff")
    rendered = render_status_details(
        SCHEMA, [unknown.SerializeToString(), broken.SerializeToString(), b"\xff"]
    )
    assert rendered == [
        {"@type": "type.googleapis.com/acme.v1.Secret", "value": "AQI="},
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "value": "Cv8="},
        {"@type": "", "value": base64.b64encode(b"\xff").decode()},
    ]


def test_fields_named_like_python_keywords_render() -> None:
    proto = descriptor_pb2.FileDescriptorProto(name="kw/v1/kw.proto", package="kw.v1",
                                               syntax="proto3")
    message = proto.message_type.add(name="Keywords")
    for number, name in enumerate(["from", "class", "lambda", "m", "js"], start=1):
        message.field.add(name=name, number=number, type=FieldDescriptor.TYPE_INT64,
                          label=FieldDescriptor.LABEL_OPTIONAL)
    schema = load_schema(descriptor_pb2.FileDescriptorSet(file=[proto]).SerializeToString())
    descriptor = schema.pool.FindMessageTypeByName("kw.v1.Keywords")
    keywords = schema.message_class(descriptor)(**{"from": 1, "class": -2, "lambda": 3, "m": 4})
    for options in OPTIONS:
        assert compile_renderer(schema, descriptor, options).to_dict(keywords) == (
            json_format.MessageToDict(
                keywords,
                preserving_proto_field_name=options.use_proto_names,
                always_print_fields_with_no_presence=options.emit_unpopulated,
                descriptor_pool=schema.pool,
            )
        )
