"""The default stack: every backend, the gateway with default settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.stack import Stack, running_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(
        transcoding={"success_status": {"/users.v1.Users/CreateUser": 201,
                                        "/users.v1.Users/DeleteUser": 204}},
    ) as running:
        yield running
