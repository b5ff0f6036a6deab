"""The benchmark runner: `python -m bench [--quick] [--scenarios ...] [--layout isolated]`.

Repetitions run round-robin over the scenarios; each (repetition, scenario) starts its
processes, checks one request, then warms up and measures each concurrency; every process it
started is stopped by PID afterwards, also on errors and Ctrl-C. Writes the results as JSON,
Markdown and a PNG plot. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench.check import checked_target, grpc_frame, request_message
from bench.loadgen import LoadResult, run_load, split_concurrency
from bench.procs import (
    LOOPBACK,
    BenchError,
    Fleet,
    all_cpu_seconds,
    cpu_seconds,
    cpu_times,
    irq_times,
    others_cpu,
    reset_peak_rss,
    tree_cpu_seconds,
    tree_peak_rss_bytes,
)
from bench.report import (
    LOADGEN,
    RUNNER,
    Measurement,
    Row,
    format_markdown,
    format_ratios,
    format_rows,
    ratios,
    summarize,
)
from bench.scenarios import RATIOS, SCENARIOS, Launch, Scenario

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ("isolated", "split", "shared")
Failures = dict[tuple[str, int | None], str]


@dataclass(frozen=True, slots=True)
class Plan:
    scenarios: tuple[Scenario, ...]
    concurrencies: tuple[int, ...]
    duration_s: float
    warmup_s: float
    repeat: int
    layout: str
    out: Path  # the results JSON; the .md and .png, logs and generated files go beside it
    command: str  # the command line, for the record


def parse_args(argv: Sequence[str] | None) -> Plan:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(
        "Benchmark the gateway against direct gRPC and hand-written baselines (not a test)."))
    parser.add_argument("--scenarios", nargs="+", metavar="NAME", choices=sorted(SCENARIOS),
                        help=f"default: all ({', '.join(SCENARIOS)})")
    parser.add_argument("--concurrency", type=_int_list, metavar="N[,N...]",
                        help="requests in flight (default 1,32,64; --quick: 32)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds of load before each (default 2)")
    parser.add_argument("--repeat", type=int, help="repetitions, round-robin (default 3)")
    parser.add_argument("--layout", choices=LAYOUTS, default="isolated",
                        help="isolated: process under test alone on cpu1, the rest on cpu0; "
                             "split: load generator on cpu0, all servers on cpu1; "
                             "shared: nothing pinned")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "results.json",
                        help="the results JSON; results.md and results.png go beside it")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 s, 1 s warm-up, 1 repetition, concurrency 32")
    args = parser.parse_args(argv)
    quick = args.quick
    plan = Plan(
        scenarios=tuple(SCENARIOS[name] for name in (args.scenarios or SCENARIOS)),
        concurrencies=tuple(args.concurrency or ((32,) if quick else (1, 32, 64))),
        duration_s=args.duration or (2.0 if quick else 10.0),
        warmup_s=args.warmup if args.warmup is not None else (1.0 if quick else 2.0),
        repeat=args.repeat or (1 if quick else 3),
        layout=args.layout,
        out=args.out.resolve(),
        command=command_line(sys.argv[1:] if argv is None else argv),
    )
    if plan.duration_s <= 0 or plan.duration_s > 600 or plan.warmup_s < 0 or plan.repeat < 1:
        parser.error("need 0 < --duration <= 600, --warmup >= 0 and --repeat >= 1")
    if any(c < 1 or c > 10_000 for c in plan.concurrencies):
        parser.error("--concurrency values must be in 1..10000")
    return plan


def command_line(argv: Sequence[str]) -> str:
    """How this run was started, as one could type it again from the repository root."""
    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), "-m", "bench", *argv])


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,32,64") from None


def cpu_for(layout: str, role: str, under_test: str) -> int | None:
    if layout == "shared":
        return None
    if role in (LOADGEN, RUNNER):
        return 0
    if layout == "split":
        return 1
    return 1 if role == under_test else 0


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    layout = plan.layout
    if layout != "shared" and not {0, 1} <= os.sched_getaffinity(0):
        print(f"bench: cpu0 and cpu1 are not both available; layout {layout} -> shared",
              file=sys.stderr)
        layout = "shared"
    for tool in ("wrk", "h2load", "taskset"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], stdout=subprocess.DEVNULL).returncode:
            print(f"bench: {tool} not found; run bench/setup.sh", file=sys.stderr)
            return 2
    runner_cpu = cpu_for(layout, RUNNER, "")
    if runner_cpu is not None:  # the runner stays off the process under test's CPU
        os.sched_setaffinity(0, {runner_cpu})
    out_dir = plan.out.parent
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    runnable = []
    for scenario in plan.scenarios:
        reason = scenario.unavailable()
        if reason:
            print(f"bench: skipping {scenario.name}: {reason}", file=sys.stderr)
        else:
            runnable.append(scenario)
    frame = out_dir / "getuser.grpc-frame"
    frame.write_bytes(grpc_frame(request_message()))

    def interrupt(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    measurements: list[Measurement] = []
    failures: Failures = {}
    started = datetime.datetime.now(datetime.UTC)
    interrupted = False
    try:
        for repetition in range(plan.repeat):
            for scenario in runnable:
                if (scenario.name, None) in failures:
                    continue
                try:
                    run_scenario(scenario, repetition, plan, layout, frame, measurements,
                                 failures)
                except BenchError as exc:
                    failures[(scenario.name, None)] = str(exc)
                    print(f"bench: {scenario.name} FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted; every started process was stopped", file=sys.stderr)
    rows = summarize(measurements, [s.name for s in runnable], plan.concurrencies, failures)
    found = ratios(rows, RATIOS)
    warnings = [w for row in rows for w in row.warnings(layout)]
    print(f"\nlayout {layout}, {plan.repeat} x {plan.duration_s:g} s per measurement "
          f"(+{plan.warmup_s:g} s warm-up); medians over repetitions")
    print(format_rows(rows))
    print("\nratios: median [min-max] of same-repetition ratios")
    print(format_ratios(found))
    for warning in warnings:
        print(f"WARNING: {warning}")
    document = {
        "date": started.isoformat(timespec="seconds"),
        "command": plan.command,
        "interrupted": interrupted,
        "options": {"scenarios": [s.name for s in plan.scenarios],
                    "concurrency": list(plan.concurrencies), "duration_s": plan.duration_s,
                    "warmup_s": plan.warmup_s, "repeat": plan.repeat, "layout": layout},
        **environment(),
        "summary": [row.as_json() for row in rows],
        "ratios": [ratio.as_json() for ratio in found],
        "warnings": warnings,
        "measurements": [m.as_json() for m in measurements],
    }
    plan.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {plan.out}")
    markdown = plan.out.with_suffix(".md")
    markdown.write_text(format_markdown(document, rows, found))
    print(f"wrote {markdown} (bench/RESULTS.md is a copy of the last full run's)")
    draw(rows, plan.out.with_suffix(".png"), document)
    if interrupted:
        return 130
    return 1 if any(row.failed for row in rows) else 0


def draw(rows: Sequence[Row], path: Path, document: dict[str, Any]) -> None:
    """The PNG plot, or a message saying why there is none."""
    try:
        from bench.plot import plot

        git, options = document["git"], document["options"]
        plot(rows, path, f"{document['date']}, commit {git['commit'][:12]}"
                         f"{' (dirty)' if git['dirty'] else ''}, layout {options['layout']}, "
                         f"{options['repeat']} x {options['duration_s']:g} s")
    except ImportError as exc:
        print(f"bench: no plot: matplotlib is missing ({exc}); `.venv/bin/pip install -e "
              ".[bench]` (or bench/setup.sh) installs it", file=sys.stderr)
        return
    print(f"wrote {path}")


def run_scenario(scenario: Scenario, repetition: int, plan: Plan, layout: str, frame: Path,
                 measurements: list[Measurement], failures: Failures) -> None:
    """Start the scenario's processes, check one request, then measure each concurrency."""
    out_dir = plan.out.parent
    logs = out_dir / "logs"
    with Fleet() as fleet:
        ports = start_all(fleet, scenario, layout, out_dir, scenario.name)
        address = f"{LOOPBACK}:{ports[scenario.load.port]}"
        target = checked_target(scenario.load, address, frame, scenario.expected())
        loadgen_cpu = cpu_for(layout, LOADGEN, scenario.under_test)
        for conc in plan.concurrencies:
            if (scenario.name, conc) in failures:
                continue
            log = logs / f"{scenario.name}.c{conc}.{target.tool}.log"
            if plan.warmup_s:
                run_load(target, conc, plan.warmup_s, loadgen_cpu, log)
            measurement = measured(
                fleet, scenario, layout,
                functools.partial(run_load, target, conc, plan.duration_s, loadgen_cpu, log),
                conc, repetition)
            measurements.append(measurement)
            _progress(measurement, plan)
            if not measurement.ok:
                failures[(scenario.name, conc)] = f"errors: {measurement.load.errors}"


