"""/metrics scraped over HTTP from the ops listener of a real stack, after real calls."""

from __future__ import annotations

import grpc
import pytest

from orders.v1 import orders_pb2, orders_pb2_grpc
from services.faults import Fault
from tests.e2e.stack import running_stack
from tests.observability.conftest import WITH_OPS, Samples, sample, scrape
from tests.redis_server import RedisServer

GET_USER = "/users.v1.Users/GetUser"
GET_ORDER = "/orders.v1.Orders/GetOrder"
COUNT_UNREAD = "/notifications.v1.Notifications/CountUnread"


def requests(samples: Samples, route: str, code: str) -> float:
    """gateway_requests_total for route and code, over both edges."""
    return sum(value for (name, labels), value in samples.items()
               if name == "gateway_requests_total" and {("route", route), ("code", code)} <= labels)


async def test_requests_latency_and_backend_state_after_rest_and_grpc_calls() -> None:
    async with running_stack(listen=WITH_OPS) as stack:
        for path in ("/v1/users/u-1001", "/v1/users/u-1001", "/v1/users/u-nobody"):
            async with stack.http.get(stack.url(path)) as response:
                await response.read()
        await orders_pb2_grpc.OrdersStub(stack.channel).GetOrder(
            orders_pb2.GetOrderRequest(id="o-5001"))
        samples = await scrape(stack)

    assert requests(samples, GET_USER, "OK") == 2
    assert requests(samples, GET_USER, "NOT_FOUND") == 1
    assert requests(samples, GET_ORDER, "OK") == 1
    assert sample(samples, "gateway_request_duration_seconds_count", route=GET_USER) == 3
    assert sample(samples, "gateway_backend_duration_seconds_count",
                  backend="users", route=GET_USER) == 3
    whole = sample(samples, "gateway_request_duration_seconds_sum", route=GET_USER)
    backend = sample(samples, "gateway_backend_duration_seconds_sum", backend="users",
                     route=GET_USER)
    assert whole is not None and backend is not None and 0 < backend < whole  # overhead shows
    # Routes not called yet are bound at load, at zero.
    assert sample(samples, "gateway_request_duration_seconds_count",
                  route="/users.v1.Users/ListUsers") == 0
    assert sample(samples, "gateway_requests_in_flight") == 0
    assert sample(samples, "gateway_breaker_state", backend="users", scope="*",
                  state="closed") == 1
    assert sample(samples, "gateway_breaker_state", backend="users", scope="*", state="open") == 0
    for backend_name in ("users", "orders", "notifications", "echo"):
        assert sample(samples, "gateway_backend_max_requests", backend=backend_name) == 1024
    address = stack.backends["users"].address
    assert sample(samples, "gateway_backend_instance_ejected", backend="users",
                  address=address) == 0
    assert sample(samples, "gateway_backend_instance_outstanding", backend="users",
                  address=address) == 0
    assert sum(value for (name, labels), value in samples.items()
               if name == "gateway_backend_instance_health"
               and ("address", address) in labels) == 1  # exactly one state holds


async def test_retries_breaker_transitions_and_instance_health() -> None:
    breaker = {"breaker": {"consecutive_failures": 2, "cooldown_s": 60}}
    async with running_stack(listen=WITH_OPS, backend_options={"users": breaker}) as stack:
        stack.backends["users"].faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE,
                                                           times=1))
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200  # the retry succeeded
        before = await scrape(stack)
        stack.backends["users"].faults.set(GET_USER, Fault(code=grpc.StatusCode.UNAVAILABLE))
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 503  # two faults in a row: the breaker opens
        after = await scrape(stack)
    assert sample(before, "gateway_backend_retries_total", backend="users", route=GET_USER) == 1
    assert sample(before, "gateway_breaker_state", backend="users", scope="*",
                  state="closed") == 1
    assert sample(after, "gateway_breaker_state", backend="users", scope="*", state="open") == 1
    assert sample(after, "gateway_breaker_transitions_total", backend="users", scope="*",
                  state="open") == 1
    assert requests(after, GET_USER, "UNAVAILABLE") == 1


async def test_rate_limit_rejections_by_policy() -> None:
    limits = {"rules": [{"match": GET_USER, "key": "ip", "rate_per_s": 0.001, "burst": 1}]}
    async with running_stack(listen=WITH_OPS, rate_limits=limits) as stack:
        statuses = []
        for _ in range(3):
            async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
                statuses.append(response.status)
        samples = await scrape(stack)
    assert statuses == [200, 429, 429]
    assert sample(samples, "gateway_ratelimit_rejections_total", policy="r0-ip") == 2


@pytest.mark.redis
async def test_redis_limiter_decisions(redis_server: RedisServer) -> None:
    # The session's Redis keeps buckets between tests: a leading rule for a method this test
    # never calls (a rule that matches no method is a load error) makes this one "r1-route", a
    # bucket no other test fills.
    limits = {"store": "redis", "redis": {"url": redis_server.url, "timeout_s": 0.2},
              "rules": [{"match": "/testing.v1.Echo/ChatBooks", "rate_per_s": 1, "burst": 1},
                        {"match": COUNT_UNREAD, "key": "route", "rate_per_s": 0.001,
                         "burst": 2}]}
    async with running_stack(listen=WITH_OPS, rate_limits=limits) as stack:
        for _ in range(3):
            async with stack.http.get(
                stack.url("/v1/users/u-1001/notifications:countUnread")
            ) as response:
                await response.read()
        samples = await scrape(stack)
    assert sample(samples, "gateway_ratelimit_decisions_total", decision="allowed") == 2
    assert sample(samples, "gateway_ratelimit_decisions_total", decision="rejected") == 1
    assert sample(samples, "gateway_ratelimit_redis_failures_total") == 0
    assert sample(samples, "gateway_ratelimit_redis_degraded") == 0


async def test_config_reload_results() -> None:
    async with running_stack(listen=WITH_OPS) as stack:
        metrics = stack.gateway.runtime.observability.metrics
        assert metrics is not None
        metrics.record_reload(True)
        metrics.record_reload(False)
        samples = await scrape(stack)
    assert sample(samples, "gateway_config_reloads_total", result="success") == 1
    assert sample(samples, "gateway_config_reloads_total", result="failure") == 1
    assert sample(samples, "gateway_config_last_reload_successful") == 0


async def test_each_gateway_has_its_own_registry() -> None:
    async with running_stack(listen=WITH_OPS) as first, running_stack(listen=WITH_OPS) as second:
        async with first.http.get(first.url("/v1/users/u-1001")) as response:
            await response.read()
        counted = [sample(await scrape(stack), "gateway_request_duration_seconds_count",
                          route=GET_USER) for stack in (first, second)]
    assert counted == [1, 0]


async def test_openmetrics_on_request() -> None:
    async with running_stack(listen=WITH_OPS) as stack:
        async with stack.http.get(f"http://127.0.0.1:{stack.gateway.ops_port}/metrics",
                                  headers={"Accept": "application/openmetrics-text"}) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await response.text()).endswith("# EOF\n")


async def test_no_ops_listener_no_metrics() -> None:
    async with running_stack() as stack:
        assert stack.gateway.ops_port is None
        assert stack.gateway.runtime.observability.metrics is None


async def test_metrics_can_be_switched_off_on_an_ops_listener() -> None:
    async with running_stack(listen=WITH_OPS,
                             observability={"metrics": {"enabled": False}}) as stack:
        assert stack.gateway.runtime.observability.metrics is None
        async with stack.http.get(f"http://127.0.0.1:{stack.gateway.ops_port}/metrics") as r:
            assert r.status == 404
