"""HTTP text -> JSON values: coercion by field type, base64, query strings, JSON bodies, plans."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote as urlquote

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidArgument, UnsupportedMediaType
from gateway.transcode.coerce import (
    compile_coercer,
    compile_message_plans,
    normalize_base64,
    parse_json_body,
    parse_query,
)
from gateway.transcode.schema import Schema


@pytest.fixture(scope="module")
def kitchen(schema: Schema) -> Descriptor:
    return schema.pool.FindMessageTypeByName("testing.v1.EchoKitchenRequest")


def _field(kitchen: Descriptor, name: str) -> FieldDescriptor:
    return kitchen.fields_by_name[name]


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        pytest.param("int32_value", "-2147483648", -(2**31), id="int32-min"),
        pytest.param("int32_value", "007", 7, id="int32-leading-zeros"),
        pytest.param("uint32_value", "4294967295", 2**32 - 1, id="uint32-max"),
        pytest.param("int64_value", "9223372036854775807", 2**63 - 1, id="int64-max"),
        pytest.param("uint64_value", "18446744073709551615", 2**64 - 1, id="uint64-max"),
        pytest.param("sint64_value", "-1", -1, id="sint64"),
        pytest.param("fixed64_value", "1", 1, id="fixed64"),
        pytest.param("sfixed32_value", "-1", -1, id="sfixed32"),
        pytest.param("double_value", "1e300", 1e300, id="double-exponent"),
        pytest.param("double_value", ".5", 0.5, id="double-leading-dot"),
        pytest.param("double_value", "-0", -0.0, id="double-negative-zero"),
        pytest.param("float_value", "NaN", "NaN", id="float-nan"),
        pytest.param("float_value", "-Infinity", "-Infinity", id="float-minus-infinity"),
        pytest.param("float_value", "0.1", 0.10000000149011612, id="float-rounded-to-float32"),
        pytest.param("float_value", "3.4028235e38", 3.4028234663852886e38, id="float-max"),
        pytest.param("bool_value", "true", True, id="bool-true"),
        pytest.param("bool_value", "0", False, id="bool-zero"),
        pytest.param("string_value", "a b/ü", "a b/ü", id="string"),
        pytest.param("bytes_value", "_-8", "/+8=", id="bytes-url"),
        pytest.param("color", "COLOR_RED", "COLOR_RED", id="enum-name"),
        pytest.param("color", "3", 3, id="enum-number"),
        pytest.param("repeated_color", "0", 0, id="repeated-enum-element"),
        pytest.param("timestamp", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", id="timestamp"),
        pytest.param("duration", "-0.5s", "-0.5s", id="duration"),
        pytest.param("field_mask", "a.b_c,,dE", "a.bC,dE", id="field-mask-mixed"),
        pytest.param("field_mask", "", "", id="field-mask-empty"),
        pytest.param("wrapped_uint64", "18446744073709551615", 2**64 - 1, id="wrapper-uint64"),
        pytest.param("wrapped_bytes", "AA", "AA==", id="wrapper-bytes"),
        pytest.param("wrapped_bool", "false", False, id="wrapper-bool"),
        pytest.param(
            "repeated_timestamp", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", id="rep-ts"
        ),
    ],
)
def test_coercion(kitchen: Descriptor, field: str, text: str, expected: Any) -> None:
    coerce = compile_coercer(_field(kitchen, field))
    assert coerce is not None
    value = coerce(text, field)
    assert (type(value), repr(value)) == (type(expected), repr(expected))  # repr: -0.0 != 0.0


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        pytest.param("int32_value", "2147483648", "value 2147483648 out of range for int32 field"),
        pytest.param("sint32_value", "-2147483649", "out of range for sint32 field sint32_value"),
        pytest.param("fixed32_value", "-0", None, id="fixed32-minus-zero-is-zero"),
        pytest.param("fixed64_value", "18446744073709551616", "out of range for fixed64 field"),
        pytest.param("int64_value", "1e3", 'invalid int64 value "1e3"', id="int-exponent"),
        pytest.param("int64_value", "1_000", 'invalid int64 value "1_000"', id="underscore"),
        pytest.param("int32_value", "", 'invalid int32 value ""', id="int-empty"),
        pytest.param("double_value", "inf", 'invalid double value "inf"', id="go-inf"),
        pytest.param("double_value", "0x10", 'invalid double value "0x10"', id="hex-float"),
        pytest.param("float_value", "3.5e38", "value 3.5e38 out of range for float field"),
        pytest.param("bool_value", "", 'invalid bool value ""', id="bool-empty"),
        pytest.param("color", "", 'unknown enum value "" for color', id="enum-empty"),
        pytest.param("color", "-1", 'unknown enum value "-1" for color', id="enum-negative"),
        pytest.param("bytes_value", "A", "invalid base64 in bytes_value", id="bytes-one-char"),
        pytest.param("timestamp", "2020-01-01T25:00:00Z", "invalid RFC 3339 timestamp"),
        pytest.param("duration", "1", "invalid duration in duration", id="duration-no-s"),
        pytest.param("field_mask", "Ab_c", "invalid field mask in field_mask", id="mask-case"),
        pytest.param("wrapped_int32", "x", 'invalid int32 value "x"', id="wrapper"),
    ],
)
def test_coercion_errors(kitchen: Descriptor, field: str, text: str, message: str | None) -> None:
    coerce = compile_coercer(_field(kitchen, field))
    assert coerce is not None
    if message is None:
        assert coerce(text, field) == 0
        return
    with pytest.raises(InvalidArgument) as caught:
        coerce(text, field)
    assert message in caught.value.message
    assert field in caught.value.message


def test_error_messages_cut_long_values(kitchen: Descriptor) -> None:
    coerce = compile_coercer(_field(kitchen, "bool_value"))
    assert coerce is not None
    with pytest.raises(InvalidArgument) as caught:
        coerce("x" * 10_000, "bool_value")
    assert len(caught.value.message) < 120


@pytest.mark.parametrize(
    "field",
    [
        "nested",
        "repeated_nested",
        "string_map",
        "nested_map",
        "bool_map",
        "struct_value",
        "value",
        "list_value",
        "any",
        "choice_nested",
    ],
)
def test_no_text_form(kitchen: Descriptor, field: str) -> None:
    assert compile_coercer(_field(kitchen, field)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("QUJD", "QUJD", id="std-no-padding-needed"),
        pytest.param("QUI=", "QUI=", id="std-padded"),
        pytest.param("QUI", "QUI=", id="std-unpadded"),
        pytest.param("QQ", "QQ==", id="two-chars"),
        pytest.param("-_-_", "+/+/", id="url"),
        pytest.param("+_8", "+/8=", id="mixed-alphabets"),
    ],
)
def test_normalize_base64(text: str, expected: str) -> None:
    assert normalize_base64(text, "f") == expected


@pytest.mark.parametrize(
    "text", ["A", "QUJDR", "QQ=", "QQ===", "Q=Q=", "QU JD", "QUJD\n", "QUJD=", "é", "QQ==QQ=="]
)
def test_normalize_base64_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid base64 in f"):
        normalize_base64(text, "f")


@given(st.binary(max_size=40), st.booleans(), st.booleans())
def test_normalize_base64_accepts_every_spelling(data: bytes, url: bool, padded: bool) -> None:
    text = (base64.urlsafe_b64encode if url else base64.b64encode)(data).decode()
    if not padded:
        text = text.rstrip("=")
    assert normalize_base64(text, "f") == base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("a=1&&b=2&", [("a", "1"), ("b", "2")], id="empty-parts"),
        pytest.param("a=1=2", [("a", "1=2")], id="equals-in-value"),
        pytest.param("flag", [("flag", "")], id="no-value"),
        pytest.param("a+b=c+d", [("a b", "c d")], id="plus-is-space"),
        pytest.param("a%2Bb=%26%3D", [("a+b", "&=")], id="escapes"),
        pytest.param("k=%C3%BC%E2%82%AC", [("k", "ü€")], id="utf8"),
        pytest.param("k=%c3%bc", [("k", "ü")], id="lowercase-hex"),
        pytest.param("a;b=1", [("a;b", "1")], id="semicolon-is-not-a-separator"),
    ],
)
def test_parse_query(raw: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_query(raw) == pairs


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param("a=%", "invalid percent-encoding", id="lone-percent"),
        pytest.param("a=%4", "invalid percent-encoding", id="short-escape"),
        pytest.param("%zz=1", "invalid percent-encoding", id="bad-hex-in-name"),
        pytest.param("a=%C3", "not valid UTF-8", id="truncated-utf8"),
        pytest.param("a=%ED%A0%80", "not valid UTF-8", id="encoded-surrogate"),
        pytest.param("a=%C0%AF", "not valid UTF-8", id="overlong"),
    ],
)
def test_parse_query_rejects(raw: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        parse_query(raw)


@given(st.lists(st.tuples(st.text(), st.text()), max_size=5))
def test_parse_query_inverts_form_encoding(pairs: list[tuple[str, str]]) -> None:
    def encode(text: str) -> str:
        return urlquote(text, safe="").replace("%20", "+")

    raw = "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)
    assert parse_query(raw) == pairs


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        pytest.param(b"", "", None, id="empty"),
        pytest.param(b" \n", "image/png", None, id="whitespace-any-type"),
        pytest.param(b'{"a": [1, 2.5, "x", null]}', "", {"a": [1, 2.5, "x", None]}, id="object"),
        pytest.param(b"[1]", "application/json", [1], id="array"),
        pytest.param(b'"x"', "application/json;charset=utf-8", "x", id="string"),
        pytest.param(b"{}", 'application/json; charset="UTF8"', {}, id="quoted-charset"),
        pytest.param(b"{}", "application/json; foo=bar", {}, id="other-parameter"),
        pytest.param('{"é": "€"}'.encode(), "", {"é": "€"}, id="utf8"),
        pytest.param(b"1" * 4000, "", int("1" * 4000), id="big-int"),
    ],
)
def test_parse_json_body(body: bytes, content_type: str, expected: object) -> None:
    assert parse_json_body(body, content_type) == expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(b"{", "malformed JSON body: Expecting property name", id="truncated"),
        pytest.param(b'{"a": 1,}', "line 1 column 9", id="trailing-comma"),
        pytest.param(b"\xef\xbb\xbf{}", "malformed JSON body", id="bom"),
        pytest.param(b'{"a": "\xff"}', "body is not valid UTF-8 (byte 7)", id="bad-utf8"),
        pytest.param(b'{"a": Infinity}', "Infinity is not JSON", id="infinity"),
        pytest.param(b'{"a": -Infinity}', "-Infinity is not JSON", id="minus-infinity"),
        pytest.param(b'{"a": 1, "b": {"c": 1, "c": 2}}', 'duplicate key "c"', id="duplicate"),
        pytest.param(b'{"a": "\x01"}', "Invalid control character", id="control-char"),
        pytest.param(b"1" * 5000, "malformed JSON body", id="int-too-long"),
        pytest.param(b"[" * 100_000, "nests too deeply", id="deep"),
    ],
)
def test_parse_json_body_rejects(body: bytes, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_json_body(body, "application/json")
    assert problem in caught.value.message


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/jsonx",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/problem+json",
    ],
)
def test_parse_json_body_unsupported_media_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_json_body(b"{}", content_type)
    assert caught.value.http_status == 415


def test_message_plans(kitchen: Descriptor) -> None:
    plans = compile_message_plans(kitchen)
    # recursion (Nested.child) terminates; WKTs and maps of scalars are not walked
    assert set(plans) == {"testing.v1.EchoKitchenRequest", "testing.v1.Nested"}
    fields = plans["testing.v1.EchoKitchenRequest"].fields
    assert fields["customJSON"] is fields["custom_json"]
    assert fields["int32Value"].name == "int32_value"
    assert fields["nested_map"].is_map and fields["nested_map"].message == "testing.v1.Nested"
    assert fields["repeated_nested"].repeated and not fields["string_map"].repeated
    assert fields["timestamp"].message is None
    assert fields["timestamp"].type_name == "google.protobuf.Timestamp"
    assert fields["choice_text"].oneof == "choice"
    assert fields["bytes_value"].normalize is not None
    assert fields["wrapped_float"].normalize is not None
    assert fields["string_value"].normalize is None
