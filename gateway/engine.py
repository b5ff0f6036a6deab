"""grpc's I/O engine and poller thread for the gateway process (set before grpc is imported).

grpcio 1.85 reads sockets on EventEngine threads and hands each completion to grpc.aio's poller
thread, which wakes the event loop: two thread hops per event, and on a busy core a context
switch for each. With EventEngine off for client channels and listeners (GRPC_EXPERIMENTS,
grpc's own switch) the poller thread reads the sockets itself; calm_poller() stops it from
preempting the loop's thread. Measured on the gRPC edge (h2load c=32, gateway alone on a core):
26 -> 19 -> 2 context switches and 793 -> 685 -> 550 µs CPU per proxied call.
An operator's own GRPC_EXPERIMENTS wins (set it to "" for grpc's defaults). Importing this
after grpc does nothing: `python -m gateway` imports it first.
"""

from __future__ import annotations

import os
import threading

EXPERIMENTS = "-event_engine_client,-event_engine_listener"

os.environ.setdefault("GRPC_EXPERIMENTS", EXPERIMENTS)


def calm_poller() -> bool:
    """Let grpc.aio's poller thread wait for the event loop's thread instead of preempting it.

    The poller hands each completion to the loop; woken, it preempts the loop's thread on the
    same core every time, so a busy gateway pays a context switch per completion. SCHED_BATCH
    (no privilege needed: it only lowers the thread's claim) leaves it its fair share of the CPU
    but no wake-up preemption: it runs when the loop waits, and hands over several completions
    at once. False when the thread is not found (grpc.aio not started, or its internals moved).
    """
    if not hasattr(os, "SCHED_BATCH"):
        return False
    for thread in threading.enumerate():
        if thread.name.endswith("(_poll_wrapper)") and thread.native_id is not None:
            os.sched_setscheduler(thread.native_id, os.SCHED_BATCH, os.sched_param(0))
            return True
    return False
