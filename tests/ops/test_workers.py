"""`serve --workers N` heals itself: a worker killed under load (SIGKILL) is started again and
serves within 2 s while the other serves on; a second gateway on the ports a running one
holds fails at start with one line instead of splitting the traffic (SO_REUSEPORT); the
supervisor gives up only on a crash loop, or at once when a worker cannot start (exit 2)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.worker_kill import Tally, get_until
from gateway.config import GatewayConfig, load
from gateway.startup_errors import StartError
from gateway.workers import Restarts, reserve_ports, supervise
from tests.ops.conftest import (
    exit_code,
    gateway_config,
    read_lines,
    serve_process,
    started_backends,
    write_config,
)

REST = r"gateway REST on http://127\.0\.0\.1:(\d+) \(worker {}, pid (\d+)\)"
GRPC = r"gateway gRPC on 127\.0\.0\.1:(\d+) \(worker {}, pid (\d+)\)"


async def test_a_killed_worker_is_started_again_and_serves_within_2_s(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    async with started_backends("users") as backends:
        write_config(path, gateway_config(backends))
        async with serve_process(path, "--workers", "2") as process:
            first, second = await read_lines(process.stdout, [REST.format(0), REST.format(1)])
            url = f"http://127.0.0.1:{first.group(1)}/v1/users/u-1001"
            tally = Tally()
            done = asyncio.Event()
            # Fresh connections: the kernel spreads them over both workers.
            loaders = [asyncio.create_task(get_until(url, done, tally, fresh_connections=True))
                       for _ in range(4)]
            await until(lambda: tally.served >= 50)  # under load
            os.kill(int(first.group(2)), signal.SIGKILL)
            killed = time.monotonic()
            (again,) = await read_lines(process.stdout, [REST.format(0)], timeout_s=10)
            replaced_s = time.monotonic() - killed
            assert again.group(1) == first.group(1)  # the same port
            assert again.group(2) not in (first.group(2), second.group(2))
            target = tally.served + 100
            await until(lambda: tally.served >= target)
            done.set()
            await asyncio.gather(*loaders)
            assert replaced_s < 2.0, replaced_s
            served, failed = tally.served, tally.failed
            assert served / (served + failed) >= 0.97, (served, failed)
            assert process.returncode is None  # the supervisor and the other worker live on
            os.kill(int(second.group(2)), 0)
            process.send_signal(signal.SIGTERM)
            assert await exit_code(process) == 0


async def test_a_second_gateway_on_the_same_ports_fails_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    async with started_backends("users") as backends:
        write_config(path, gateway_config(backends))
        async with serve_process(path, "--workers", "2") as first:
            rest, grpc = await read_lines(first.stdout, [REST.format(0), GRPC.format(0)])
            listen = {"rest": {"host": "127.0.0.1", "port": int(rest.group(1))},
                      "grpc": {"host": "127.0.0.1", "port": int(grpc.group(1))},
                      "ops": {"host": "127.0.0.1", "port": 0}}
            second_path = tmp_path / "second.yaml"
            write_config(second_path, gateway_config(backends, listen=listen))
            for args in ((), ("--workers", "2")):
                async with serve_process(second_path, *args) as second:
                    _, stderr = await asyncio.wait_for(second.communicate(), 30)
                    assert second.returncode == 2, stderr
                    lines = stderr.decode().strip().splitlines()
                    assert len(lines) == 1, lines
                    assert lines[0] == (f"gateway: listen.rest: cannot listen on "
                                        f"127.0.0.1:{rest.group(1)}: address already in use")
            first.send_signal(signal.SIGTERM)
            assert await exit_code(first) == 0


async def until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    """Poll a condition the load tasks change, with a bounded deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def test_a_crash_loop_stops_the_supervisor_naming_it(
        caplog: pytest.LogCaptureFixture) -> None:
    dies = _python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    waits = _python("import signal, time; signal.signal(signal.SIGTERM, lambda *_: exit(0));"
                    " time.sleep(60)")
    restarts = Restarts(crash_loop_deaths=3, crash_loop_window_s=60, base_backoff_s=0.01)
    with caplog.at_level(logging.INFO, "gateway.workers"):
        started = time.monotonic()
        assert await asyncio.wait_for(supervise([dies, waits], restarts), 20) == 1
    assert time.monotonic() - started < 15  # the waiting worker was stopped, not waited for
    said = [r.getMessage() for r in caplog.records]
    assert sum("starting it again" in line for line in said) == 2, said
    assert any(line.startswith("supervisor: crash loop: 3 worker deaths in 60 s, the last "
                               "worker 0") and "killed by SIGKILL" in line for line in said), said


