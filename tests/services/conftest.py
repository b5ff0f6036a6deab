"""Fixtures for the demo backends: each test gets fresh, real servers on 127.0.0.1:0 and stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from notifications.v1 import notifications_pb2_grpc
from orders.v1 import orders_pb2_grpc
from services.server import RunningBackend
from testing.v1 import transcoding_pb2_grpc
from tests.services.running import running, stub
from users.v1 import users_pb2_grpc


@pytest.fixture
async def users_backend() -> AsyncIterator[RunningBackend]:
    async with running("users") as backend:
        yield backend


@pytest.fixture
async def orders_backend() -> AsyncIterator[RunningBackend]:
    async with running("orders") as backend:
        yield backend


@pytest.fixture
async def notifications_backend() -> AsyncIterator[RunningBackend]:
    async with running("notifications") as backend:
        yield backend


@pytest.fixture
async def echo_backend() -> AsyncIterator[RunningBackend]:
    async with running("echo") as backend:
        yield backend


@pytest.fixture
async def users(users_backend: RunningBackend) -> AsyncIterator[Any]:
    async with stub(users_backend, users_pb2_grpc.UsersStub) as client:
        yield client


@pytest.fixture
async def orders(orders_backend: RunningBackend) -> AsyncIterator[Any]:
    async with stub(orders_backend, orders_pb2_grpc.OrdersStub) as client:
        yield client


@pytest.fixture
async def notifications(notifications_backend: RunningBackend) -> AsyncIterator[Any]:
    async with stub(notifications_backend, notifications_pb2_grpc.NotificationsStub) as client:
        yield client


@pytest.fixture
async def echo(echo_backend: RunningBackend) -> AsyncIterator[Any]:
    async with stub(echo_backend, transcoding_pb2_grpc.EchoStub) as client:
        yield client
