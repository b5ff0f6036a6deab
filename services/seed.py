"""The deterministic demo data: 20 users (u-1001..), their orders (o-5001..) and inboxes (n-9001..).

Same data on every start, so tests and docs can name ids. u-1001 is an admin with four orders
(the newest PENDING, one SHIPPED) and four notifications, two of them unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from notifications.v1 import notifications_pb2
from orders.v1 import orders_pb2
from users.v1 import users_pb2

BASE_TIME = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)

_NAMES = (
    "Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
    "Barbara Liskov", "Donald Knuth", "Frances Allen", "Ken Thompson", "Margaret Hamilton",
    "Dennis Ritchie", "Radia Perlman", "Tim Berners-Lee", "Hedy Lamarr", "John McCarthy",
    "Sophie Wilson", "Linus Torvalds", "Anita Borg", "Guido van Rossum", "Shafi Goldwasser",
)
_PLACES = (  # street, city, postal code, country
    ("Friedrichstrasse", "Berlin", "10117", "DE"),
    ("Baker Street", "London", "NW1 6XE", "GB"),
    ("Rue de Rivoli", "Paris", "75001", "FR"),
    ("Prinsengracht", "Amsterdam", "1015 DV", "NL"),
    ("Kaerntner Strasse", "Vienna", "1010", "AT"),
)
_TEAMS = ("platform", "payments", "growth", "support")
_SUSPENDED = frozenset({4, 11, 17})  # u-1005, u-1012, u-1018
_ADMINS = frozenset({0, 1, 9})  # u-1001, u-1002, u-1010
_CATALOG = (  # sku, title, unit price in minor units
    ("BK-1001", "The Pragmatic Programmer", 4299),
    ("BK-1002", "Designing Data-Intensive Applications", 3999),
    ("KB-2001", "Mechanical Keyboard", 12900),
    ("MS-2002", "Wireless Mouse", 2999),
    ("HD-3001", "Noise-Cancelling Headphones", 24900),
    ("CB-4001", "USB-C Cable 2m", 1299),
    ("MG-5001", "Coffee Mug", 1450),
    ("ST-6001", "Laptop Stand", 4990),
)
_OLDER_STATUS = (
    orders_pb2.ORDER_STATUS_DELIVERED,
    orders_pb2.ORDER_STATUS_SHIPPED,
    orders_pb2.ORDER_STATUS_CANCELLED,
)
_INBOX = (  # title, body, severity
    ("Welcome aboard", "Your account is ready.", notifications_pb2.SEVERITY_INFO),
    ("New sign-in", "A new device signed in from {city}.", notifications_pb2.SEVERITY_WARNING),
    ("Order received", "We received order {order}.", notifications_pb2.SEVERITY_INFO),
    ("Payment failed", "We could not charge your card for {order}.",
     notifications_pb2.SEVERITY_CRITICAL),
)


@dataclass(frozen=True, slots=True)
class Seed:
    users: tuple[users_pb2.User, ...]
    orders: tuple[orders_pb2.Order, ...]
    notifications: tuple[notifications_pb2.Notification, ...]


def seed() -> Seed:
    """Fresh message objects every call: each backend owns (and mutates) its own copy."""
    users = tuple(_user(i) for i in range(len(_NAMES)))
    orders: list[orders_pb2.Order] = []
    inbox: list[notifications_pb2.Notification] = []
    for i, user in enumerate(users):
        n_orders = 4 if i == 0 else 1 + i % 3
        mine = [_order(k, 5001 + len(orders) + k, user, newest=k == n_orders - 1)
                for k in range(n_orders)]
        orders += mine
        count = 4 if i == 0 else 2 + i % 2
        unread = 2 if i % 2 == 0 else 1
        inbox += [
            _notification(k, 9001 + len(inbox) + k, user, mine[-1].id, read=k < count - unread)
            for k in range(count)
        ]
    return Seed(users, tuple(orders), tuple(inbox))


def now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _user(i: int) -> users_pb2.User:
    street, city, postal_code, country = _PLACES[i % len(_PLACES)]
    created = BASE_TIME + timedelta(days=i)
    roles = [users_pb2.ROLE_MEMBER] + ([users_pb2.ROLE_ADMIN] if i in _ADMINS else [])
    tags = [tag for tag, every in (("beta", 3), ("vip", 4), ("newsletter", 2)) if i % every == 0]
    return users_pb2.User(
        id=f"u-{1001 + i}",
        email=_NAMES[i].lower().replace(" ", ".") + "@example.com",
        display_name=_NAMES[i],
        state=users_pb2.USER_STATE_SUSPENDED if i in _SUSPENDED else users_pb2.USER_STATE_ACTIVE,
        roles=roles,
        tags=tags,
        address=users_pb2.Address(
            line1=f"{street} {10 + i}", city=city, postal_code=postal_code, country_code=country
        ),
        labels={"team": _TEAMS[i % len(_TEAMS)], "plan": "pro" if i % 2 == 0 else "free"},
        create_time=timestamp(created),
        update_time=timestamp(created + timedelta(hours=i % 3)),
    )


def _order(k: int, number: int, user: users_pb2.User, newest: bool) -> orders_pb2.Order:
    """The k-th (oldest first) order of a user: the newest is PENDING, older ones have moved on."""
    currency = "GBP" if user.address.country_code == "GB" else "EUR"
    items = []
    for m in range(1 + number % 3):
        sku, title, price = _CATALOG[(number * 3 + m * 5) % len(_CATALOG)]
        money = orders_pb2.Money(currency_code=currency, amount_minor=price)
        quantity = 1 + (number + m) % 3
        items.append(orders_pb2.LineItem(sku=sku, title=title, quantity=quantity, unit_price=money))
    status = orders_pb2.ORDER_STATUS_PENDING if newest else _OLDER_STATUS[k % 3]
    joined = user.create_time.ToDatetime(tzinfo=UTC)
    created = joined + timedelta(days=3 * (k + 1), hours=number % 7)
    total = sum(item.quantity * item.unit_price.amount_minor for item in items)
    return orders_pb2.Order(
        id=f"o-{number}",
        user_id=user.id,
        status=status,
        items=items,
        total=orders_pb2.Money(currency_code=currency, amount_minor=total),
        cancel_reason="Ordered by mistake" if status == orders_pb2.ORDER_STATUS_CANCELLED else "",
        create_time=timestamp(created),
        update_time=timestamp(created if newest else created + timedelta(days=1)),
    )


def _notification(k: int, number: int, user: users_pb2.User, order_id: str,
                  read: bool) -> notifications_pb2.Notification:
    title, body, severity = _INBOX[k % len(_INBOX)]
    created = user.create_time.ToDatetime(tzinfo=UTC) + timedelta(days=10, hours=7 * k)
    return notifications_pb2.Notification(
        id=f"n-{number}",
        user_id=user.id,
        title=title,
        body=body.format(city=user.address.city, order=order_id),
        severity=severity,
        read=read,
        create_time=timestamp(created),
    )
