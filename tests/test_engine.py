"""gateway.engine in a process of its own (the settings are per process and grpc reads them once):
`python -m gateway`'s engine choice, and the poller thread left without wake-up preemption."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import asyncio, os, threading
import gateway.engine
import grpc

async def main():
    server = grpc.aio.server()
    await server.start()
    calmed = gateway.engine.calm_poller()
    poller = [t for t in threading.enumerate() if t.name.endswith("(_poll_wrapper)")]
    policies = [os.sched_getscheduler(t.native_id) == os.SCHED_BATCH for t in poller]
    loop_thread = os.sched_getscheduler(threading.get_native_id()) == os.SCHED_BATCH
    print(os.environ["GRPC_EXPERIMENTS"], calmed, policies, loop_thread)
    await server.stop(None)

asyncio.run(main())
"""


def probe(environ: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only")
def test_engine_default_and_a_calm_poller() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    assert probe(environ) == "-event_engine_client,-event_engine_listener True [True] False"


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux-only")
def test_the_operators_grpc_experiments_win() -> None:
    assert probe({**os.environ, "GRPC_EXPERIMENTS": "-event_engine_client"}).startswith(
        "-event_engine_client True")
