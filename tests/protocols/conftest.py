"""A real gateway (REST listener with Connect and gRPC-Web) in front of the real demo backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.stack import Stack, running_stack

ORIGIN = "http://app.example"


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(cors={"allow_origins": [ORIGIN]},
                             transcoding={"max_body_bytes": 64 * 1024}) as running:
        yield running
