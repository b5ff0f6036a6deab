"""Session-wide fixtures: the real redis-server, the loaded demo schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.transcode.schema import Schema, load_schema
from tests.redis_server import RedisServer, running_redis

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR_SET = ROOT / "generated" / "descriptors.binpb"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def schema() -> Schema:
    return load_schema(DESCRIPTOR_SET.read_bytes())
