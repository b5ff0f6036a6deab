"""Where the process under test spends its CPU under load: `python -m bench.profile [--scenario
grpc-gateway-gobackend] [--concurrency 32] [--seconds 8]`. Starts the scenario's processes as
bench.run does (isolated layout), loads it with its load generator for warm-up + the profile,
records the process under test with py-spy (`record --native --threads -f raw`, the [bench]
extra) and prints the samples per category, leaf frame first (self time), and the top frames.
bench/PROFILE.md holds the summary of both edges. Not a test; bounded (about seconds + 15 s).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from bench.check import checked_target, grpc_frame, request_message
from bench.loadgen import run_load
from bench.procs import Fleet
from bench.run import ROOT, cpu_for, start_all
from bench.scenarios import SCENARIOS

OUT = ROOT / "bench" / "out"
# (category, substrings of a frame "function (file:line)"), first match wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pygrpc-native (Rust core + its Python)", ("pygrpc_native", "_native.abi3", "tokio")),
    ("grpc (cygrpc, grpc-core, grpc.aio)", ("grpc/", "cygrpc", "libgrpc", "grpc_core", "grpc::",
                                            "absl", "_cygrpc")),
    ("protobuf", ("google/protobuf", "_upb", "upb_")),
    ("the gateway's Python", ("gateway/",)),
    ("aiohttp", ("aiohttp/", "_http_parser", "_websocket")),
    ("asyncio / uvloop", ("asyncio/", "uvloop", "loop.cpython")),
    ("interpreter + libc + kernel calls", ("libpython", "python3", "libc.so", "ld-linux",
                                            "epoll", "sendmsg", "recvmsg", "write", "read")),
)


def category(frame: str) -> str:
    for name, needles in CATEGORIES:
        if any(needle in frame for needle in needles):
            return name
    return "other"


def parse_raw(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: "frame;frame;... count", root first."""
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


# Leaf frames of a thread that waits (py-spy --native samples waiting threads too).
IDLE = ("epoll_wait", "epoll_pwait", "poll ", "select ", "pthread_cond_wait",
        "pthread_cond_timedwait", "futex", "sem_wait", "sem_timedwait", "nanosleep",
        "clock_nanosleep", "__GI___poll", "accept")
GENERIC = ("interpreter + libc + kernel calls", "other")


def summary(stacks: list[tuple[list[str], int]], top: int = 15) -> str:
    """Busy samples (idle leaves dropped) per owner: the innermost frame of a known library or
    of the gateway (interpreter and libc frames count for the code that called them); per
    thread; and the top leaf frames."""
    by_owner: collections.Counter[str] = collections.Counter()
    by_frame: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    idle = busy = 0
    for frames, count in stacks:
        thread = frames[0] if frames and frames[0].startswith("thread") else "?"
        body = frames[1:] if thread != "?" else frames
        if not body or body[-1].startswith(IDLE):
            idle += count
            continue
        busy += count
        by_thread[thread] += count
        owner = next((category(f) for f in reversed(body) if category(f) not in GENERIC),
                     category(body[-1]))
        by_owner[owner] += count
        by_frame[body[-1]] += count
    total = busy or 1
    lines = [f"{busy} busy samples ({idle} idle dropped)", "",
             "| owner (innermost library or gateway frame) | % of busy |", "|---|---:|"]
    lines += [f"| {name} | {100 * n / total:.1f} |" for name, n in by_owner.most_common()]
    lines += ["", "| thread | % of busy |", "|---|---:|"]
    lines += [f"| {name} | {100 * n / total:.1f} |" for name, n in by_thread.most_common(8)]
    lines += ["", f"top {top} leaf frames (% of busy):"]
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in by_frame.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--scenario", default="grpc-gateway-gobackend", choices=sorted(SCENARIOS))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("bench.profile: py-spy is missing: bench/setup.sh installs the [bench] extra",
              file=sys.stderr)
        return 2
    scenario = SCENARIOS[args.scenario]
    reason = scenario.unavailable()
    if reason:
        print(f"bench.profile: {scenario.name}: {reason}", file=sys.stderr)
        return 2
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    frame = OUT / "getuser.grpc-frame"
    frame.write_bytes(grpc_frame(request_message()))
    raw = OUT / f"profile-{scenario.name}-c{args.concurrency}.raw"
    with Fleet() as fleet:
        ports = start_all(fleet, scenario, "isolated", OUT, f"profile-{scenario.name}")
        target = checked_target(scenario.load, f"127.0.0.1:{ports[scenario.load.port]}", frame,
                                scenario.expected())
        pid = next(r.pid for r in fleet.running if r.role == scenario.under_test)
        log = OUT / "logs" / f"profile-{scenario.name}.load.log"
        loader = threading.Thread(target=run_load, args=(
            target, args.concurrency, args.seconds + 3, cpu_for("isolated", "loadgen", ""), log))
        loader.start()
        try:
            subprocess.run([spy, "record", "--native", "--threads", "-r", str(args.rate),
                            "-d", str(int(args.seconds)), "-f", "raw", "-o", str(raw),
                            "-p", str(pid)], check=True, stdout=subprocess.DEVNULL,
                           timeout=args.seconds + 60)
        finally:
            loader.join()
    print(f"{scenario.name} c={args.concurrency}, {args.seconds:g} s at {args.rate} Hz "
          f"(raw stacks: {raw})")
    print(summary(parse_raw(raw.read_text().splitlines())))
    return 0


def resummarize(path: Path) -> None:
    """The summary of a raw file recorded earlier."""
    print(summary(parse_raw(path.read_text().splitlines())))


if __name__ == "__main__":
    sys.exit(main())
