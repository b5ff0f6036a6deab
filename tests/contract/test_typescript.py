"""A typed client generated from /openapi.json by openapi-typescript (npm, pinned in
package.json) compiles with tsc, and a short Node script using it calls the demo; the same
types refuse a body that breaks the contract at compile time."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.contract.demo import running_demo

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
SOURCES = Path(__file__).resolve().parent / "ts"
TSC_FLAGS = ("--strict", "--target", "es2022", "--module", "commonjs", "--lib", "es2022,dom",
             "--skipLibCheck")
NEEDS = pytest.mark.skipif(
    not (BIN / "openapi-typescript").exists() or not (BIN / "tsc").exists()
    or shutil.which("node") is None,
    reason="scripts/setup.sh --test installs openapi-typescript and typescript (npm)")


async def _run(*command: str, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@NEEDS
async def test_generated_client_compiles_and_calls_the_demo(tmp_path: Path) -> None:
    async with running_demo() as demo:
        async with aiohttp.ClientSession() as http, \
                http.get(f"{demo.base_url}/openapi.json") as response:
            (tmp_path / "openapi.json").write_bytes(await response.read())
        code, output = await _run(str(BIN / "openapi-typescript"), "openapi.json",
                                  "-o", "api.d.ts", cwd=tmp_path)
        assert code == 0, output
        for name in ("client.ts", "wrong.ts"):
            shutil.copy(SOURCES / name, tmp_path / name)
        code, output = await _run(str(BIN / "tsc"), *TSC_FLAGS, "--outDir", "out",
                                  "client.ts", cwd=tmp_path)
        assert code == 0, output
        code, output = await _run("node", "out/client.js", demo.base_url, demo.token,
                                  cwd=tmp_path)
        assert code == 0, output
    result = json.loads(output.strip().splitlines()[-1])
    assert result == {
        "email": "ada.lovelace@example.com", "listed": result["listed"],
        "created": 201, "createdEmail": "typed@example.com",
        "refused": 400, "code": 3, "fields": ["user.email"],  # the request field path
    }
    assert result["listed"] and len(result["listed"]) <= 2


@NEEDS
async def test_the_generated_types_refuse_a_body_that_breaks_the_contract(
        tmp_path: Path) -> None:
    async with running_demo() as demo, aiohttp.ClientSession() as http, \
            http.get(f"{demo.base_url}/openapi.json") as response:
        (tmp_path / "openapi.json").write_bytes(await response.read())
    code, output = await _run(str(BIN / "openapi-typescript"), "openapi.json", "-o", "api.d.ts",
                              cwd=tmp_path)
    assert code == 0, output
    shutil.copy(SOURCES / "wrong.ts", tmp_path / "wrong.ts")
    code, output = await _run(str(BIN / "tsc"), *TSC_FLAGS, "--noEmit", "wrong.ts", cwd=tmp_path)
    assert code != 0
    assert "wrong.ts(6," in output and "wrong.ts(7," in output, output  # both lines refused
