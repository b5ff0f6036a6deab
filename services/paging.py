"""List paging for the demo backends: page_size rules and opaque, tamper-proof page tokens.

A token is urlsafe base64 of (offset, HMAC of offset and query scope): a token made up by the
client, or one replayed against a different query, is INVALID_ARGUMENT "invalid page_token".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from services.status import invalid_argument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_MAC_BYTES = 12


class Pager:
    """Cuts sequences into pages; tokens are signed with a key private to this instance."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def page(self, items: Sequence[T], page_size: int, page_token: str,
             scope: str) -> tuple[list[T], str]:
        """One page of `items` and the token of the next ("" on the last page)."""
        size = check_page_size(page_size)
        start = self.decode(page_token, scope) if page_token else 0
        end = start + size
        next_token = self.encode(end, scope) if end < len(items) else ""
        return list(items[start:end]), next_token

    def encode(self, offset: int, scope: str) -> str:
        payload = struct.pack(">I", offset)
        raw = payload + self._mac(payload, scope)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, token: str, scope: str) -> int:
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise _invalid_token() from None
        payload, mac = raw[:4], raw[4:]
        if len(raw) != 4 + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload, scope)):
            raise _invalid_token()
        offset: int = struct.unpack(">I", payload)[0]
        return offset

    def _mac(self, payload: bytes, scope: str) -> bytes:
        message = scope.encode() + b"\0" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]


class Dated(Protocol):
    @property
    def id(self) -> str: ...  # "o-5012"

    @property
    def create_time(self) -> Timestamp: ...


D = TypeVar("D", bound=Dated)


def newest_first(items: Iterable[D]) -> list[D]:
    """By create_time, then by the number in the id ("o-5012" before "o-5009"), newest first."""
    return sorted(items, key=_age, reverse=True)


def _age(item: Dated) -> tuple[int, int]:
    return item.create_time.ToNanoseconds(), int(item.id.partition("-")[2])


def check_page_size(page_size: int) -> int:
    """The effective page size: 0 means the default; 1..100 as given; anything else is invalid."""
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid_argument(
            ("page_size", f"must be between 0 and {MAX_PAGE_SIZE}, got {page_size}")
        )
    return page_size


def _invalid_token() -> Exception:
    return invalid_argument(("page_token", "invalid page_token"))
