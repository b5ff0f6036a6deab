"""Strict reading of raw HTTP request input: query strings, JSON bodies and their Content-Type.

Pure: imports the stdlib and gateway.errors only.
"""

from __future__ import annotations

import json
import re
from typing import Final
from urllib.parse import unquote_to_bytes

from gateway.errors import InvalidArgument, UnsupportedMediaType

_BAD_PERCENT_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded (name, value) pairs, strictly.

    application/x-www-form-urlencoded, as aiohttp and grpc-gateway read queries: pairs are
    separated by "&", "+" is a space, "%XX" is a byte; the bytes must be UTF-8. Bad escapes
    or bytes raise InvalidArgument instead of being replaced.

    >>> parse_query("tag=a&tag=b%20c&q=x+y&flag")
    [('tag', 'a'), ('tag', 'b c'), ('q', 'x y'), ('flag', '')]
    """
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((_unescape(name), _unescape(value)))
    return pairs


def parse_json_body(body: bytes, content_type: str) -> object:
    """The JSON value of a request body; None when the body is empty (or only whitespace).

    RFC 8259 read strictly, as the proto3 JSON parsers do: UTF-8 only, no NaN/Infinity
    literals, no duplicate keys (protojson and json_format.Parse reject them too). An empty
    body reads as no fields, as in grpc-gateway and Envoy. Content-Type must be absent or
    application/json with no charset but UTF-8 (else UnsupportedMediaType, 415); it is not
    looked at when the body is empty. Deep nesting that exhausts the parser is a 400 here;
    the configured depth limit is checked by the caller, iteratively.

    >>> parse_json_body(b'{"a": [1, "x"]}', "application/json; charset=utf-8")
    {'a': [1, 'x']}
    """
    if not body.strip(b" \t\r\n"):
        return None
    _check_media_type(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InvalidArgument("JSON body nests too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidArgument(f"malformed JSON body: {exc}") from None


def quote(text: str, limit: int = 64) -> str:
    """A client value for an error message: JSON-quoted, cut to `limit` characters."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return json.dumps(shown, ensure_ascii=False)


def _unescape(text: str) -> str:
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    bad = _BAD_PERCENT_RE.search(text)
    if bad is not None:
        raise InvalidArgument(f"invalid percent-encoding in query: {quote(text[bad.start() :])}")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(
            f"query is not valid UTF-8 after percent-decoding: {quote(text)}"
        ) from None


def _check_media_type(content_type: str) -> None:
    if not content_type:
        return
    media, _, parameters = content_type.partition(";")
    if media.strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"unsupported content type {quote(content_type)}: this route reads application/json"
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType(
                f"unsupported charset in content type {quote(content_type)}: JSON must be UTF-8"
            )


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidArgument(f"duplicate key {quote(key)} in JSON body")
            seen.add(key)
    return result


def _no_constant(name: str) -> object:
    raise InvalidArgument(f'malformed JSON body: {name} is not JSON (proto3 JSON writes "{name}")')
