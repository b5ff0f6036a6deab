"""testing.v1.Echo over a real channel: echoes, book resources, HttpBody and every stream kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.struct_pb2 import Struct

from services.echo import EchoService
from services.server import RunningBackend
from testing.v1 import transcoding_pb2 as pb
from tests.services.rich import message, rpc_error, violated_fields


async def test_echo_kitchen_returns_its_request(echo: Any) -> None:
    request = pb.EchoKitchenRequest(
        string_value="héllo", int64_value=-(2**62), uint64_value=2**64 - 1, bytes_value=b"\0\xff",
        color=pb.COLOR_BLUE, nested=pb.Nested(label="a", child=pb.Nested(count=2)),
        repeated_int64=[1, 2], string_map={"k": "v"}, nested_map={7: pb.Nested(label="m")},
        choice_number=5, struct_value=Struct(fields={}), optional_int32=0,
    )
    request.struct_value.update({"x": [1, "two", None]})
    assert await echo.EchoKitchen(request) == request


async def test_books_and_shelves(echo: Any) -> None:
    book = await echo.GetBook(pb.GetBookRequest(name="shelves/1/books/2"))
    assert (book.title, book.author) == ("Dune", "Frank Herbert")
    author = await echo.GetBookAuthor(pb.GetBookAuthorRequest(name="shelves/1/books/2"))
    assert author == book
    assert await echo.GetShelf(pb.GetShelfRequest(name="shelves/1")) == pb.Shelf(
        name="shelves/1", book_count=3
    )
    stats = await echo.GetShelfStats(pb.GetShelfStatsRequest())
    assert stats.book_count == 4
    error = await rpc_error(echo.GetBook(pb.GetBookRequest(name="shelves/1/books/9")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert message(error) == 'book "shelves/1/books/9" not found'
    error = await rpc_error(echo.GetShelf(pb.GetShelfRequest(name="shelves/7")))
    assert message(error) == 'shelf "shelves/7" not found'


async def test_batch_get_books(echo: Any) -> None:
    names = ["shelves/1/books/3", "shelves/1/books/1"]
    reply = await echo.BatchGetBooks(pb.BatchGetBooksRequest(parent="shelves/1", names=names))
    assert [book.name for book in reply.books] == names
    outside = pb.BatchGetBooksRequest(parent="shelves/1", names=["shelves/2/books/1"])
    assert violated_fields(await rpc_error(echo.BatchGetBooks(outside))) == ["names[0]"]


async def test_update_and_delete_book(echo: Any) -> None:
    updated = await echo.UpdateBook(pb.UpdateBookRequest(
        book=pb.Book(name="shelves/1/books/1", title="The Dispossessed", author="nobody"),
        update_mask=FieldMask(paths=["title"]),
    ))
    assert (updated.title, updated.author) == ("The Dispossessed", "Ursula K. Le Guin")
    bad = pb.UpdateBookRequest(book=pb.Book(name="shelves/1/books/1"),
                               update_mask=FieldMask(paths=["name"]))
    assert violated_fields(await rpc_error(echo.UpdateBook(bad))) == ["update_mask"]

    await echo.DeleteBook(pb.DeleteBookRequest(name="shelves/1/books/1"))
    error = await rpc_error(echo.DeleteBook(pb.DeleteBookRequest(name="shelves/1/books/1")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert (await echo.GetShelf(pb.GetShelfRequest(name="shelves/1"))).book_count == 2


async def test_files_and_covers(echo: Any) -> None:
    request = pb.GetFileRequest(path="a/b/c.txt")
    assert await echo.GetFile(request) == request
    cover = await echo.DownloadCover(pb.DownloadCoverRequest(name="shelves/1/books/1"))
    assert cover.content_type == "image/png"
    assert cover.data.startswith(b"\x89PNG\r\n\x1a\n")
    upload = pb.UploadCoverRequest(name="shelves/1/books/1")
    upload.cover.content_type = "image/jpeg"
    upload.cover.data = b"\xff\xd8" * 50
    reply = await echo.UploadCover(upload)
    assert (reply.name, reply.content_type, reply.size) == ("shelves/1/books/1", "image/jpeg", 100)


async def test_stream_books_sends_count_books(echo: Any) -> None:
    call = echo.StreamBooks(pb.StreamBooksRequest(parent="shelves/2", count=3), timeout=10)
    books = [book async for book in call]
    assert [book.name for book in books] == [f"shelves/2/books/{i}" for i in (1, 2, 3)]
    assert await call.code() is grpc.StatusCode.OK


async def test_stream_books_fails_after_the_books_with_fail_code(echo: Any) -> None:
    call = echo.StreamBooks(pb.StreamBooksRequest(count=2, fail_code=14), timeout=10)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for book in call:
            received.append(book.name)
    assert received == ["shelves/1/books/1", "shelves/1/books/2"]
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_stream_books_rejects_bad_fail_code(echo: Any) -> None:
    call = echo.StreamBooks(pb.StreamBooksRequest(count=1, fail_code=99), timeout=10)
    assert violated_fields(await rpc_error(call.read())) == ["fail_code"]


async def _books(count: int, wrap: Any) -> AsyncIterator[Any]:
    for i in range(count):
        yield wrap(book=pb.Book(name=f"shelves/1/books/{i}"))


async def test_collect_books_counts(echo: Any) -> None:
    reply = await echo.CollectBooks(_books(5, pb.CollectBooksRequest), timeout=10)
    assert reply.count == 5


async def test_chat_books_echoes_each(echo: Any) -> None:
    call = echo.ChatBooks(timeout=10)
    for i in range(3):
        sent = pb.ChatBooksRequest(book=pb.Book(name=f"shelves/1/books/{i}"))
        await call.write(sent)
        assert await call.read() == sent  # one answer per message, before the next is sent
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF


async def test_last_metadata_is_exposed(echo_backend: RunningBackend, echo: Any) -> None:
    service = echo_backend.servicers[0]
    assert isinstance(service, EchoService)
    await echo.GetFile(pb.GetFileRequest(path="x"),
                       metadata=(("x-user-id", "u-1"), ("x-trace-bin", b"\x01\x02")))
    assert service.last_metadata["x-user-id"] == ["u-1"]
    assert service.last_metadata["x-trace-bin"] == [b"\x01\x02"]
