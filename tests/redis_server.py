"""A real redis-server on a free loopback TCP port, started and stopped by PID."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_redis(timeout_s: float = 10.0) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/setup.sh --test")
    for _ in range(5):  # the free port may be taken between probe and bind: try another
        port = free_port()
        with tempfile.TemporaryDirectory() as workdir:
            process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", workdir, "--logfile", ""],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            try:
                if _wait_ready(process, timeout_s):
                    yield RedisServer("127.0.0.1", port, process.pid)
                    return
            finally:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if process.stdout:
                    process.stdout.close()
    raise RuntimeError("redis-server did not start on any free port")


def _wait_ready(process: subprocess.Popen[str], timeout_s: float) -> bool:
    """Read redis' own log until it says it is ready (no polling, no sleeps)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    for line in process.stdout:
        if "Ready to accept connections" in line:
            return True
        if time.monotonic() > deadline:
            break
    return False
