"""notifications.v1.Notifications: each user's inbox, in memory, seeded from services.seed.

`python -m services.notifications --port N` serves it alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import cast

import grpc

from notifications.v1 import notifications_pb2, notifications_pb2_grpc
from services.paging import Pager, newest_first
from services.seed import seed
from services.status import Context, not_found, require

_RESOURCE = "notifications.v1.Notification"
_Add = Callable[["NotificationsService", grpc.aio.Server], None]


class NotificationsService(notifications_pb2_grpc.NotificationsServicer):
    service_name = notifications_pb2.DESCRIPTOR.services_by_name["Notifications"].full_name

    def __init__(self, notifications: Iterable[notifications_pb2.Notification] | None = None,
                 pager: Pager | None = None) -> None:
        initial = seed().notifications if notifications is None else notifications
        self._all = {item.id: copy.deepcopy(item) for item in initial}
        self._pager = pager or Pager()

    def add_to(self, server: grpc.aio.Server) -> None:
        add = cast(_Add, notifications_pb2_grpc.add_NotificationsServicer_to_server)  # untyped
        add(self, server)

    async def ListNotifications(
        self, request: notifications_pb2.ListNotificationsRequest, context: Context
    ) -> notifications_pb2.ListNotificationsResponse:
        user_id = require(request.user_id, "user_id")
        inbox = [item for item in self._inbox(user_id) if not (request.unread_only and item.read)]
        page, token = self._pager.page(
            inbox, request.page_size, request.page_token,
            scope=f"notifications|{user_id}|{request.unread_only}",
        )
        return notifications_pb2.ListNotificationsResponse(
            notifications=page, next_page_token=token
        )

    async def CountUnread(self, request: notifications_pb2.CountUnreadRequest,
                          context: Context) -> notifications_pb2.CountUnreadResponse:
        unread = sum(not item.read for item in self._inbox(require(request.user_id, "user_id")))
        return notifications_pb2.CountUnreadResponse(unread_count=unread)

    async def MarkRead(self, request: notifications_pb2.MarkReadRequest,
                       context: Context) -> notifications_pb2.MarkReadResponse:
        user_id = require(request.user_id, "user_id")
        if request.notification_ids:
            # all or nothing: every id must be in this user's inbox before any is marked
            chosen = [self._get(user_id, nid) for nid in dict.fromkeys(request.notification_ids)]
        else:
            chosen = self._inbox(user_id)
        marked = 0
        for item in chosen:
            marked += not item.read
            item.read = True
        return notifications_pb2.MarkReadResponse(marked_count=marked)

    def _get(self, user_id: str, notification_id: str) -> notifications_pb2.Notification:
        item = self._all.get(notification_id)
        if item is None or item.user_id != user_id:  # another user's id is as missing as none
            raise not_found("notification", notification_id, _RESOURCE)
        return item

    def _inbox(self, user_id: str) -> list[notifications_pb2.Notification]:
        return newest_first(item for item in self._all.values() if item.user_id == user_id)


if __name__ == "__main__":
    from services.cli import main

    main(["notifications"])
