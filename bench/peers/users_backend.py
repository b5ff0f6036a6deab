"""The Go (grpc-go) users backend: bench/peers/users-backend, built on first use into
bench/out/peers/users-backend. It answers GetUser with the bytes this module writes from
services.seed (the Users as the Python backend serializes them, map entries in key order), so
its replies are the Python backend's byte for byte up to the order of map entries, which the
Python backend itself varies per process; the runner checks one reply's bytes before it loads
a scenario (bench.check.check_user_bytes).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from bench.peers.gobuild import GoProgram
from services.seed import seed

if TYPE_CHECKING:
    from bench.scenarios import Launch

PROGRAM = GoProgram("users-backend", lambda: [Path(__file__)])
SEED_FILE = "users.seed"  # in bench/out


@functools.cache
def unavailable() -> str | None:
    """None when the binary is built and current (building it first if needed), else why not."""
    return PROGRAM.unavailable()


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int (the length prefix of each User)."""
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | value & 0x7F)
        value >>= 7
    return bytes(out + bytes([value]))


def seed_bytes() -> bytes:
    """Every seed User, serialized as the Python backend does (deterministically: map entries
    in key order), each varint-length-prefixed."""
    users = (user.SerializeToString(deterministic=True) for user in seed().users)
    return b"".join(varint(len(data)) + data for data in users)


def argv(launch: Launch) -> list[str]:
    path = launch.out / SEED_FILE
    path.write_bytes(seed_bytes())
    return [str(PROGRAM.binary), "-port", "0", "-seed", str(path)]

