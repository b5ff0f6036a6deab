import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Color(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLOR_UNSPECIFIED: _ClassVar[Color]
    COLOR_RED: _ClassVar[Color]
    COLOR_GREEN: _ClassVar[Color]
    COLOR_BLUE: _ClassVar[Color]
COLOR_UNSPECIFIED: Color
COLOR_RED: Color
COLOR_GREEN: Color
COLOR_BLUE: Color

class Nested(_message.Message):
    __slots__ = ("label", "count", "child")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    label: str
    count: int
    child: Nested
    def __init__(self, label: _Optional[str] = ..., count: _Optional[int] = ..., child: _Optional[_Union[Nested, _Mapping]] = ...) -> None: ...

class EchoKitchenRequest(_message.Message):
    __slots__ = ("string_value", "int32_value", "int64_value", "uint32_value", "uint64_value", "sint32_value", "sint64_value", "fixed32_value", "fixed64_value", "sfixed32_value", "sfixed64_value", "float_value", "double_value", "bool_value", "bytes_value", "color", "nested", "repeated_string", "repeated_int64", "repeated_color", "repeated_nested", "string_map", "nested_map", "choice_text", "choice_number", "choice_nested", "timestamp", "duration", "field_mask", "struct_value", "value", "list_value", "any", "wrapped_string", "wrapped_int64", "wrapped_bool", "wrapped_double", "wrapped_bytes", "wrapped_int32", "wrapped_uint32", "wrapped_uint64", "wrapped_float", "custom_json", "optional_int32", "repeated_timestamp", "bool_map")
    class StringMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class NestedMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: Nested
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[Nested, _Mapping]] = ...) -> None: ...
    class BoolMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: bool
        value: int
        def __init__(self, key: _Optional[bool] = ..., value: _Optional[int] = ...) -> None: ...
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT32_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT64_VALUE_FIELD_NUMBER: _ClassVar[int]
    UINT32_VALUE_FIELD_NUMBER: _ClassVar[int]
    UINT64_VALUE_FIELD_NUMBER: _ClassVar[int]
    SINT32_VALUE_FIELD_NUMBER: _ClassVar[int]
    SINT64_VALUE_FIELD_NUMBER: _ClassVar[int]
    FIXED32_VALUE_FIELD_NUMBER: _ClassVar[int]
    FIXED64_VALUE_FIELD_NUMBER: _ClassVar[int]
    SFIXED32_VALUE_FIELD_NUMBER: _ClassVar[int]
    SFIXED64_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    NESTED_FIELD_NUMBER: _ClassVar[int]
    REPEATED_STRING_FIELD_NUMBER: _ClassVar[int]
    REPEATED_INT64_FIELD_NUMBER: _ClassVar[int]
    REPEATED_COLOR_FIELD_NUMBER: _ClassVar[int]
    REPEATED_NESTED_FIELD_NUMBER: _ClassVar[int]
    STRING_MAP_FIELD_NUMBER: _ClassVar[int]
    NESTED_MAP_FIELD_NUMBER: _ClassVar[int]
    CHOICE_TEXT_FIELD_NUMBER: _ClassVar[int]
    CHOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHOICE_NESTED_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    FIELD_MASK_FIELD_NUMBER: _ClassVar[int]
    STRUCT_VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    ANY_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_STRING_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_INT64_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_BOOL_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_DOUBLE_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_BYTES_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_INT32_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_UINT32_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_UINT64_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_FLOAT_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_JSON_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_INT32_FIELD_NUMBER: _ClassVar[int]
    REPEATED_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    BOOL_MAP_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int32_value: int
    int64_value: int
    uint32_value: int
    uint64_value: int
    sint32_value: int
    sint64_value: int
    fixed32_value: int
    fixed64_value: int
    sfixed32_value: int
    sfixed64_value: int
    float_value: float
    double_value: float
    bool_value: bool
    bytes_value: bytes
    color: Color
    nested: Nested
    repeated_string: _containers.RepeatedScalarFieldContainer[str]
    repeated_int64: _containers.RepeatedScalarFieldContainer[int]
    repeated_color: _containers.RepeatedScalarFieldContainer[Color]
    repeated_nested: _containers.RepeatedCompositeFieldContainer[Nested]
    string_map: _containers.ScalarMap[str, str]
    nested_map: _containers.MessageMap[int, Nested]
    choice_text: str
    choice_number: int
    choice_nested: Nested
    timestamp: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    field_mask: _field_mask_pb2.FieldMask
    struct_value: _struct_pb2.Struct
    value: _struct_pb2.Value
    list_value: _struct_pb2.ListValue
    any: _any_pb2.Any
    wrapped_string: _wrappers_pb2.StringValue
    wrapped_int64: _wrappers_pb2.Int64Value
    wrapped_bool: _wrappers_pb2.BoolValue
    wrapped_double: _wrappers_pb2.DoubleValue
    wrapped_bytes: _wrappers_pb2.BytesValue
    wrapped_int32: _wrappers_pb2.Int32Value
    wrapped_uint32: _wrappers_pb2.UInt32Value
    wrapped_uint64: _wrappers_pb2.UInt64Value
    wrapped_float: _wrappers_pb2.FloatValue
    custom_json: str
    optional_int32: int
    repeated_timestamp: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    bool_map: _containers.ScalarMap[bool, int]
    def __init__(self, string_value: _Optional[str] = ..., int32_value: _Optional[int] = ..., int64_value: _Optional[int] = ..., uint32_value: _Optional[int] = ..., uint64_value: _Optional[int] = ..., sint32_value: _Optional[int] = ..., sint64_value: _Optional[int] = ..., fixed32_value: _Optional[int] = ..., fixed64_value: _Optional[int] = ..., sfixed32_value: _Optional[int] = ..., sfixed64_value: _Optional[int] = ..., float_value: _Optional[float] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., bytes_value: _Optional[bytes] = ..., color: _Optional[_Union[Color, str]] = ..., nested: _Optional[_Union[Nested, _Mapping]] = ..., repeated_string: _Optional[_Iterable[str]] = ..., repeated_int64: _Optional[_Iterable[int]] = ..., repeated_color: _Optional[_Iterable[_Union[Color, str]]] = ..., repeated_nested: _Optional[_Iterable[_Union[Nested, _Mapping]]] = ..., string_map: _Optional[_Mapping[str, str]] = ..., nested_map: _Optional[_Mapping[int, Nested]] = ..., choice_text: _Optional[str] = ..., choice_number: _Optional[int] = ..., choice_nested: _Optional[_Union[Nested, _Mapping]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., field_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., struct_value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., list_value: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., any: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., wrapped_string: _Optional[_Union[_wrappers_pb2.StringValue, _Mapping]] = ..., wrapped_int64: _Optional[_Union[_wrappers_pb2.Int64Value, _Mapping]] = ..., wrapped_bool: _Optional[_Union[_wrappers_pb2.BoolValue, _Mapping]] = ..., wrapped_double: _Optional[_Union[_wrappers_pb2.DoubleValue, _Mapping]] = ..., wrapped_bytes: _Optional[_Union[_wrappers_pb2.BytesValue, _Mapping]] = ..., wrapped_int32: _Optional[_Union[_wrappers_pb2.Int32Value, _Mapping]] = ..., wrapped_uint32: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., wrapped_uint64: _Optional[_Union[_wrappers_pb2.UInt64Value, _Mapping]] = ..., wrapped_float: _Optional[_Union[_wrappers_pb2.FloatValue, _Mapping]] = ..., custom_json: _Optional[str] = ..., optional_int32: _Optional[int] = ..., repeated_timestamp: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., bool_map: _Optional[_Mapping[bool, int]] = ...) -> None: ...

class Book(_message.Message):
    __slots__ = ("name", "title", "author", "page_count", "publish_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    author: str
    page_count: int
    publish_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., author: _Optional[str] = ..., page_count: _Optional[int] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Shelf(_message.Message):
    __slots__ = ("name", "book_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOOK_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    book_count: int
    def __init__(self, name: _Optional[str] = ..., book_count: _Optional[int] = ...) -> None: ...

class GetBookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateBookRequest(_message.Message):
    __slots__ = ("book", "update_mask")
    BOOK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    book: Book
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, book: _Optional[_Union[Book, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteBookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BatchGetBooksRequest(_message.Message):
    __slots__ = ("parent", "names")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    parent: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, parent: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetBooksResponse(_message.Message):
    __slots__ = ("books",)
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    books: _containers.RepeatedCompositeFieldContainer[Book]
    def __init__(self, books: _Optional[_Iterable[_Union[Book, _Mapping]]] = ...) -> None: ...

class GetShelfRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetShelfStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBookAuthorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFileRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class DownloadCoverRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UploadCoverRequest(_message.Message):
    __slots__ = ("name", "cover")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COVER_FIELD_NUMBER: _ClassVar[int]
    name: str
    cover: _httpbody_pb2.HttpBody
    def __init__(self, name: _Optional[str] = ..., cover: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class UploadCoverResponse(_message.Message):
    __slots__ = ("name", "content_type", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    size: int
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class StreamBooksRequest(_message.Message):
    __slots__ = ("parent", "count", "fail_code")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FAIL_CODE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    count: int
    fail_code: int
    def __init__(self, parent: _Optional[str] = ..., count: _Optional[int] = ..., fail_code: _Optional[int] = ...) -> None: ...

class CollectBooksRequest(_message.Message):
    __slots__ = ("book",)
    BOOK_FIELD_NUMBER: _ClassVar[int]
    book: Book
    def __init__(self, book: _Optional[_Union[Book, _Mapping]] = ...) -> None: ...

class CollectBooksResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ChatBooksRequest(_message.Message):
    __slots__ = ("book",)
    BOOK_FIELD_NUMBER: _ClassVar[int]
    book: Book
    def __init__(self, book: _Optional[_Union[Book, _Mapping]] = ...) -> None: ...
