"""`python -m bench.reply_rss [--limit-mib 16] [--reply-mib 20] [--calls 8]`: the RSS of a
gateway process (`python -m gateway serve`, REST only) before and after REST calls whose backend
reply is `--reply-mib` big, with `transcoding.max_reply_bytes` at `--limit-mib`; the backend is
tests/hostile/evil.py's, in this process. Prints VmRSS after each call, VmHWM, and the growth.
A reply under the limit is rendered (the old behaviour at 64 MiB); one over it is refused (502).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

import aiohttp
import yaml

from testing.v1 import transcoding_pb2
from tests.hostile.evil import BOOK_URL, EvilBackend, gateway_config

ROOT = Path(__file__).resolve().parent.parent


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


async def run(limit_mib: int, reply_mib: int, calls: int) -> None:
    evil = EvilBackend()
    await evil.start()
    evil.huge = transcoding_pb2.Book(title="x" * (reply_mib << 20)).SerializeToString()
    config = gateway_config(evil.address, observability={"access_log": {"enabled": False}},
                            transcoding={"max_reply_bytes": limit_mib << 20})
    config["listen"]["grpc"] = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", "--config", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
        try:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found is None:
                raise RuntimeError(f"gateway did not start: {line!r}")
            url = f"http://127.0.0.1:{found.group(1)}{BOOK_URL}"
            async with aiohttp.ClientSession() as http:
                for _ in range(20):
                    async with http.get(url) as response:
                        await response.read()
                before = _kib(process.pid, "VmRSS")
                evil.mode = "huge"
                seen = []
                for _ in range(calls):
                    async with http.get(url) as response:
                        await response.read()
                        status = response.status
                    seen.append(_kib(process.pid, "VmRSS"))
            peak = _kib(process.pid, "VmHWM")
        finally:
            process.kill()
            await process.wait()
    await evil.stop()
    print(f"limit {limit_mib} MiB, reply {reply_mib} MiB, status {status}: VmRSS {before} KiB "
          f"before, after each call {seen}; VmHWM {peak} KiB; "
          f"growth {(seen[-1] - before) / before:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-mib", type=int, default=16)
    parser.add_argument("--reply-mib", type=int, default=20)
    parser.add_argument("--calls", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.limit_mib, args.reply_mib, args.calls))


if __name__ == "__main__":
    main()
