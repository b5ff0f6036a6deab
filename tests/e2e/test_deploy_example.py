"""deploy/gateway.yaml served as its header says (a real `python -m gateway serve`, the demo
issuer's public key in GATEWAY_ISSUER_PUBLIC_KEY): reads are public, writes need a signed-in
caller, deleting a user needs the admin role. Only the ports and backend addresses change, to
free loopback ones."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import yaml

from gateway.demo import demo_public_pem, mint_demo_token
from services.server import start_backend

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "gateway.yaml"


@asynccontextmanager
async def served_example(tmp_path: Path) -> AsyncIterator[str]:
    backends = {name: await start_backend(name) for name in ("users", "orders", "notifications")}
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["listen"] = {"rest": {"host": "127.0.0.1", "port": 0}, "grpc": None}
    data["descriptors"]["descriptor_set"] = str(ROOT / "generated" / "descriptors.binpb")
    for name, backend in backends.items():
        data["backends"][name]["addresses"] = [backend.address]
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "GATEWAY_ISSUER_PUBLIC_KEY": demo_public_pem()},
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
        for backend in backends.values():
            await backend.stop()


async def test_the_example_config_signs_callers_in_for_writes(tmp_path: Path) -> None:
    user = {"Authorization": f"Bearer {mint_demo_token('u-1002', [])}"}
    admin = {"Authorization": f"Bearer {mint_demo_token('u-1001', ['admin'])}"}
    async with served_example(tmp_path) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/users/u-1001") as response:
            assert response.status == 200  # reads are public
        async with http.delete(f"{base}/v1/users/u-1005?force=true") as response:
            assert response.status == 401
            assert "u-1005" not in await response.text()
        async with http.delete(f"{base}/v1/users/u-1005?force=true", headers=user) as response:
            assert response.status == 403  # signed in, but not an admin
        async with http.delete(f"{base}/v1/users/u-1005?force=true", headers=admin) as response:
            assert response.status == 204
        async with http.post(f"{base}/v1/users", json={"email": "n@example.com"}) as response:
            assert response.status == 401
        async with http.get(f"{base}/v1/dashboard/overview", headers=user) as response:
            assert response.status == 200
            assert (await response.json())["profile"]["id"] == "u-1002"
