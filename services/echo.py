"""testing.v1.Echo, the conformance backend of the transcoder tests: echoes requests and serves a
few in-memory books (shelves/1/books/1..3, shelves/2/books/1). Remembers the last call's metadata.
"""

from __future__ import annotations

import copy
import struct
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import cast

import grpc
from google.api.httpbody_pb2 import HttpBody
from google.protobuf.empty_pb2 import Empty
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import code_pb2

from services.faults import Metadata, metadata_of
from services.seed import timestamp
from services.status import Context, failure, invalid_argument, not_found, require
from testing.v1 import transcoding_pb2 as pb
from testing.v1 import transcoding_pb2_grpc as pb_grpc

_RESOURCE = "testing.v1.Book"
_WRITABLE = ("title", "author", "page_count", "publish_time")
_MAX_STREAM = 10_000
_Add = Callable[["EchoService", grpc.aio.Server], None]


def _png() -> bytes:
    """A valid 1x1 PNG, so clients that decode the cover get a real image."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x33\x66\x99")  # filter byte + one RGB pixel
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


COVER = _png()


def _book(name: str, title: str, author: str, pages: int, year: int) -> pb.Book:
    return pb.Book(name=name, title=title, author=author, page_count=pages,
                   publish_time=timestamp(datetime(year, 1, 1, tzinfo=UTC)))


def initial_books() -> tuple[pb.Book, ...]:
    return (
        _book("shelves/1/books/1", "The Left Hand of Darkness", "Ursula K. Le Guin", 304, 1969),
        _book("shelves/1/books/2", "Dune", "Frank Herbert", 412, 1965),
        _book("shelves/1/books/3", "Kindred", "Octavia E. Butler", 264, 1979),
        _book("shelves/2/books/1", "Snow Crash", "Neal Stephenson", 480, 1992),
    )


class EchoService(pb_grpc.EchoServicer):
    service_name = pb.DESCRIPTOR.services_by_name["Echo"].full_name

    def __init__(self, books: Sequence[pb.Book] | None = None) -> None:
        initial = initial_books() if books is None else books
        self._books = {book.name: copy.deepcopy(book) for book in initial}
        self._shelves = sorted({name.rpartition("/books/")[0] for name in self._books})
        self.last_metadata: Metadata = {}

    def add_to(self, server: grpc.aio.Server) -> None:
        add = cast(_Add, pb_grpc.add_EchoServicer_to_server)  # generated code is untyped
        add(self, server)

    async def EchoKitchen(self, request: pb.EchoKitchenRequest,
                          context: Context) -> pb.EchoKitchenRequest:
        """Returns its request; metadata "echo-*" comes back as headers and "echo-*" trailers."""
        self._note(context)
        echoed = tuple((k, v) for k, v in context.invocation_metadata() or ()
                       if k.startswith("echo-"))
        if echoed:
            await context.send_initial_metadata(echoed)
            context.set_trailing_metadata(tuple((k + "-trailer", v) for k, v in echoed
                                                if not k.endswith("-bin")))
        return request

    async def GetBook(self, request: pb.GetBookRequest, context: Context) -> pb.Book:
        self._note(context)
        return copy.deepcopy(self._get(request.name))

    async def UpdateBook(self, request: pb.UpdateBookRequest, context: Context) -> pb.Book:
        self._note(context)
        paths = list(request.update_mask.paths) or list(_WRITABLE)
        unknown = [path for path in paths if path not in _WRITABLE]
        if unknown:
            raise invalid_argument(
                *(("update_mask", f'unknown or read-only field "{path}"') for path in unknown)
            )
        book = self._get(require(request.book.name, "book.name"))
        FieldMask(paths=paths).MergeMessage(request.book, book, replace_message_field=True)
        return copy.deepcopy(book)

    async def DeleteBook(self, request: pb.DeleteBookRequest, context: Context) -> Empty:
        self._note(context)
        del self._books[self._get(request.name).name]
        return Empty()

    async def BatchGetBooks(self, request: pb.BatchGetBooksRequest,
                            context: Context) -> pb.BatchGetBooksResponse:
        self._note(context)
        parent = self._shelf(request.parent, "parent")
        outside = [(f"names[{i}]", f'"{name}" is not a book of {parent}')
                   for i, name in enumerate(request.names)
                   if not name.startswith(f"{parent}/books/")]
        if outside:
            raise invalid_argument(*outside)
        return pb.BatchGetBooksResponse(books=[self._get(name) for name in request.names])

    async def GetShelf(self, request: pb.GetShelfRequest, context: Context) -> pb.Shelf:
        self._note(context)
        name = self._shelf(request.name, "name")
        count = sum(book.startswith(f"{name}/books/") for book in self._books)
        return pb.Shelf(name=name, book_count=count)

    async def GetShelfStats(self, request: pb.GetShelfStatsRequest, context: Context) -> pb.Shelf:
        self._note(context)
        return pb.Shelf(name="shelves/stats", book_count=len(self._books))

    async def GetBookAuthor(self, request: pb.GetBookAuthorRequest, context: Context) -> pb.Book:
        self._note(context)
        return copy.deepcopy(self._get(request.name))

    async def GetFile(self, request: pb.GetFileRequest, context: Context) -> pb.GetFileRequest:
        self._note(context)
        return request

    async def DownloadCover(self, request: pb.DownloadCoverRequest, context: Context) -> HttpBody:
        self._note(context)
        self._get(request.name)
        return HttpBody(content_type="image/png", data=COVER)

    async def UploadCover(self, request: pb.UploadCoverRequest,
                          context: Context) -> pb.UploadCoverResponse:
        self._note(context)
        book = self._get(request.name)
        return pb.UploadCoverResponse(
            name=book.name, content_type=request.cover.content_type, size=len(request.cover.data)
        )

    async def StreamBooks(self, request: pb.StreamBooksRequest,
                          context: Context) -> AsyncIterator[pb.Book]:
        self._note(context)
        if not 0 <= request.count <= _MAX_STREAM:
            raise invalid_argument(("count", f"must be between 0 and {_MAX_STREAM}"))
        if not code_pb2.OK <= request.fail_code <= code_pb2.UNAUTHENTICATED:
            raise invalid_argument(("fail_code", "must be 0 or a gRPC status code (1-16)"))
        parent = request.parent or "shelves/1"
        for i in range(1, request.count + 1):
            yield pb.Book(name=f"{parent}/books/{i}", title=f"Book {i}", page_count=100 + i)
        if request.fail_code:
            raise failure(request.fail_code, f"failed after {request.count} books, as asked")

    async def CollectBooks(self, request_iterator: AsyncIterable[pb.CollectBooksRequest],
                           context: Context) -> pb.CollectBooksResponse:
        self._note(context)
        count = 0
        async for _ in request_iterator:
            count += 1
        return pb.CollectBooksResponse(count=count)

    async def ChatBooks(self, request_iterator: AsyncIterable[pb.ChatBooksRequest],
                        context: Context) -> AsyncIterator[pb.ChatBooksRequest]:
        self._note(context)
        async for request in request_iterator:
            yield request

    def _note(self, context: Context) -> None:
        self.last_metadata = metadata_of(context)

    def _get(self, name: str) -> pb.Book:
        book = self._books.get(require(name, "name"))
        if book is None:
            raise not_found("book", name, _RESOURCE)
        return book

    def _shelf(self, name: str, field: str) -> str:
        if require(name, field) not in self._shelves:
            raise not_found("shelf", name, "testing.v1.Shelf")
        return name


if __name__ == "__main__":
    from services.cli import main

    main(["echo"])
