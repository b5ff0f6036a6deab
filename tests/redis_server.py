"""Real Redis on free loopback TCP ports, started and stopped by PID: one server, a 3-node
Redis Cluster (`redis-cli --cluster create`), a Sentinel (`redis-server --sentinel`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path


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
def running_redis(timeout_s: float = 10.0, *extra: str) -> Iterator[RedisServer]:
    """One redis-server; `extra` arguments go on its command line (e.g. cluster mode)."""
    binary = _binary("redis-server")
    for _ in range(5):  # the free port may be taken between probe and bind: try another
        port = free_port()
        with tempfile.TemporaryDirectory() as workdir:
            process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", workdir, "--logfile", "", *extra],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            try:
                if _wait_for(process, "Ready to accept connections", timeout_s):
                    yield RedisServer("127.0.0.1", port, process.pid)
                    return
            finally:
                _stop(process)
    raise RuntimeError("redis-server did not start on any free port")


@contextmanager
def running_cluster(nodes: int = 3, timeout_s: float = 20.0) -> Iterator[list[RedisServer]]:
    """`nodes` masters on loopback made one Redis Cluster (no replicas), every slot covered."""
    with ExitStack() as stack:
        servers = [stack.enter_context(running_redis(
            timeout_s, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000")) for _ in range(nodes)]
        created = subprocess.run(
            [_binary("redis-cli"), "--cluster", "create",
             *(f"{s.host}:{s.port}" for s in servers), "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, text=True, timeout=timeout_s, check=False)
        if created.returncode != 0 or "All 16384 slots covered" not in created.stdout:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}"
                               f"{created.stderr[-500:]}")
        deadline = time.monotonic() + timeout_s
        for server in servers:  # each node has to see the others before it serves every slot
            while "cluster_state:ok" not in cli(server, "cluster", "info"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach cluster_state:ok")
                time.sleep(0.05)  # polling a condition redis reports, with a deadline
        yield servers


@contextmanager
def running_sentinel(master: RedisServer, service: str = "mymaster",
                     timeout_s: float = 10.0) -> Iterator[RedisServer]:
    """A Sentinel (`redis-server --sentinel`) monitoring `master` as `service`."""
    binary = _binary("redis-server")
    for _ in range(5):
        port = free_port()
        with tempfile.TemporaryDirectory() as workdir:
            conf = Path(workdir) / "sentinel.conf"  # Sentinel rewrites its file: a fresh one
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                            f"sentinel monitor {service} {master.host} {master.port} 1\n"
                            # a failover in a test: down after 0.5 s, promoted at once
                            f"sentinel down-after-milliseconds {service} 500\n"
                            f"sentinel failover-timeout {service} 2000\n")
            process = subprocess.Popen([binary, str(conf), "--sentinel"],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
            try:
                if _wait_for(process, f"+monitor master {service}", timeout_s):
                    yield RedisServer("127.0.0.1", port, process.pid)
                    return
            finally:
                _stop(process)
    raise RuntimeError("redis-server --sentinel did not start on any free port")


def _binary(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        raise RuntimeError(f"{name} is not installed; run scripts/setup.sh --test")
    return binary


def cli(server: RedisServer, *command: str) -> str:
    return subprocess.run([_binary("redis-cli"), "-h", server.host, "-p", str(server.port),
                           *command], capture_output=True, text=True, timeout=5,
                          check=False).stdout


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout:
        process.stdout.close()


def _wait_for(process: subprocess.Popen[str], said: str, timeout_s: float) -> bool:
    """Read redis' own log until it says `said` (no polling, no sleeps)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    for line in process.stdout:
        if said in line:
            return True
        if time.monotonic() > deadline:
            break
    return False