async def test_a_worker_that_cannot_start_stops_the_supervisor_with_2(
        caplog: pytest.LogCaptureFixture) -> None:
    cannot = _python("import sys; sys.exit(2)")
    waits = _python("import time; time.sleep(60)")
    with caplog.at_level(logging.INFO, "gateway.workers"):
        assert await asyncio.wait_for(supervise([waits, cannot]), 20) == 2
    said = [r.getMessage() for r in caplog.records]
    assert not any("starting it again" in line for line in said), said
    assert any("worker 1" in line and "could not start (exited with code 2)" in line
               for line in said), said


async def test_a_replacement_that_cannot_start_is_a_death_like_any_other(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "started-once"
    first_killed_then_exit_2 = _python(
        f"import os, signal, sys, pathlib; p = pathlib.Path({str(marker)!r})\n"
        "if p.exists(): sys.exit(2)\n"
        "p.touch(); os.kill(os.getpid(), signal.SIGKILL)")
    restarts = Restarts(crash_loop_deaths=3, crash_loop_window_s=60, base_backoff_s=0.01)
    with caplog.at_level(logging.INFO, "gateway.workers"):
        assert await asyncio.wait_for(supervise([first_killed_then_exit_2], restarts), 20) == 1
    said = [r.getMessage() for r in caplog.records]
    assert any("exited with code 2; starting it again" in line for line in said), said
    assert any(line.startswith("supervisor: crash loop: 3 worker deaths") for line in said), said


def _config_on(port: int) -> GatewayConfig:
    return load({"listen": {"rest": {"host": "127.0.0.1", "port": port}, "grpc": None},
                 "descriptors": {"descriptor_set": "x.binpb"},
                 "backends": {"u": {"services": ["u.U"], "addresses": ["127.0.0.1:9"]}}})


def test_a_port_another_supervisor_reserved_is_refused_before_its_workers_listen() -> None:
    ports, held = reserve_ports(_config_on(0))  # bound with SO_REUSEPORT, not listening yet
    try:
        with pytest.raises(StartError, match="address already in use"):
            reserve_ports(_config_on(ports["rest"]))
    finally:
        for sock in held:
            sock.close()


def test_connections_of_an_earlier_process_in_time_wait_do_not_stop_a_start() -> None:
    with socket.socket() as server:  # a plain listener (no SO_REUSEPORT), as `serve` without
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # workers binds
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: TIME_WAIT on its port
            client.recv(1)
    _, held = reserve_ports(_config_on(port))
    for sock in held:
        sock.close()


async def test_a_stop_while_a_restart_waits_is_a_clean_stop(
        caplog: pytest.LogCaptureFixture) -> None:
    dies = _python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    restarts = Restarts(base_backoff_s=30, max_backoff_s=30)  # a restart waits half a minute
    with caplog.at_level(logging.INFO, "gateway.workers"):
        supervisor = asyncio.create_task(supervise([dies], restarts))
        await until(lambda: any("starting it again in 30.00 s" in r.getMessage()
                                for r in caplog.records))
        os.kill(os.getpid(), signal.SIGTERM)  # handled by supervise() on this loop
        assert await asyncio.wait_for(supervisor, 5) == 0
