"""Class 6, values without control characters: what percent-decoding makes of a path or query
value never reaches a backend field as NUL, CR LF, another control character or a dot segment.

REST only: the gRPC edge decodes no path or query (its fields arrive as the client encoded
them). Each refusal is a 400 naming the parameter (never echoing the value), the backend is
not called, and the bearer token sent along is in no reply and no log line.
"""

from __future__ import annotations

import logging

import pytest

from tests.hostile.auth_gateway import AuthGateway, auth_gateway

CONTROL = "path variable string_value holds a control character"
DOTS = 'path variable string_value holds a dot segment ("." or "..")'
REFUSED = [
    ("/v1/kitchen/a%00b", CONTROL),  # NUL
    ("/v1/kitchen/a%0d%0aX-Injected:%201", CONTROL),  # CR LF: a header or log line split
    ("/v1/kitchen/a%0Ab", CONTROL),  # LF
    ("/v1/kitchen/a%09b", CONTROL),  # tab: a C0 control too (a JSON body carries it escaped)
    ("/v1/kitchen/%1b%5b2J", CONTROL),  # ESC: terminal escape sequences in a log viewer
    ("/v1/kitchen/a%7f", CONTROL),  # DEL
    ("/v1/kitchen/a%C2%85b", CONTROL),  # U+0085 NEL, a C1 control and a line break
    ("/v1/kitchen/%2E%2E", DOTS),
    ("/v1/kitchen/%2e", DOTS),
    ("/v1/kitchen/..%2Fadmin", DOTS),  # a single-segment value "../admin"
    ("/v1/kitchen/a%2F..%2Fb", DOTS),
    ("/v1/files/a/%2E%2E/etc", 'path variable path holds a dot segment ("." or "..")'),
    ("/v1/books/shelves/1/books/%2E%2E",
     'path variable name holds a dot segment ("." or "..")'),
    ("/v1/kitchen/s?repeated_string=a%0D%0Ab",
     'query parameter "repeated_string" holds a control character'),
    ("/v1/kitchen/s?repeated_string=ok&repeated_string=%00",
     'query parameter "repeated_string" holds a control character'),
    ("/v1/kitchen/s?nested.label=%09", 'query parameter "nested.label" holds a control character'),
    ("/v1/kitchen/s?a%00b=1", 'query parameter "a\\u0000b" holds a control character'),
]
ALLOWED: list[tuple[str, dict[str, object]]] = [
    ("/v1/kitchen/...", {"stringValue": "..."}),  # three dots are a name, not a dot segment
    ("/v1/kitchen/a..b", {"stringValue": "a..b"}),
    ("/v1/kitchen/.hidden", {"stringValue": ".hidden"}),
    ("/v1/kitchen/a%2Fb", {"stringValue": "a/b"}),
    ("/v1/kitchen/caf%C3%A9%20au%20lait", {"stringValue": "café au lait"}),
    ("/v1/kitchen/s?repeated_string=x+y", {"stringValue": "s", "repeatedString": ["x y"]}),
]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def refused(gw: AuthGateway, path: str, message: str,
                  logs: pytest.LogCaptureFixture) -> None:
    token = gw.token()
    before = gw.backend_calls
    reply = await gw.rest(path, token)
    assert (reply.status, reply.body.get("code"), reply.body.get("message")) == (
        400, 3, message), path
    assert gw.backend_calls == before, path
    assert gw.leaks(token, logs) == [], path
    for raw in ("\x00", "\r", "\n", "\x1b", "../"):  # nothing of the value comes back
        assert raw not in reply.text, (path, raw)


async def test_control_characters_and_dot_segments_are_400(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway() as gw:
        for path, message in REFUSED:
            await refused(gw, path, message, logs)
        assert gw.backend_calls == 0
        for path, fields in ALLOWED:  # the controls: these do reach the backend
            reply = await gw.rest(path, gw.token())
            assert reply.status == 200, (path, reply.text)
            assert {k: reply.body.get(k) for k in fields} == fields, path
        assert gw.backend_calls == len(ALLOWED)


async def test_dot_segments_may_be_allowed_control_characters_never(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway(transcoding={"allow_dot_segments": True}) as gw:
        reply = await gw.rest("/v1/kitchen/..%2Fadmin", gw.token())
        assert (reply.status, reply.body["stringValue"]) == (200, "../admin")  # bound literally
        reply = await gw.rest("/v1/files/a/%2E%2E/etc", gw.token())
        assert reply.status == 200 and reply.body["path"] == "a/../etc"
        assert gw.backend_calls == 2
        for path, message in REFUSED:
            if "dot segment" not in message:
                await refused(gw, path, message, logs)
        assert gw.backend_calls == 2
