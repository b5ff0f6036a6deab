"""Hot reload through the admin API on a real stack: a bad config is rejected and counted while
the old one serves; a good one takes effect on both edges while a stream begun before it runs
on to the end on the old runtime, which is closed once that stream is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.config import load
from gateway.errors import ConfigError
from gateway.reload import check_reloadable
from orders.v1 import orders_pb2
from services.server import start_backend
from testing.v1 import transcoding_pb2
from tests.ops.conftest import (
    BEARER,
    OpsStack,
    file_stack,
    gateway_config,
    metric,
    started_backends,
    write_config,
)

CHAT = "/testing.v1.Echo/ChatBooks"
GET_ORDER = "/orders.v1.Orders/GetOrder"
ORDER = {"items": [{"sku": "MG-5001", "title": "Coffee Mug", "quantity": 1,
                    "unitPrice": {"currencyCode": "EUR", "amountMinor": "1450"}}]}


async def admin_reload(stack: OpsStack) -> tuple[int, dict[str, Any]]:
    async with stack.http.post(stack.ops_url("/admin/reload"), headers=BEARER) as response:
        return response.status, await response.json()


async def get_order_over_grpc(stack: OpsStack) -> grpc.StatusCode:
    call: Any = stack.channel.unary_unary(GET_ORDER)
    try:
        await call(orders_pb2.GetOrderRequest(id="o-5001").SerializeToString())
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def reloads(stack: OpsStack, result: str) -> float:
    return await metric(stack.http, stack.ops_url("/metrics"),
                        f'gateway_config_reloads_total{{result="{result}"}}')


async def test_bad_config_is_rejected_then_a_good_one_swaps_in_under_a_running_stream(
        tmp_path: Path) -> None:
    async with started_backends("users", "echo", "orders") as backends:
        first = gateway_config({n: backends[n] for n in ("users", "echo")}, shutdown_grace_s=30)
        async with file_stack(tmp_path / "gateway.yaml", backends, first) as stack:
            replaced = stack.gateway.runtime
            assert await get_order_over_grpc(stack) is grpc.StatusCode.UNIMPLEMENTED
            # A bidi stream begun on the first config: it must run on across the reloads.
            chat: Any = stack.channel.stream_stream(CHAT)()
            await chat.write(_chat("before"))
            assert _said(await asyncio.wait_for(chat.read(), 5)) == "before"

            # Bad: a backend whose services match nothing in the descriptors.
            bad = gateway_config(backends)
            bad["backends"]["orders"]["services"] = ["nope.v1.*"]
            write_config(stack.path, bad)
            status, body = await admin_reload(stack)
            assert status == 400
            assert "backends.orders.services" in body["message"]
            # Bad: a listener change needs a restart.
            write_config(stack.path, {**gateway_config(backends), "listen": {
                **first["listen"], "rest": {"host": "127.0.0.1", "port": 1}}})
            status, body = await admin_reload(stack)
            assert status == 400
            assert "listen.rest: changes need a restart" in body["message"]
            assert await reloads(stack, "failure") == 2
            assert stack.gateway.generation == 1
            async with stack.http.post(stack.url("/v1/users/u-1001/orders"),
                                       json=ORDER) as response:
                assert response.status == 404  # the old config still serves
            async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
                assert response.status == 200

            # Good: the orders backend, whose create answers 201.
            write_config(stack.path, gateway_config(
                backends, shutdown_grace_s=30,
                transcoding={"success_status": {"/orders.v1.Orders/CreateOrder": 201}}))
            status, body = await admin_reload(stack)
            assert (status, body) == (200, {"status": "reloaded", "generation": 2})
            assert await reloads(stack, "success") == 1
            assert stack.gateway.runtime is not replaced
            async with stack.http.post(stack.url("/v1/users/u-1001/orders"),
                                       json=ORDER) as response:
                assert response.status == 201
            assert await get_order_over_grpc(stack) is grpc.StatusCode.OK

            # The stream still runs on the replaced runtime, its backend channel open.
            assert stack.gateway.draining == 1
            await chat.write(_chat("after"))
            assert _said(await asyncio.wait_for(chat.read(), 5)) == "after"
            await chat.done_writing()
            assert await asyncio.wait_for(chat.code(), 5) is grpc.StatusCode.OK
            del chat
            # Released as the stream ended, not timed out: shutdown_grace_s is 30 s.
            await asyncio.wait_for(stack.gateway.drained(), 10)
            assert stack.gateway.draining == 0


def _chat(text: str) -> bytes:
    return transcoding_pb2.ChatBooksRequest(
        book=transcoding_pb2.Book(title=text)).SerializeToString()


def _said(reply: object) -> str:
    assert isinstance(reply, bytes)
    return transcoding_pb2.ChatBooksRequest.FromString(reply).book.title


async def test_reload_of_the_same_file_keeps_serving_and_counts(tmp_path: Path) -> None:
    async with started_backends("users") as backends, file_stack(
            tmp_path / "gateway.yaml", backends, gateway_config(backends)) as stack:
        for generation in (2, 3):
            status, body = await admin_reload(stack)
            assert (status, body["generation"]) == (200, generation)
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        await asyncio.wait_for(stack.gateway.drained(), 10)  # nothing held the old ones
        assert await reloads(stack, "success") == 2


async def test_a_reload_changes_cors_the_body_limit_and_the_openapi_document(
        tmp_path: Path) -> None:
    origin = {"Origin": "https://app.example"}
    async with started_backends("users", "orders") as backends, file_stack(
            tmp_path / "gateway.yaml", backends,
            gateway_config({"users": backends["users"]})) as stack:
        async with stack.http.get(stack.url("/openapi.json")) as response:
            assert "/v1/orders/{id}" not in (await response.json())["paths"]
        async with stack.http.get(stack.url("/v1/users/u-1001"), headers=origin) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
        changed = gateway_config(backends, cors={"allow_origins": [origin["Origin"]]},
                                 transcoding={"max_body_bytes": 16})
        write_config(stack.path, changed)
        assert (await admin_reload(stack))[0] == 200
        async with stack.http.get(stack.url("/openapi.json")) as response:
            assert "/v1/orders/{id}" in (await response.json())["paths"]
        async with stack.http.get(stack.url("/v1/users/u-1001"), headers=origin) as response:
            assert response.headers["Access-Control-Allow-Origin"] == origin["Origin"]
        async with stack.http.post(stack.url("/v1/users/u-1001/orders"), json=ORDER) as response:
            assert response.status == 413


async def test_unreadable_config_is_rejected_naming_the_file(tmp_path: Path) -> None:
    async with started_backends("users") as backends, file_stack(
            tmp_path / "gateway.yaml", backends, gateway_config(backends)) as stack:
        stack.path.write_text("backends: [", encoding="utf-8")
        status, body = await admin_reload(stack)
        assert status == 400
        assert "is not valid YAML" in body["message"]
        async with stack.http.get(stack.ops_url("/admin/status"), headers=BEARER) as response:
            last = (await response.json())["last_reload"]
        assert last["ok"] is False and "is not valid YAML" in last["error"]
        assert last["generation"] == 1


async def test_a_ready_gateway_keeps_its_config_when_the_new_one_is_not_ready(
        tmp_path: Path) -> None:
    async with started_backends("users") as backends, file_stack(
            tmp_path / "gateway.yaml", backends, gateway_config(backends)) as stack:
        gone = await start_backend("users")
        await gone.stop()  # nothing listens at its address any more
        moved = gateway_config(backends)
        moved["backends"]["users"]["addresses"] = [gone.address]
        write_config(stack.path, moved)
        status, body = await admin_reload(stack)
        assert status == 400
        assert body["message"] == ("the new config is not ready: backends.users has no healthy "
                                   f"instance ({gone.address})")
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
        assert stack.gateway.ready()


BASE = {"descriptors": {"descriptor_set": "x.binpb"},
        "backends": {"u": {"services": ["a.B"], "addresses": ["127.0.0.1:1"]}}}


@pytest.mark.parametrize(("change", "key"), [
    ({"listen": {"grpc": None}}, "listen.grpc"),
    ({"listen": {"ops": {"port": 9464}}}, "listen.ops"),
    ({"observability": {"metrics": {"enabled": False}}}, "observability.metrics"),
])
def test_restart_only_keys_are_named(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=f"^{key}: changes need a restart"):
        check_reloadable(load(BASE), load({**BASE, **change}))


def test_everything_else_may_change() -> None:
    changed = {**BASE, "transcoding": {"use_proto_names": True, "max_body_bytes": 10,
                                       "openapi": False},
               "shutdown_grace_s": 3, "cors": {"allow_origins": ["https://a.example"]},
               "rate_limits": {"rules": [{"rate_per_s": 1, "burst": 1}]}}
    check_reloadable(load(BASE), load(changed))
