"""/openapi.json, /docs, /healthz and /readyz on the REST listener."""

from __future__ import annotations

from tests.e2e.stack import Stack, running_stack


async def test_openapi_document_describes_the_loaded_routes(stack: Stack) -> None:
    async with stack.http.get(stack.url("/openapi.json")) as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"] == "3.1.0"
    get_user = document["paths"]["/v1/users/{id}"]["get"]
    assert get_user["operationId"] == "Users_GetUser"
    assert "GetUser returns one user" in get_user["summary"] + get_user.get("description", "")
    assert "users.v1.User" in document["components"]["schemas"]
    delete = document["paths"]["/v1/users/{id}"]["delete"]
    assert "204" in delete["responses"]  # the configured success status


async def test_docs_page_loads_its_assets_locally(stack: Stack) -> None:
    async with stack.http.get(stack.url("/docs")) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "/openapi.json" in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/static/{asset}" in page
        async with stack.http.get(stack.url(f"/docs/static/{asset}")) as response:
            assert response.status == 200
            assert len(await response.read()) > 10_000


async def test_the_root_points_at_the_docs(stack: Stack) -> None:
    async with stack.http.get(stack.url("/"), allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/docs"
        assert (await response.json())["docs"] == "/docs"
    async with stack.http.get(stack.url("/")) as response:  # as a browser follows it
        assert response.status == 200 and response.content_type == "text/html"


async def test_openapi_can_be_switched_off() -> None:
    async with running_stack(transcoding={"openapi": False}) as stack:
        for path in ("/openapi.json", "/"):  # no docs: nothing for / to point at
            async with stack.http.get(stack.url(path), allow_redirects=False) as response:
                assert response.status == 404
                assert (await response.json())["code"] == 5


async def test_health_and_readiness(stack: Stack) -> None:
    async with stack.http.get(stack.url("/healthz")) as response:
        assert response.status == 200
    async with stack.http.get(stack.url("/readyz")) as response:
        assert response.status == 200
    # every instance of a required backend unhealthy: not ready, still alive
    await stack.backends["users"].set_serving(False)
    await stack.gateway.runtime.upstream.health.check_now()
    async with stack.http.get(stack.url("/readyz")) as response:
        assert response.status == 503
    async with stack.http.get(stack.url("/healthz")) as response:
        assert response.status == 200
