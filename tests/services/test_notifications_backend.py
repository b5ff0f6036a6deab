"""notifications.v1.Notifications over a real channel: inbox paging, unread counts, marking read."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2

from notifications.v1 import notifications_pb2 as pb
from tests.services.rich import detail, message, rpc_error, violated_fields


async def _unread(notifications: Any, user_id: str = "u-1001") -> int:
    reply = await notifications.CountUnread(pb.CountUnreadRequest(user_id=user_id))
    return int(reply.unread_count)


async def test_inbox_is_newest_first(notifications: Any) -> None:
    inbox = await notifications.ListNotifications(pb.ListNotificationsRequest(user_id="u-1001"))
    assert [n.id for n in inbox.notifications] == ["n-9004", "n-9003", "n-9002", "n-9001"]
    assert [n.read for n in inbox.notifications] == [False, False, True, True]
    assert all(n.user_id == "u-1001" for n in inbox.notifications)


async def test_unread_only_and_paging(notifications: Any) -> None:
    first = await notifications.ListNotifications(
        pb.ListNotificationsRequest(user_id="u-1001", unread_only=True, page_size=1)
    )
    second = await notifications.ListNotifications(pb.ListNotificationsRequest(
        user_id="u-1001", unread_only=True, page_size=1, page_token=first.next_page_token
    ))
    assert [n.id for n in [*first.notifications, *second.notifications]] == ["n-9004", "n-9003"]
    assert second.next_page_token == ""
    # the token belongs to the unread_only query, not to the whole inbox
    error = await rpc_error(notifications.ListNotifications(pb.ListNotificationsRequest(
        user_id="u-1001", page_size=1, page_token=first.next_page_token
    )))
    assert violated_fields(error) == ["page_token"]


async def test_page_size_is_validated(notifications: Any) -> None:
    request = pb.ListNotificationsRequest(user_id="u-1001", page_size=500)
    error = await rpc_error(notifications.ListNotifications(request))
    assert violated_fields(error) == ["page_size"]


async def test_mark_read_by_id(notifications: Any) -> None:
    assert await _unread(notifications) == 2
    request = pb.MarkReadRequest(user_id="u-1001", notification_ids=["n-9004", "n-9001"])
    assert (await notifications.MarkRead(request)).marked_count == 1  # n-9001 was read
    assert await _unread(notifications) == 1
    assert (await notifications.MarkRead(request)).marked_count == 0  # idempotent


async def test_mark_read_everything(notifications: Any) -> None:
    reply = await notifications.MarkRead(pb.MarkReadRequest(user_id="u-1001"))
    assert reply.marked_count == 2
    assert await _unread(notifications) == 0
    assert await _unread(notifications, "u-1003") == 2  # other inboxes untouched


async def test_mark_read_unknown_id_is_not_found_and_marks_nothing(notifications: Any) -> None:
    request = pb.MarkReadRequest(user_id="u-1001", notification_ids=["n-9004", "n-1"])
    error = await rpc_error(notifications.MarkRead(request))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert message(error) == 'notification "n-1" not found'
    assert detail(error, error_details_pb2.ResourceInfo).resource_name == "n-1"
    assert await _unread(notifications) == 2


async def test_another_users_notification_is_not_found(notifications: Any) -> None:
    request = pb.MarkReadRequest(user_id="u-1002", notification_ids=["n-9004"])
    error = await rpc_error(notifications.MarkRead(request))
    assert message(error) == 'notification "n-9004" not found'


async def test_user_id_is_required(notifications: Any) -> None:
    for call in (
        notifications.ListNotifications(pb.ListNotificationsRequest()),
        notifications.CountUnread(pb.CountUnreadRequest()),
        notifications.MarkRead(pb.MarkReadRequest()),
    ):
        assert violated_fields(await rpc_error(call)) == ["user_id"]
