"""The demo stack's own config: public reads, signed-in writes, admin-only deletes, the overview."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from openapi_spec_validator import validate

from gateway import app
from gateway.demo import DEMO_ADMIN_TOKEN, DEMO_API_KEY, demo_config, mint_demo_token
from services.server import start_all


@pytest.fixture
async def demo() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    backends = await start_all()
    running = await app.start(demo_config({n: b.address for n, b in backends.items()},
                                          "127.0.0.1", 0, 0))
    try:
        async with aiohttp.ClientSession() as http:
            yield http, f"http://127.0.0.1:{running.rest_port}"
    finally:
        await running.stop(0)
        for backend in backends.values():
            await backend.stop()


def bearer(subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_demo_token(subject, list(roles))}"}


async def test_demo_access_rules(demo: tuple[aiohttp.ClientSession, str]) -> None:
    http, base = demo
    async with http.get(f"{base}/v1/users/u-1001") as r:
        assert r.status == 200  # reads are public
    new_user = {"email": "demo@example.com", "displayName": "Demo"}
    async with http.post(f"{base}/v1/users", json=new_user) as r:
        assert r.status == 401
    async with http.post(f"{base}/v1/users", json=new_user, headers=bearer("u-1002")) as r:
        assert r.status == 201
        created = (await r.json())["id"]
    async with http.delete(f"{base}/v1/users/{created}?force=true",
                           headers=bearer("u-1002")) as r:
        assert r.status == 403
    async with http.delete(f"{base}/v1/users/{created}?force=true",
                           headers=bearer("u-1001", "admin")) as r:
        assert r.status == 204


async def test_demo_overview_with_the_api_key(demo: tuple[aiohttp.ClientSession, str]) -> None:
    http, base = demo
    async with http.get(f"{base}/v1/dashboard/overview",
                        headers={"X-Api-Key": DEMO_API_KEY}) as r:
        assert r.status == 200
        overview = await r.json()
    assert overview["profile"]["id"] == "u-1001"
    assert int(overview["unread"]["unreadCount"]) >= 2


async def test_demo_document_offers_authorize_and_the_token_works(
        demo: tuple[aiohttp.ClientSession, str]) -> None:
    """What Swagger UI's "Authorize" does: read securitySchemes, send the scheme's header."""
    http, base = demo
    async with http.get(f"{base}/openapi.json") as r:
        document = await r.json()
    validate(document)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "x-api-key"}
    create = document["paths"]["/v1/users"]["post"]
    assert {"bearerAuth": []} in create["security"]
    assert "security" not in document["paths"]["/v1/users/{id}"]["get"]  # public read
    token = mint_demo_token("u-1001", ["admin"])
    assert schemes["bearerAuth"]["type"] == "http"  # so the header is "Authorization: Bearer"
    async with http.post(f"{base}/v1/users", json={"email": "swagger@example.com"},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201
async def test_the_readme_explains_a_request_against_the_demo() -> None:
    """README "Explain a request": an admin's X-Gateway-Explain: 1, then the admin API."""
    backends = await start_all()
    running = await app.start(demo_config({n: b.address for n, b in backends.items()},
                                          "127.0.0.1", 0, 0, ops_port=0))
    base = f"http://127.0.0.1:{running.rest_port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/v1/users/u-1001", headers={
                    **bearer("u-1001", "admin"), "X-Gateway-Explain": "1"}) as r:
                assert r.status == 200
                compact = r.headers["X-Gateway-Explain"]
                request_id = r.headers["X-Request-ID"]
            assert compact.startswith(f"id={request_id}; code=OK; decided_by=attempt")
            async with http.get(f"{base}/v1/users/u-1001", headers={
                    **bearer("u-1002"), "X-Gateway-Explain": "1"}) as r:
                assert r.status == 200 and "X-Gateway-Explain" not in r.headers  # not admin
            async with http.get(
                    f"http://127.0.0.1:{running.ops_port}/admin/requests/{request_id}",
                    headers={"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}) as r:
                assert r.status == 200
                whole = await r.json()
        assert whole["outcome"]["decided_by"] == "attempt"
        assert {s["step"] for s in whole["steps"]} >= {"route", "authenticate", "rate_limit",
                                                       "attempt"}
    finally:
        await running.stop(0)
        for backend in backends.values():
            await backend.stop()
