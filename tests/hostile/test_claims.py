"""Class 5, claims by type: roles and scopes only in the shape the issuer declares, within caps.

Each hostile token is really signed by the issuer's key (so only the claim check can refuse it)
and sent through both edges: 401 / UNAUTHENTICATED naming the claim, the backend never called,
and the token in no reply and no log line.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest

from tests.hostile.auth_gateway import auth_gateway

HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("roles as a string", {"roles": "admin"}, "token claim roles must be a JSON array of strings"),
    ("roles as a spaced string", {"roles": "reader admin"},
     "token claim roles must be a JSON array of strings"),
    ("roles as an object", {"roles": {"admin": True}},
     "token claim roles must be a JSON array of strings"),
    ("a role that is a number", {"roles": ["reader", 7]},
     "token claim roles must be a JSON array of strings"),
    ("a role that is a list", {"roles": [["admin"]]},
     "token claim roles must be a JSON array of strings"),
    ("65 roles", {"roles": [f"r{i}" for i in range(65)]},
     "token claim roles has more than 64 values"),
    ("a role of 129 characters", {"roles": ["r" * 129]},
     "token claim roles has a value longer than 128 characters"),
    ("an empty role", {"roles": [""]}, "token claim roles has characters not allowed in metadata"),
    ("scopes as a list where a string is declared", {"scope": ["orders:read"]},
     "token claim scope must be a space-separated string"),
    ("65 scopes", {"scope": " ".join(f"s{i}" for i in range(65))},
     "token claim scope has more than 64 values"),
    ("a scope of 129 characters", {"scope": "s" * 129},
     "token claim scope has a value longer than 128 characters"),
]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_claims_in_the_wrong_shape_are_refused_on_rest(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway() as gw:
        assert (await gw.rest("/v1/kitchen/s", gw.token())).status == 200  # the control
        assert gw.backend_calls == 1
        for case, claims, message in HOSTILE:
            token = gw.token(**claims)
            reply = await gw.rest("/v1/kitchen/s", token)
            assert (reply.status, reply.body.get("code")) == (401, 16), case
            assert reply.body["message"] == message, case
            assert reply.headers["WWW-Authenticate"] == 'Bearer realm="gateway", ' \
                                                        'error="invalid_token"', case
            assert gw.leaks(token, logs) == [], case
        assert gw.backend_calls == 1  # none of the hostile tokens got through


async def test_claims_in_the_wrong_shape_are_refused_on_grpc(
        logs: pytest.LogCaptureFixture) -> None:
    async with auth_gateway() as gw:
        assert (await gw.rpc(gw.token())).code == grpc.StatusCode.OK
        for case, claims, message in HOSTILE:
            token = gw.token(**claims)
            reply = await gw.rpc(token)
            assert (reply.code, reply.details) == (grpc.StatusCode.UNAUTHENTICATED, message), case
            assert gw.leaks(token, logs) == [], case
        assert gw.backend_calls == 1


async def test_the_issuer_config_declares_the_shape_and_the_caps(
        logs: pytest.LogCaptureFixture) -> None:
    issuer = {"roles_claim": "groups", "roles_claim_format": "space_separated",
              "scopes_claim": "scp", "scopes_claim_format": "list",
              "max_claim_values": 2, "max_claim_value_chars": 8}
    async with auth_gateway(issuer=issuer) as gw:
        ok = gw.token(roles=None, scope=None, groups="reader ops", scp=["a:read", "b:write"])
        assert (await gw.rest("/v1/kitchen/s", ok)).status == 200
        assert (await gw.rpc(ok)).code == grpc.StatusCode.OK
        refused: dict[str, dict[str, Any]] = {
            "token claim groups must be a space-separated string": {"groups": ["reader"]},
            "token claim scp must be a JSON array of strings": {"scp": "a:read"},
            "token claim groups has more than 2 values": {"groups": "a b c"},
            "token claim scp has a value longer than 8 characters": {"scp": ["orders:read"]},
        }
        for message, claims in refused.items():
            token = gw.token(roles=None, scope=None, **claims)
            rest, rpc = await gw.rest("/v1/kitchen/s", token), await gw.rpc(token)
            assert (rest.status, rest.body["message"]) == (401, message)
            assert (rpc.code, rpc.details) == (grpc.StatusCode.UNAUTHENTICATED, message)
            assert gw.leaks(token, logs) == []
        assert gw.backend_calls == 2  # the two good calls only
