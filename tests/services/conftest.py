"""Fixtures for the demo backends: each test gets fresh, real servers on 127.0.0.1:0 and stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from notifications.v1 import notifications_pb2_grpc
from orders.v1 import orders_pb2_grpc
from services.server import RunningBackend, start_backend
from testing.v1 import transcoding_pb2_grpc
from users.v1 import users_pb2_grpc


@asynccontextmanager
async def _running(name: str) -> AsyncIterator[RunningBackend]:
    backend = await start_backend(name)
    try:
        yield backend
    finally:
        await backend.stop()


@asynccontextmanager
async def _stub(backend: RunningBackend, stub_class: Any) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(backend.address) as channel:
        yield stub_class(channel)


@pytest.fixture
async def users_backend() -> AsyncIterator[RunningBackend]:
    async with _running("users") as backend:
        yield backend


@pytest.fixture
async def orders_backend() -> AsyncIterator[RunningBackend]:
    async with _running("orders") as backend:
        yield backend


@pytest.fixture
async def notifications_backend() -> AsyncIterator[RunningBackend]:
    async with _running("notifications") as backend:
        yield backend


@pytest.fixture
async def echo_backend() -> AsyncIterator[RunningBackend]:
    async with _running("echo") as backend:
        yield backend


@pytest.fixture
async def users(users_backend: RunningBackend) -> AsyncIterator[Any]:
    async with _stub(users_backend, users_pb2_grpc.UsersStub) as stub:
        yield stub


@pytest.fixture
async def orders(orders_backend: RunningBackend) -> AsyncIterator[Any]:
    async with _stub(orders_backend, orders_pb2_grpc.OrdersStub) as stub:
        yield stub


@pytest.fixture
async def notifications(notifications_backend: RunningBackend) -> AsyncIterator[Any]:
    async with _stub(notifications_backend, notifications_pb2_grpc.NotificationsStub) as stub:
        yield stub


@pytest.fixture
async def echo(echo_backend: RunningBackend) -> AsyncIterator[Any]:
    async with _stub(echo_backend, transcoding_pb2_grpc.EchoStub) as stub:
        yield stub