def start_all(fleet: Fleet, scenario: Scenario, layout: str, out_dir: Path,
              label: str) -> dict[str, int]:
    """Start the scenario's processes into `fleet` in order (logs in out_dir/logs, named
    `label`.role.log), each checked once it announced its ports if its Proc has a check;
    returns "<role>.<port name>" -> port."""
    ports: dict[str, int] = {}
    for proc in scenario.procs:
        running = fleet.start(proc.role, proc.argv(Launch(sys.executable, out_dir, ports)),
                              proc.announce, out_dir / "logs" / f"{label}.{proc.role}.log",
                              cpu_for(layout, proc.role, scenario.under_test), proc.instances)
        ports.update({f"{proc.role}.{name}": port for name, port in running.ports.items()})
        if proc.check is not None:
            proc.check(f"{LOOPBACK}:{next(iter(running.ports.values()))}")
    return ports


def measured(fleet: Fleet, scenario: Scenario, layout: str, load: Callable[[], LoadResult],
             concurrency: int, repetition: int = 0) -> Measurement:
    """Run `load` and account for it: CPU of every process tree of the fleet, of the load
    generator and of this runner, host CPU (for `foreign`), peak RSS per tree."""
    trees = {r.role: r.tree() for r in fleet.running}
    for pids in trees.values():
        for pid in pids:
            reset_peak_rss(pid)
    everyone_before = all_cpu_seconds()
    irq_before = irq_times()
    before = {role: tree_cpu_seconds(pids) for role, pids in trees.items()}
    runner_before = cpu_seconds(os.getpid())
    host_before = cpu_times()
    start = time.monotonic()
    result = load()
    wall = time.monotonic() - start
    host_after = cpu_times()
    irq_after = irq_times()
    ours = {os.getpid(), *(pid for pids in trees.values() for pid in pids)}
    others = others_cpu(everyone_before, all_cpu_seconds(), ours)
    for running in fleet.running:
        if running.proc.poll() is not None:
            raise BenchError(f"{running.role} exited with {running.proc.returncode} "
                             f"during the run; see {running.log}")
        if running.tree() != trees[running.role]:  # its CPU time would be wrong
            raise BenchError(f"the processes of {running.role} changed during the run "
                             f"(before: {trees[running.role]}, after: {running.tree()})"
                             f"; see {running.log}")
    cpu_s = {role: tree_cpu_seconds(pids) - before[role] for role, pids in trees.items()}
    cpu_s[RUNNER] = cpu_seconds(os.getpid()) - runner_before
    return Measurement(
        scenario=scenario.name, concurrency=concurrency, repetition=repetition,
        under_test=scenario.under_test, load=result, wall_s=wall,
        cpu_s={**cpu_s, LOADGEN: result.loadgen_cpu_s},
        peak_rss={role: tree_peak_rss_bytes(pids) for role, pids in trees.items()},
        cpu_of={**{r.role: r.cpu for r in fleet.running},
                **{role: cpu_for(layout, role, scenario.under_test) for role in (LOADGEN, RUNNER)}},
        host={cpu: (busy - host_before[cpu][0], steal - host_before[cpu][1])
              for cpu, (busy, steal) in host_after.items()},
        processes={role: len(pids) for role, pids in trees.items()},
        others=others,  # the load generator is not among them: reaped by now
        irq={cpu: irq_after[cpu] - irq_before[cpu] for cpu in irq_after},
    )


