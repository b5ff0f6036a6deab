"""Aggregate specs are validated at load: every mistake is a ConfigError naming the part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.bff.spec import Constant, FromIdentity, FromPart, FromRequest
from gateway.call import Kind
from gateway.compiled import compile_config
from gateway.config import load
from gateway.demo import OVERVIEW, overview_aggregate
from gateway.errors import ConfigError
from tests.bff.helpers import GET_USER, LIST_ORDERS, config, overview_plan
from tests.conftest import ROOT

Spec = dict[str, Any]
WHERE = f"aggregates.{OVERVIEW}.parts"


def test_the_demo_overview_compiles_to_a_dag() -> None:
    plan = overview_plan()
    assert [part.name for part in plan.parts] == [
        "profile", "recent_orders", "unread", "order_users"]
    parts = {part.name: part for part in plan.parts}
    assert parts["profile"].required and not parts["unread"].required
    assert parts["order_users"].depends_on == ("recent_orders",)
    assert parts["order_users"].fan_out and not parts["profile"].fan_out
    assert parts["profile"].bindings[0].source == FromIdentity()
    page_size = parts["recent_orders"].bindings[1]
    assert isinstance(page_size.source, FromRequest)
    assert [f.name for f in page_size.source.path] == ["order_page_size"]
    spread = parts["order_users"].bindings[0]
    assert spread.spread and isinstance(spread.source, FromPart)
    assert [f.name for f in spread.source.path] == ["orders", "user_id"]
    assert plan.errors_field == "errors"
    assert all(part.idempotent and part.timeout_s == 15.0 for part in plan.parts)


def test_dependencies_come_first_whatever_the_config_order() -> None:
    spec = overview_aggregate()
    spec["parts"] = dict(reversed(spec["parts"].items()))
    plan = overview_plan(**spec)
    names = [part.name for part in plan.parts]
    assert names.index("recent_orders") < names.index("order_users")


def test_the_aggregate_is_a_unary_route_and_a_grpc_method() -> None:
    compiled = compile_config(load(config()))
    assert compiled.methods[OVERVIEW].kind is Kind.UNARY
    assert compiled.methods[OVERVIEW].idempotent
    route, bindings = compiled.table.match("GET", "/v1/dashboard/overview")
    assert (route.method, bindings) == (OVERVIEW, {})
    assert "dashboard.v1.Dashboard" not in compiled.services  # no backend serves it


def test_without_aggregates_the_dashboard_is_not_served() -> None:
    compiled = compile_config(load(config({})))
    assert OVERVIEW not in compiled.methods
    assert compiled.aggregates == {}


def test_part_timeout_is_capped_by_its_backend_timeout() -> None:
    spec = overview_aggregate()
    spec["parts"]["profile"]["timeout_s"] = 5.0
    spec["parts"]["unread"]["timeout_s"] = 0.25
    plan = compile_config(load(config({OVERVIEW: spec}, timeout_s=2.0))).aggregates[OVERVIEW]
    timeouts = {part.name: part.timeout_s for part in plan.parts}
    assert timeouts == {"profile": 2.0, "recent_orders": 2.0, "unread": 0.25, "order_users": 2.0}


def test_constants_are_set_as_given() -> None:
    spec = overview_aggregate()
    spec["parts"]["recent_orders"]["request"]["page_size"] = 5
    spec["parts"]["profile"]["request"]["id"] = "'u-1002'"
    parts = {part.name: part for part in overview_plan(**spec).parts}
    assert parts["recent_orders"].bindings[1].source == Constant(5)
    assert parts["profile"].bindings[0].source == Constant("u-1002")
    assert parts["profile"].depends_on == ()


def _set(part: str, **changes: Any) -> Callable[[Spec], None]:
    def mutate(spec: Spec) -> None:
        spec["parts"].setdefault(part, {}).update(changes)

    return mutate


def _request(part: str, **request: Any) -> Callable[[Spec], None]:
    return _set(part, request=request)


def _both(*mutations: Callable[[Spec], None]) -> Callable[[Spec], None]:
    def mutate(spec: Spec) -> None:
        for mutation in mutations:
            mutation(spec)

    return mutate


def _top(**changes: Any) -> Callable[[Spec], None]:
    return lambda spec: spec.update(changes)


BAD = [
    pytest.param(_set("profile", method="/users.v1.Users/Nope"),
                 f"{WHERE}.profile.method: /users.v1.Users/Nope is not a method",
                 id="unknown-method"),
    pytest.param(_set("profile", method="users.v1.Users.GetUser"),
                 "is not a method path like /pkg.Service/Method", id="bad-method-path"),
    pytest.param(_set("recent_orders", method="/orders.v1.Orders/WatchOrders"),
                 f"{WHERE}.recent_orders.method: /orders.v1.Orders/WatchOrders is streaming",
                 id="streaming-part"),
    pytest.param(_request("profile", id="request.order_page_size"),
                 f"{WHERE}.profile.request.id: 'request.order_page_size' is int32, the field "
                 "'id' is string", id="type-mismatch"),
    pytest.param(_request("order_users", id="recent_orders.orders"),
                 "'recent_orders.orders' is orders.v1.Order, the field 'id' is string",
                 id="message-into-string"),
    pytest.param(_request("profile", idd="identity.user_id"),
                 f"{WHERE}.profile.request.idd: users.v1.GetUserRequest has no field 'idd'",
                 id="unknown-target-field"),
    pytest.param(_request("profile", id="request.nope"),
                 "dashboard.v1.GetOverviewRequest has no field 'nope'", id="unknown-source-field"),
    pytest.param(_request("profile", id="request.order_page_size.x"),
                 "'order_page_size' is not a message", id="path-through-a-scalar"),
    pytest.param(_request("order_users", id="profile.labels"),
                 "map field 'labels' cannot be read", id="map-field"),
    pytest.param(_request("order_users", id="recnt_orders.orders.user_id"),
                 f"{WHERE}.order_users.request.id: 'recnt_orders.orders.user_id' is not "
                 "request.<field>, identity.user_id, <part>.<field> or a constant",
                 id="unknown-part"),
    pytest.param(_request("profile", id="identity.email"),
                 "the identity offers identity.user_id", id="unknown-identity-field"),
    pytest.param(_both(_set("recent_orders", required=True), _set("order_users", required=True),
                       _request("profile", id="order_users.id")),
                 "needs a field 'profile' of type repeated users.v1.User", id="fanned-source"),
    pytest.param(_request("recent_orders", user_id="order_users.id"),
                 f"{WHERE}.recent_orders: the parts form a cycle: "
                 "recent_orders -> order_users -> recent_orders", id="cycle"),
    pytest.param(_request("profile", id="profile.id"),
                 f"{WHERE}.profile: the parts form a cycle: profile -> profile", id="self-cycle"),
    pytest.param(_set("order_users", required=True),
                 f"{WHERE}.order_users: a required part cannot depend on the optional part "
                 "'recent_orders'", id="required-on-optional"),
    pytest.param(_set("nope", method=GET_USER, request={"id": "identity.user_id"}),
                 f"{WHERE}.nope: dashboard.v1.Overview needs a field 'nope' of type users.v1.User",
                 id="no-such-response-field"),
    pytest.param(_set("unread", method=GET_USER, request={"id": "identity.user_id"}),
                 "needs a field 'unread' of type users.v1.User", id="response-field-type"),
    pytest.param(_request("order_users", id="identity.user_id"),
                 "needs a field 'order_users' of type users.v1.User", id="single-into-repeated"),
    pytest.param(_both(_set("recent_orders", required=True),
                       _request("profile", id="recent_orders.orders.user_id")),
                 "needs a field 'profile' of type repeated users.v1.User for the reply of "
                 "/users.v1.Users/GetUser (the part fans out over a list)", id="list-into-single"),
    pytest.param(_set("more", method=LIST_ORDERS, required=False,
                      request={"user_id": "recent_orders.orders.user_id",
                               "page_token": "recent_orders.orders.id"}),
                 f"{WHERE}.more.request: at most one list may fan a part out", id="two-spreads"),
    pytest.param(_top(errors_field="nope"),
                 "optional parts report failures in dashboard.v1.Overview.nope, which must be a "
                 "repeated message with `string part`, `int32 code`", id="no-errors-field"),
    pytest.param(_top(errors_field="order_users"), "report failures in dashboard.v1.Overview."
                 "order_users, which must be", id="errors-field-of-wrong-shape"),
    pytest.param(_top(errors_field="profile"), "report failures in", id="errors-field-single"),
    pytest.param(_request("recent_orders", user_id="identity.user_id", page_size="'five'"),
                 f"{WHERE}.recent_orders.request.page_size: the constant 'five' does not fit "
                 "int32", id="string-constant-into-int"),
    pytest.param(_request("recent_orders", user_id="identity.user_id", page_size=True),
                 "the constant True does not fit int32", id="bool-constant-into-int"),
    pytest.param(_request("recent_orders", user_id="identity.user_id", page_size=2**40),
                 f"{WHERE}.recent_orders.request: ", id="constant-out-of-range"),
    pytest.param(_request("recent_orders", user_id=1.5),
                 "the constant 1.5 does not fit string", id="float-constant-into-string"),
    pytest.param(_set("request", method=GET_USER), f"{WHERE}.request: the name 'request' is "
                 "reserved", id="reserved-name"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD)
def test_bad_specs_are_config_errors_naming_the_part(mutate: Callable[[Spec], None],
                                                     message: str) -> None:
    spec = overview_aggregate()
    mutate(spec)
    with pytest.raises(ConfigError) as info:
        compile_config(load(config({OVERVIEW: spec})))
    assert message in str(info.value)


@pytest.mark.parametrize(("method", "message"), [
    pytest.param("/dashboard.v1.Dashboard/Nope", "is not a method of the loaded descriptors",
                 id="unknown"),
    pytest.param("/orders.v1.Orders/WatchOrders", "an aggregate must be a unary method",
                 id="streaming"),
    pytest.param("/orders.v1.Orders/GetOrder", "its service is served by a backend",
                 id="served-by-a-backend"),
])
def test_bad_aggregate_methods(method: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"aggregates.{method}: .*{message}"):
        compile_config(load(config({method: overview_aggregate()})))


def test_a_missing_backend_is_named() -> None:
    data = config()
    del data["backends"]["notifications"]
    with pytest.raises(ConfigError, match=f"{WHERE}.unread.method: no backend serves "
                                          "/notifications.v1.Notifications/CountUnread"):
        compile_config(load(data))


def test_an_unknown_config_key_is_refused() -> None:
    spec = overview_aggregate()
    spec["parts"]["profile"]["optional"] = True
    with pytest.raises(ConfigError, match="parts.profile.optional: Extra inputs"):
        load(config({OVERVIEW: spec}))


BOARD = """
syntax = "proto3";
package board.v1;
import "users/v1/users.proto";
service Board {
  rpc GetBoard(GetBoardRequest) returns (BoardView);
  rpc GetOther(GetBoardRequest) returns (BoardView);
}
message GetBoardRequest {}
message BoardView { users.v1.User profile = 1; }
"""


def test_every_method_of_an_aggregate_service_must_be_an_aggregate(tmp_path: Path) -> None:
    (tmp_path / "board.proto").write_text(BOARD)
    data = config({"/board.v1.Board/GetBoard": {"parts": {
        "profile": {"method": GET_USER, "request": {"id": "identity.user_id"}}}}})
    data["descriptors"] = {"proto_files": ["board.proto"],
                           "import_paths": [str(tmp_path), str(ROOT / "protos")]}
    data["backends"] = {"users": data["backends"]["users"]}
    with pytest.raises(ConfigError, match="board.v1.Board/GetOther is neither an aggregate nor "
                                          "served by a backend"):
        compile_config(load(data))
    data["aggregates"]["/board.v1.Board/GetOther"] = data["aggregates"]["/board.v1.Board/GetBoard"]
    compiled = compile_config(load(data))
    assert set(compiled.aggregates) == {"/board.v1.Board/GetBoard", "/board.v1.Board/GetOther"}
    assert compiled.aggregates["/board.v1.Board/GetBoard"].errors_field is None  # all required
