"""Strict reply parsing: wire-type mismatches anywhere are errors; the rest of protobuf's leniency
(unknown field numbers, packed or unpacked repeated scalars) is kept (issue 11, class 4)."""

from __future__ import annotations

import re

import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.transcode.schema import load_schema
from gateway.transcode.strictparse import WireTypeMismatch, compile_strict_parser, strict_problem
from tests.conftest import DESCRIPTOR_SET

SCHEMA = load_schema(DESCRIPTOR_SET.read_bytes())
KITCHEN = SCHEMA.message_class(SCHEMA.pool.FindMessageTypeByName("testing.v1.EchoKitchenRequest"))
NESTED_NUMBER = 21  # repeated Nested repeated_nested = 21; Nested: label=1, count=2, child=3
MAP_NUMBER = 23  # map<int32, Nested> nested_map = 23


def tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length(number: int, body: bytes) -> bytes:
    return tag(number, 2) + _varint(len(body)) + body


parse = compile_strict_parser(KITCHEN)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        pytest.param(length(NESTED_NUMBER, tag(1, 0) + b"\x07"), "'repeated_nested[0].label' (1)",
                     id="varint-for-a-nested-string"),
        pytest.param(length(NESTED_NUMBER, length(3, tag(2, 2) + b"\x01x")),
                     "'repeated_nested[0].child.count' (2)", id="two-levels-down"),
        pytest.param(length(MAP_NUMBER, tag(1, 0) + b"\x05" + length(2, tag(1, 5) + b"\0" * 4)),
                     "'nested_map[0].label' (1)", id="in-a-map-value"),
        pytest.param(tag(NESTED_NUMBER, 0) + b"\x01", "'repeated_nested' (21)",
                     id="varint-for-a-message"),
    ],
)
def test_a_mismatch_anywhere_is_refused_naming_the_field(payload: bytes, problem: str) -> None:
    with pytest.raises(WireTypeMismatch, match=re.escape(problem)):
        parse(payload)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(tag(999, 0) + b"\x01" + length(NESTED_NUMBER, tag(888, 2) + b"\x00"),
                     id="unknown-numbers-are-forward-compatible"),
        pytest.param(tag(19, 0) + b"\x05" + length(19, b"\x06\x07"), id="packed-and-unpacked"),
        pytest.param(b"", id="empty"),
    ],
)
def test_what_protobuf_may_accept_is_accepted(payload: bytes) -> None:
    lenient = KITCHEN.FromString(payload)
    assert strict_problem(lenient) is None
    lenient.DiscardUnknownFields()  # JSON rendering ignores them; the strict parser drops them
    assert parse(payload) == lenient


def test_corrupt_bytes_are_still_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        parse(b"\x0a\xff")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_strict_parse_agrees_with_the_walk(payload: bytes) -> None:
    """The fast test (discarding unknowns shrinks the message) never hides a mismatch."""
    try:
        lenient: Message = KITCHEN.FromString(payload)
    except DecodeError:
        with pytest.raises(DecodeError):
            parse(payload)
        return
    problem = strict_problem(lenient)
    if problem is None:
        parse(payload)
    else:
        with pytest.raises(WireTypeMismatch, match="wire type"):
            parse(payload)
