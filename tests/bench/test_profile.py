"""bench.profile's reading of py-spy raw stacks: idle leaves dropped, each busy sample given
to the innermost library or gateway frame, per thread."""

from __future__ import annotations

from bench.profile import parse_raw, summary

MAIN = "thread (1): MainThread;run (asyncio/base_events.py:1)"
RAW = "\n".join([
    f"{MAIN};unary (gateway/edges/rpc.py:9);sendmsg (libc.so.6) 6",
    f"{MAIN};_run (grpc/aio/_server.py:3) 3",
    f"{MAIN};_run_once (asyncio/base_events.py:2) 1",
    "thread (2): Thread-1 (_poll_wrapper);_poll (grpc/_cython/cygrpc.so);epoll_wait (libc.so.6) 90",
    "not a stack line",
])

def test_summary_drops_idle_and_credits_the_calling_library() -> None:
    stacks = parse_raw(RAW.splitlines())
    assert [count for _, count in stacks] == [6, 3, 1, 90]
    text = summary(stacks)
    assert text.startswith("10 busy samples (90 idle dropped)")
    assert "| the gateway's Python | 60.0 |" in text  # sendmsg called from the edge
    assert "| grpc (cygrpc, grpc-core, grpc.aio) | 30.0 |" in text
    assert "| asyncio / uvloop | 10.0 |" in text
    assert "| thread (1): MainThread | 100.0 |" in text
