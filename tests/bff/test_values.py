"""Reading along field paths (repeated fields give lists), setting them, dropping repeats."""

from __future__ import annotations

from typing import Any

from gateway.bff.values import Path, assign, distinct, read
from orders.v1 import orders_pb2
from users.v1 import users_pb2

ORDERS = orders_pb2.ListOrdersResponse.DESCRIPTOR
USER = users_pb2.User.DESCRIPTOR


def path(descriptor: Any, *names: str) -> Path:
    fields = []
    for name in names:
        assert descriptor is not None
        field = descriptor.fields_by_name[name]
        fields.append(field)
        descriptor = field.message_type
    return tuple(fields)


def test_a_repeated_field_on_the_way_gives_one_value_per_element() -> None:
    reply = orders_pb2.ListOrdersResponse(orders=[
        orders_pb2.Order(id="o-1", total=orders_pb2.Money(amount_minor=5)),
        orders_pb2.Order(id="o-2"),
    ])
    assert read(reply, path(ORDERS, "orders", "id")) == ["o-1", "o-2"]
    amounts = read(reply, path(ORDERS, "orders", "total", "amount_minor"))
    assert amounts == [5, 0]  # an unset message reads as its defaults
    assert read(reply, ()) == [reply]


def test_assign_sets_nested_singular_fields_and_whole_lists() -> None:
    user = users_pb2.User()
    assign(user, path(USER, "address", "city"), ["Berlin"])
    assign(user, path(USER, "tags"), ["a", "b"])
    assert user.address.city == "Berlin" and list(user.tags) == ["a", "b"]
    holder = orders_pb2.ListOrdersResponse()
    assign(holder, path(ORDERS, "orders"), [orders_pb2.Order(id="o-1")] * 2)
    assert [o.id for o in holder.orders] == ["o-1", "o-1"]


def test_distinct_keeps_first_occurrences_and_compares_messages_by_content() -> None:
    assert distinct(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    one, same, other = users_pb2.User(id="u-1"), users_pb2.User(id="u-1"), users_pb2.User(id="u-2")
    assert distinct([one, same, other]) == [one, other]
