"""`python -m services.users` and `python -m services` as real processes: address out, signal in."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import grpc

from notifications.v1 import notifications_pb2, notifications_pb2_grpc
from tests.services.running import channel_stub
from users.v1 import users_pb2, users_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _address(process: asyncio.subprocess.Process, name: str) -> str:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert line.startswith(f"{name} listening on 127.0.0.1:"), line
    return line.split()[-1]


async def _stop(process: asyncio.subprocess.Process, signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_one_backend_runs_alone_and_stops_on_sigterm() -> None:
    process = await _start("services.users", "--port", "0")
    try:
        address = await _address(process, "users")
        async with channel_stub(address, users_pb2_grpc.UsersStub) as users:
            user = await users.GetUser(users_pb2.GetUserRequest(id="u-1001"), timeout=10)
        assert user.email == "ada.lovelace@example.com"
        code, err = await _stop(process, signal.SIGTERM)
        assert code == 0, err
        assert "Traceback" not in err
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def test_demo_trio_runs_in_one_process_and_stops_on_sigint() -> None:
    process = await _start("services", "--host", "127.0.0.1", "--users-port", "0",
                           "--orders-port", "0", "--notifications-port", "0")
    try:
        addresses = {name: await _address(process, name)
                     for name in ("users", "orders", "notifications")}
        assert len(set(addresses.values())) == 3
        stub_class = notifications_pb2_grpc.NotificationsStub
        async with channel_stub(addresses["notifications"], stub_class) as notifications:
            request = notifications_pb2.CountUnreadRequest(user_id="u-1001")
            assert (await notifications.CountUnread(request, timeout=10)).unread_count == 2
        code, err = await _stop(process, signal.SIGINT)
        assert code == 0, err
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def test_a_taken_port_is_reported_and_exits_nonzero() -> None:
    first = await _start("services.users", "--port", "0")
    try:
        port = (await _address(first, "users")).rsplit(":", 1)[1]
        second = await _start("services.orders", "--port", port)
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 1
        assert "bind" in err.decode() and "Traceback" not in err.decode()
    finally:
        await _stop(first, signal.SIGTERM)


async def test_grpc_is_reachable_only_while_running() -> None:
    process = await _start("services.users", "--port", "0")
    address = await _address(process, "users")
    await _stop(process, signal.SIGTERM)
    async with channel_stub(address, users_pb2_grpc.UsersStub) as users:
        try:
            await users.GetUser(users_pb2.GetUserRequest(id="u-1001"), timeout=2)
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE
        else:
            raise AssertionError("the stopped backend still answered")
