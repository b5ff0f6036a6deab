from buf.validate import validate_pb2 as _validate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from notifications.v1 import notifications_pb2 as _notifications_pb2
from orders.v1 import orders_pb2 as _orders_pb2
from users.v1 import users_pb2 as _users_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetOverviewRequest(_message.Message):
    __slots__ = ("order_page_size",)
    ORDER_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    order_page_size: int
    def __init__(self, order_page_size: _Optional[int] = ...) -> None: ...

class Overview(_message.Message):
    __slots__ = ("profile", "recent_orders", "unread", "order_users", "errors")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    RECENT_ORDERS_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    ORDER_USERS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    profile: _users_pb2.User
    recent_orders: _orders_pb2.ListOrdersResponse
    unread: _notifications_pb2.CountUnreadResponse
    order_users: _containers.RepeatedCompositeFieldContainer[_users_pb2.User]
    errors: _containers.RepeatedCompositeFieldContainer[PartError]
    def __init__(self, profile: _Optional[_Union[_users_pb2.User, _Mapping]] = ..., recent_orders: _Optional[_Union[_orders_pb2.ListOrdersResponse, _Mapping]] = ..., unread: _Optional[_Union[_notifications_pb2.CountUnreadResponse, _Mapping]] = ..., order_users: _Optional[_Iterable[_Union[_users_pb2.User, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[PartError, _Mapping]]] = ...) -> None: ...

class PartError(_message.Message):
    __slots__ = ("part", "code", "message")
    PART_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    part: str
    code: int
    message: str
    def __init__(self, part: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
