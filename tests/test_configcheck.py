"""Every method name and pattern in a config is checked against the descriptors at load: a name
that matches nothing is a ConfigError naming the key and the value, with the closest method as
a suggestion; on reload the old config keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.compiled import compile_config
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from gateway.errors import ConfigError
from tests.e2e.stack import running_stack, stack_config

BACKENDS = {
    "users": {"services": ["users.v1.Users"], "addresses": ["127.0.0.1:1"]},
    "orders": {"services": ["orders.v1.Orders"], "addresses": ["127.0.0.1:2"]},
}


def config(**overrides: Any) -> dict[str, Any]:
    return {"descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
            "backends": BACKENDS, **overrides}


BAD = [
    pytest.param({"authorization": {"rules": [
        {"match": "/users.v1.Users/GetUser", "access": "public"},
        {"match": "/users.v1.Users/DeleteUsr", "roles": ["admin"]}]}},
        "authorization.rules.1.match: '/users.v1.Users/DeleteUsr' matches no method the "
        "gateway serves (did you mean '/users.v1.Users/DeleteUser'?)", id="authorization"),
    pytest.param({"authorization": {"rules": [{"match": "/user.v1.Users/*"}]}},
                 "authorization.rules.0.match: '/user.v1.Users/*' matches no method the gateway "
                 "serves (did you mean '/users.v1.Users/*'?)", id="authorization-pattern"),
    pytest.param({"rate_limits": {"rules": [{"match": "/orders.v1.Orders/CreateOrdr",
                                             "rate_per_s": 1, "burst": 1}]}},
                 "rate_limits.rules.0.match: '/orders.v1.Orders/CreateOrdr' matches no method "
                 "the gateway serves (did you mean '/orders.v1.Orders/CreateOrder'?)",
                 id="rate-limit"),
    pytest.param({"transcoding": {"success_status": {"/users.v1.Users/CreatUser": 201}}},
                 "transcoding.success_status./users.v1.Users/CreatUser: "
                 "'/users.v1.Users/CreatUser' is not a method the gateway serves "
                 "(did you mean '/users.v1.Users/CreateUser'?)", id="success-status"),
    # A method of the descriptors, but no backend serves it: no route, so the key does nothing.
    pytest.param({"transcoding": {"success_status": {
        "/notifications.v1.Notifications/CountUnread": 200}}},
        "transcoding.success_status./notifications.v1.Notifications/CountUnread: "
        "'/notifications.v1.Notifications/CountUnread' is not a method the gateway serves",
        id="success-status-unserved"),
    pytest.param({"backends": {**BACKENDS, "users": {
        **BACKENDS["users"], "retry": {"idempotent_methods": ["/orders.v1.Orders/GetOrder"]}}}},
        "backends.users.retry.idempotent_methods.0: '/orders.v1.Orders/GetOrder' is not a "
        "method backend users serves", id="retry-other-backend"),
    pytest.param({"aggregates": {"/dashboard.v1.Dashboard/GetOverveiw": {"parts": {
        "profile": {"method": "/users.v1.Users/GetUser"}}}}},
        "aggregates./dashboard.v1.Dashboard/GetOverveiw: /dashboard.v1.Dashboard/GetOverveiw "
        "is not a method of the loaded descriptors "
        "(did you mean '/dashboard.v1.Dashboard/GetOverview'?)", id="aggregate"),
]


@pytest.mark.parametrize(("patch", "message"), BAD)
def test_a_name_that_matches_nothing_is_a_load_error(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_config(load(config(**patch)))
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    bad = config(authorization={"rules": [{"match": "/a.B/C"}]},
                 rate_limits={"rules": [{"match": "/d.E/F", "rate_per_s": 1, "burst": 1}]})
    with pytest.raises(ConfigError) as caught:
        compile_config(load(bad))
    assert "authorization.rules.0.match: '/a.B/C'" in str(caught.value)
    assert "rate_limits.rules.0.match: '/d.E/F'" in str(caught.value)
    assert "did you mean" not in str(caught.value)  # nothing is close to either


def test_names_that_match_load() -> None:
    compiled = compile_config(load(config(
        authorization={"default": "authenticated", "rules": [
            {"match": "/users.v1.Users/Get*", "access": "public"},
            {"match": "*", "access": "authenticated"}]},
        rate_limits={"rules": [{"match": "/orders.v1.*", "rate_per_s": 5, "burst": 5}]},
        transcoding={"success_status": {"/users.v1.Users/CreateUser": 201}},
        backends={**BACKENDS, "orders": {**BACKENDS["orders"], "retry": {
            "idempotent_methods": ["/orders.v1.Orders/CancelOrder"]}}},
    )))
    assert "/users.v1.Users/GetUser" in compiled.methods


async def test_a_reload_with_a_misspelled_rule_is_refused_and_the_old_config_serves() -> None:
    async with running_stack() as stack:
        bad = load(stack_config(stack.backends, authorization={"rules": [
            {"match": "/users.v1.Users/DeleteUsr", "roles": ["admin"]}]}))
        with pytest.raises(ConfigError, match=r"authorization.rules.0.match: "
                                              r"'/users.v1.Users/DeleteUsr' matches no method"):
            await stack.gateway.reload(bad)
        assert stack.gateway.generation == 1
        async with stack.http.get(stack.url("/v1/users/u-1001")) as response:
            assert response.status == 200
