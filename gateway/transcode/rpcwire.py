"""The wire rules of Connect and gRPC-Web over HTTP/1.1: pure functions, no I/O.

Both protocols carry serialized messages in 5-byte envelopes (one flag byte, a big-endian
uint32 length, the data); they differ in what the last envelope says and how errors look:

    Connect   unary: the bare message as the body, errors as JSON with an HTTP status
              (connectrpc.com/docs/protocol); streams: envelopes, then an end-of-stream
              envelope (flag 0x02) holding {"error": ..., "metadata": ...}
    gRPC-Web  envelopes, then a trailers envelope (flag 0x80) holding "grpc-status: 0\\r\\n...";
              the -text variant is the same bytes in base64

Every malformed input raises InvalidArgument (or PayloadTooLarge over the cap) naming it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Final
from urllib.parse import quote

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from gateway.errors import Code, GatewayError, InvalidArgument, PayloadTooLarge, Unimplemented

FLAG_COMPRESSED: Final = 0x01
FLAG_END_STREAM: Final = 0x02  # Connect's end-of-stream message
FLAG_TRAILERS: Final = 0x80  # gRPC-Web's trailers frame
HEADER_SIZE: Final = 5

# Connect's names for the codes: lower snake case, "canceled" with one l.
CONNECT_CODE: Final = MappingProxyType({
    code: ("canceled" if code is Code.CANCELLED else code.name.lower()) for code in Code
})
# connectrpc.com/docs/protocol#error-codes: the HTTP status of a unary error.
CONNECT_HTTP_STATUS: Final = MappingProxyType({
    Code.CANCELLED: 499, Code.UNKNOWN: 500, Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504, Code.NOT_FOUND: 404, Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403, Code.RESOURCE_EXHAUSTED: 429, Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409, Code.OUT_OF_RANGE: 400, Code.UNIMPLEMENTED: 501, Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503, Code.DATA_LOSS: 500, Code.UNAUTHENTICATED: 401,
})
# A Connect client reading an error status with no JSON body derives the code from it.
_CONNECT_TIMEOUT: Final = re.compile(r"[0-9]{1,10}")
_GRPC_MESSAGE_SAFE: Final = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
ENCODINGS: Final = ("gzip",)  # besides identity


def envelope(data: bytes, flags: int = 0) -> bytes:
    return bytes((flags,)) + len(data).to_bytes(4, "big") + data


def split_envelopes(body: bytes, max_message: int) -> list[tuple[int, bytes]]:
    """Every (flags, data) of a whole body of envelopes. InvalidArgument when a frame is cut
    short; PayloadTooLarge when one declares more than max_message bytes (before reading it)."""
    frames: list[tuple[int, bytes]] = []
    offset, size = 0, len(body)
    while offset < size:
        if size - offset < HEADER_SIZE:
            raise InvalidArgument(
                f"malformed envelope: {size - offset} bytes left where a 5-byte prefix is due")
        flags = body[offset]
        length = int.from_bytes(body[offset + 1:offset + HEADER_SIZE], "big")
        if length > max_message:
            raise PayloadTooLarge(
                f"envelope declares {length} bytes, over the {max_message}-byte limit")
        start = offset + HEADER_SIZE
        if size - start < length:
            raise InvalidArgument(
                f"malformed envelope: declares {length} bytes, {size - start} follow")
        frames.append((flags, body[start:start + length]))
        offset = start + length
    return frames


def single_message(frames: Sequence[tuple[int, bytes]], encoding: str, max_message: int,
                   protocol: str) -> bytes:
    """The one request message of a unary or server-streaming call sent in envelopes.

    The codes are gRPC's (and connect-go's): a count other than one is UNIMPLEMENTED (the
    method does not take a request stream), a compressed flag without an encoding INTERNAL."""
    if len(frames) != 1:
        raise Unimplemented(f"{protocol}: want exactly one request message, got {len(frames)}")
    flags, data = frames[0]
    if flags & ~FLAG_COMPRESSED:
        raise InvalidArgument(f"{protocol}: request envelope has unknown flags 0x{flags:02x}")
    if flags & FLAG_COMPRESSED:
        if encoding == "identity":
            raise GatewayError(f"{protocol}: compressed envelope but no message encoding")
        return decompress(data, encoding, max_message)
    return data


def check_encoding(name: str, header: str) -> str:
    """`name` as an encoding this gateway reads; Unimplemented for any other."""
    encoding = name.strip().lower() or "identity"
    if encoding != "identity" and encoding not in ENCODINGS:
        raise Unimplemented(f"{header} {encoding[:32]!r} is not supported "
                            f"(supported: identity, {', '.join(ENCODINGS)})")
    return encoding


def decompress(data: bytes, encoding: str, max_size: int) -> bytes:
    """gzip-decoded `data`, never inflating past max_size (a small bomb stays small)."""
    if encoding == "identity":
        return data
    inflater = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
    try:
        out = inflater.decompress(data, max_size + 1)
    except zlib.error:
        raise InvalidArgument(f"message is not valid {encoding}") from None
    if len(out) > max_size:
        raise PayloadTooLarge(f"decompressed message exceeds the {max_size}-byte limit")
    if not inflater.eof:
        raise InvalidArgument(f"message is not valid {encoding}: it is cut short")
    return out


def compress(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def accepts(header: str, encoding: str) -> bool:
    """Whether an Accept-Encoding-style list names `encoding` (q=0 excluded)."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() == encoding and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def connect_timeout(text: str) -> float:
    """`Connect-Timeout-Ms` in seconds: 1-10 ASCII digits, else InvalidArgument."""
    if _CONNECT_TIMEOUT.fullmatch(text) is None:
        raise InvalidArgument(
            f"invalid connect-timeout-ms {text[:32]!r}: want 1-10 digits of milliseconds")
    return int(text) / 1000.0


