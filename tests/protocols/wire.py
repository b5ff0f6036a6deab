"""Test-side framing, written out from the protocol documents (not gateway.transcode.rpcwire),
so the tests check the gateway against the wire rules rather than against itself."""

from __future__ import annotations

import json
import struct
from typing import Any


def frame(data: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def frames(body: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset < len(body):
        flags, length = struct.unpack(">BI", body[offset:offset + 5])
        out.append((flags, body[offset + 5:offset + 5 + length]))
        offset += 5 + length
    assert offset == len(body), "trailing bytes after the last frame"
    return out


def end_stream(body: bytes) -> tuple[list[bytes], dict[str, Any]]:
    """Connect streaming body -> (messages, end-of-stream JSON)."""
    found = frames(body)
    assert found and found[-1][0] == 0x02, f"no end-of-stream message: {found[-1:]}"
    assert all(flags == 0 for flags, _ in found[:-1])
    return [data for _, data in found[:-1]], json.loads(found[-1][1])


def grpc_web(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """gRPC-Web body -> (messages, trailers)."""
    found = frames(body)
    assert found and found[-1][0] == 0x80, f"no trailers frame: {found[-1:]}"
    trailers = {}
    for line in found[-1][1].decode("ascii").split("\r\n"):
        if line:
            key, _, value = line.partition(":")
            trailers[key.strip().lower()] = value.strip()
    return [data for _, data in found[:-1]], trailers
