"""grpc-gateway v2 (Go) on the users.v1 protos: built from the Go module proxy when a Go
toolchain is present. Placeholder until the peer lands: it reports itself unavailable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.scenarios import Launch


def unavailable() -> str | None:
    return "the grpc-gateway peer is not built yet"


def argv(launch: Launch) -> list[str]:
    raise NotImplementedError
