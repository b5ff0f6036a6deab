"""Ops tests: a real gateway started from a config file (so reloads read it again), the demo
backends, the ops listener with the admin API; and helpers for `python -m gateway serve`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import yaml

from gateway import app
from gateway.config import load_file
from services.server import RunningBackend, start_backend
from tests.e2e.stack import Stack, stack_config

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "ops-test-admin-token"
ADMIN = {"token_sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()}
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LISTEN = {"rest": {"host": "127.0.0.1", "port": 0}, "grpc": {"host": "127.0.0.1", "port": 0},
          "ops": {"host": "127.0.0.1", "port": 0}}


def gateway_config(backends: Mapping[str, RunningBackend], **overrides: Any) -> dict[str, Any]:
    """The e2e stack's config for `backends`, with the ops listener and the admin API."""
    return stack_config(backends, **{"listen": LISTEN, "admin": ADMIN, **overrides})


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")


@asynccontextmanager
async def started_backends(*names: str) -> AsyncIterator[dict[str, RunningBackend]]:
    backends: dict[str, RunningBackend] = {}
    try:
        for name in names:
            backends[name] = await start_backend(name)
        yield backends
    finally:
        for backend in backends.values():
            await backend.stop()


@dataclass(frozen=True)
class OpsStack(Stack):
    path: Path  # the config file a reload reads

    def ops_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.gateway.ops_port}{path}"


@asynccontextmanager
async def file_stack(path: Path, backends: Mapping[str, RunningBackend],
                     config: Mapping[str, Any]) -> AsyncIterator[OpsStack]:
    """A gateway started from `config` written to `path`; its reloads read `path` again."""
    write_config(path, config)
    gateway = await app.start(load_file(path), source=lambda: load_file(path))
    try:
        async with aiohttp.ClientSession() as http, grpc.aio.insecure_channel(
            f"127.0.0.1:{gateway.grpc_port}"
        ) as channel:
            yield OpsStack(gateway, backends, http, channel, path)
    finally:
        await gateway.stop(0)


async def metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    """The sum of a metric's samples (all label sets) on a /metrics page."""
    async with http.get(url) as response:
        text = await response.text()
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


@asynccontextmanager
async def serve_process(config: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m gateway serve --config <config> <args>` in a session of its own, which is
    killed whole (workers too) if the test leaves it running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def exit_code(process: asyncio.subprocess.Process, timeout_s: float = 15) -> int:
    """The process's exit code; one that does not exit in time fails with its stderr."""
    try:
        return await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        assert process.stderr is not None
        said = (await process.stderr.read()).decode()
        raise AssertionError(f"still running after {timeout_s} s: {said}") from None


async def read_lines(stream: asyncio.StreamReader | None, patterns: Sequence[str],
                     timeout_s: float = 20) -> list[re.Match[str]]:
    """Read lines until each pattern has matched one line, in any order; the matches in
    pattern order. A stream that ends or stalls first fails the test with what it said."""
    assert stream is not None
    found: dict[int, re.Match[str]] = {}
    seen: list[str] = []

    async def scan() -> None:
        while len(found) < len(patterns):
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"output ended before {patterns}: {''.join(seen)}")
            seen.append(line)
            for index, pattern in enumerate(patterns):
                match = re.search(pattern, line)
                if index not in found and match:
                    found[index] = match
                    break

    try:
        await asyncio.wait_for(scan(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"no line matched {patterns} in {timeout_s} s: {''.join(seen)}"
                             ) from None
    return [found[index] for index in range(len(patterns))]
