"""`python -m gateway serve`: any proto set (compiled at start), real process, clean SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import yaml

from services.server import start_backend

ROOT = Path(__file__).resolve().parents[2]


async def test_serve_compiles_protos_at_start_and_stops_on_sigterm(tmp_path: Path) -> None:
    backend = await start_backend("users")
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "listen": {"rest": {"host": "127.0.0.1", "port": 0}, "grpc": None},
        "descriptors": {"proto_files": ["users/v1/users.proto"],
                        "import_paths": [str(ROOT / "protos")]},
        "backends": {"users": {"services": ["users.v1.*"], "addresses": [backend.address]}},
    }))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{found.group(1)}/v1/users/u-1003"
        ) as response:
            assert response.status == 200
            assert (await response.json())["id"] == "u-1003"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await backend.stop()


async def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("descriptors: {descriptor_set: x.binpb}\nbackends: {u: {services: [a]}}\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"backends.u.addresses" in stderr
    assert b"Traceback" not in stderr
