"""CORS (edges/cors.py) as a browser meets it: preflights answered or refused with the JSON
error body, allowed origins echoed on replies and errors, a wildcard without credentials."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import Cors
from gateway.edges.cors import CorsPolicy, is_preflight
from gateway.errors import HttpError
from tests.e2e.stack import running_stack

ORIGIN = "https://app.example"
METHODS = ("GET", "POST", "PATCH")


def preflight(method: str = "PATCH", headers: str = "", origin: str = ORIGIN) -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    return {**asked, "Access-Control-Request-Headers": headers} if headers else asked


def test_a_preflight_is_an_options_request_with_origin_and_a_requested_method() -> None:
    assert is_preflight("OPTIONS", preflight())
    assert not is_preflight("OPTIONS", {"Origin": ORIGIN})
    assert not is_preflight("GET", preflight())


def test_an_allowed_preflight_names_the_method_headers_and_max_age() -> None:
    policy = CorsPolicy(Cors(allow_origins=(ORIGIN,), max_age_s=60), METHODS)
    answer = dict(policy.preflight(preflight("PATCH", "Content-Type, X-Request-ID")))
    assert answer == {"Access-Control-Allow-Origin": ORIGIN, "Vary": "Origin",
                      "Access-Control-Allow-Methods": "PATCH", "Access-Control-Max-Age": "60",
                      "Access-Control-Allow-Headers": "Content-Type, X-Request-ID"}


@pytest.mark.parametrize(("asked", "refusal"), [
    (preflight(origin="https://evil.example"), "origin 'https://evil.example' is not allowed"),
    (preflight("TRACE"), "method 'TRACE' is not allowed"),
    (preflight("GET", "content-type, x-secret"), "headers not allowed: x-secret"),
])
def test_a_refused_preflight_says_what_is_not_allowed(asked: dict[str, str],
                                                      refusal: str) -> None:
    policy = CorsPolicy(Cors(allow_origins=(ORIGIN,)), METHODS)
    with pytest.raises(HttpError, match=refusal) as refused:
        policy.preflight(asked)
    assert refused.value.http_status == 403


def test_a_wildcard_origin_is_answered_with_a_star_unless_credentials_are_allowed() -> None:
    anyone = CorsPolicy(Cors(allow_origins=("*",), expose_headers=("x-request-id",)), METHODS)
    assert anyone.reply_headers("https://x.example") == [
        ("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "x-request-id")]
    with_credentials = CorsPolicy(Cors(allow_origins=("*",), allow_credentials=True,
                                       expose_headers=()), METHODS)
    assert with_credentials.reply_headers("https://x.example") == [
        ("Access-Control-Allow-Origin", "https://x.example"), ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true")]


def test_a_reply_to_an_origin_not_allowed_carries_no_cors_headers() -> None:
    assert CorsPolicy(Cors(allow_origins=(ORIGIN,)), METHODS).reply_headers("https://x") == []


async def test_errors_and_pages_carry_cors_headers_too_and_preflights_never_reach_a_backend(
) -> None:
    async with running_stack(cors={"allow_origins": [ORIGIN]}) as stack:
        headers: Any = {"Origin": ORIGIN}
        for path, status in (("/v1/users/nobody", 404), ("/healthz", 200), ("/nowhere", 404)):
            async with stack.http.get(stack.url(path), headers=headers) as response:
                assert response.status == status
                assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        calls = len(stack.backends["users"].faults.calls_to("/users.v1.Users/GetUser"))
        async with stack.http.options(stack.url("/v1/users/u-1001"),
                                      headers=preflight("GET")) as response:
            assert response.status == 200
        assert len(stack.backends["users"].faults.calls_to("/users.v1.Users/GetUser")) == calls