def decode_base64_text(body: bytes) -> bytes:
    """A grpc-web-text body: base64, possibly several padded chunks one after another."""
    text = b"".join(body.split())  # line breaks and spaces are not base64: drop them first
    out = bytearray()
    try:
        for chunk in re.findall(rb"[^=]*=*", text):
            if chunk:
                out += base64.b64decode(chunk, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("grpc-web-text: body is not valid base64") from None
    return bytes(out)


def details_of(error: GatewayError) -> list[tuple[str, bytes]]:
    """(type url, value) of each google.protobuf.Any in the error's details."""
    found = []
    for raw in error.details:
        detail = any_pb2.Any()
        try:
            detail.ParseFromString(raw)
        except DecodeError:
            continue
        found.append((detail.type_url, detail.value))
    return found


def connect_error(error: GatewayError) -> dict[str, object]:
    """Connect's error JSON: code by name, message, details as {type, value (base64)}."""
    body: dict[str, object] = {"code": CONNECT_CODE[error.code]}
    if error.message:
        body["message"] = error.message
    details = [
        {"type": type_url.rpartition("/")[2],
         "value": base64.b64encode(value).decode("ascii").rstrip("=")}
        for type_url, value in details_of(error)
    ]
    if details:
        body["details"] = details
    return body


def connect_http_status(error: GatewayError) -> int:
    return CONNECT_HTTP_STATUS[error.code]


def end_stream(error: GatewayError | None,
               trailers: Iterable[tuple[str, str]] = ()) -> dict[str, object]:
    """The JSON of Connect's end-of-stream message."""
    body: dict[str, object] = {}
    if error is not None:
        body["error"] = connect_error(error)
    metadata: dict[str, list[str]] = {}
    for key, value in trailers:
        metadata.setdefault(key, []).append(value)
    if metadata:
        body["metadata"] = metadata
    return body


def grpc_message(text: str) -> str:
    """grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md)."""
    return quote(text, safe=_GRPC_MESSAGE_SAFE)


def grpc_status_fields(error: GatewayError | None) -> list[tuple[str, str]]:
    """grpc-status, grpc-message and grpc-status-details-bin of a call's end."""
    if error is None:
        return [("grpc-status", "0")]
    fields = [("grpc-status", str(int(error.code))), ("grpc-message", grpc_message(error.message))]
    if error.details:
        status = status_pb2.Status(code=int(error.code), message=error.message,
                                   details=[any_pb2.Any.FromString(d) for d in error.details])
        fields.append(("grpc-status-details-bin",
                       base64.b64encode(status.SerializeToString()).decode("ascii").rstrip("=")))
    return fields


def grpc_web_trailers(fields: Iterable[tuple[str, str]]) -> bytes:
    """The gRPC-Web trailers frame: HTTP/1-style header lines in an 0x80 envelope."""
    block = "".join(f"{key}: {value}\r\n" for key, value in fields)
    return envelope(block.encode("ascii"), FLAG_TRAILERS)