def _progress(m: Measurement, plan: Plan) -> None:
    latency = m.load.latency_ms
    cores = ", ".join(f"{role} {m.cores(role):.2f}" for role in m.cpu_s)
    status = "ok" if m.ok else f"ERRORS {m.load.errors}"
    tree = m.processes.get(m.under_test, 1)
    status += f"; {m.under_test}: {tree} processes" if tree > 1 else ""
    in_flight = ""
    if m.load.concurrency != m.concurrency:
        connections, streams = split_concurrency(m.concurrency)
        in_flight = f" (h2load: {connections}x{streams}={m.load.concurrency} in flight)"
    print(f"[{m.repetition + 1}/{plan.repeat}] {m.scenario} c={m.concurrency}{in_flight}: "
          f"{m.load.rps:.0f} req/s, p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms, "
          f"{m.cpu_us_per_request:.0f} µs CPU/req; cores: {cores}; {status}",
          file=sys.stderr, flush=True)


def environment() -> dict[str, Any]:
    """Git commit, machine and versions, for the results file."""
    def command(*argv: str) -> str:
        try:
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return (done.stdout or done.stderr).strip().splitlines()[0] if (
            done.stdout or done.stderr).strip() else ""

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    packages = ("grpcio", "protobuf", "aiohttp", "uvloop", "orjson")
    return {
        "git": {"commit": command("git", "rev-parse", "HEAD"),
                "dirty": bool(command("git", "status", "--porcelain"))},
        "machine": {"nproc": os.cpu_count(), "cpu_model": model,
                    "kernel": platform.release()},
        "versions": {"python": platform.python_version(),
                     **{name: importlib.metadata.version(name) for name in packages},
                     "wrk": command("wrk", "-v"), "h2load": command("h2load", "--version")},
    }


if __name__ == "__main__":
    sys.exit(main())
