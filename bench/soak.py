"""`python -m bench.soak [--minutes 10] [--fraction 0.7] [--scenario rest-gateway]`: peak req/s
(wrk or h2load at c=32), then h2load at a constant fraction of it for the duration while the
RSS and CPU of the process under test are sampled; target: < 5 % RSS growth after warm-up.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.check import checked_target, grpc_frame, request_message
from bench.loadgen import GRACE_S, LoadResult, Target, parse_h2load, run_bounded, run_load
from bench.memory import (
    OUT,
    guarded,
    linear_slope,
    mib,
    start,
    tree_rss_bytes,
    under_test,
    warnings,
    write_results,
)
from bench.procs import LOOPBACK, BenchError, Fleet, tree_cpu_seconds
from bench.report import LOADGEN, Measurement
from bench.run import cpu_for, measured
from bench.scenarios import SCENARIOS, Scenario

WARMUP_S = 60.0  # RSS growth is measured from the first sample after this (at most 1/4 run)
GROWTH_LIMIT_PCT = 5.0
PEAK_CONCURRENCY = 32
PEAK_WARMUP_S = 2.0
CLIENTS = 32  # h2load connections of the paced run, each sending rate / CLIENTS req/s
SHORTFALL = 0.95  # an achieved rate below this share of the asked one earns a warning
PRINT_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float  # since the paced load started
    rss: int  # bytes (VmRSS)
    cpu_s: float  # cumulative CPU seconds of the process


@dataclass(frozen=True, slots=True)
class Growth:
    warmup_s: float
    warm: Sample  # the first sample at or after warmup_s
    end: Sample
    max_rss: int
    slope_mib_per_min: float  # least-squares fit over the samples after the warm-up
    cores: float  # mean over all samples

    @property
    def end_pct(self) -> float:
        """End against after-warm-up RSS, in %."""
        return (self.end.rss - self.warm.rss) / self.warm.rss * 100

    @property
    def fit_pct(self) -> float:
        """What the fitted line grows over the measured window, in % of after-warm-up RSS."""
        minutes = (self.end.t_s - self.warm.t_s) / 60
        return self.slope_mib_per_min * minutes / mib(self.warm.rss) * 100

    @property
    def passed(self) -> bool:
        """Both measures: the end sample alone can hide a trend behind a collection."""
        return self.end_pct < GROWTH_LIMIT_PCT and self.fit_pct < GROWTH_LIMIT_PCT

    def as_json(self) -> dict[str, Any]:
        return {"warmup_s": self.warmup_s, "after_warmup_t_s": round(self.warm.t_s, 1),
                "after_warmup_rss_mib": round(mib(self.warm.rss), 2),
                "end_t_s": round(self.end.t_s, 1), "end_rss_mib": round(mib(self.end.rss), 2),
                "max_rss_mib": round(mib(self.max_rss), 2),
                "growth_pct": round(self.end_pct, 2), "fit_growth_pct": round(self.fit_pct, 2),
                "slope_mib_per_min": round(self.slope_mib_per_min, 4),
                "cores": round(self.cores, 3), "limit_pct": GROWTH_LIMIT_PCT,
                "verdict": "PASS" if self.passed else "MISS"}


def warmup_for(duration_s: float) -> float:
    return min(WARMUP_S, duration_s / 4)


def growth(samples: Sequence[Sample], warmup_s: float) -> Growth:
    """RSS after warm-up, at the end, the maximum, the slope after warm-up and mean cores."""
    after = [s for s in samples if s.t_s >= warmup_s]
    if len(after) < 2:
        raise BenchError(f"{len(after)} RSS samples after {warmup_s:g} s of warm-up; need 2")
    first, last = samples[0], samples[-1]
    slope = linear_slope([s.t_s / 60 for s in after], [mib(s.rss) for s in after])
    cores = (last.cpu_s - first.cpu_s) / (last.t_s - first.t_s)
    return Growth(warmup_s, after[0], after[-1], max(s.rss for s in samples), slope, cores)


def paced_argv(target: Target, clients: int, rate: float, duration_s: float,
               requests_log: Path) -> list[str]:
    """h2load at `rate` req/s in total, spread over `clients` connections (one request in
    flight each); HTTP/1.1 (--h1) for a wrk target, the gRPC frame for an h2load one."""
    argv = ["h2load", "-t1", f"-c{clients}", "-m1", f"--rps={rate / clients:.3f}",
            "-D", f"{duration_s:g}", f"--log-file={requests_log}"]
    if target.tool == "wrk":
        argv += ["--h1", *(arg for k, v in target.headers for arg in ("-H", f"{k}: {v}"))]
    else:
        if target.frame is None:
            raise BenchError("an h2load target needs a request frame")
        argv += ["-d", str(target.frame), "-H", "content-type: application/grpc",
                 "-H", "te: trailers"]
    return [*argv, target.url]


class Sampler:
    """Reads the RSS and CPU of the processes `pids` (summed) every interval_s on a thread,
    from entry to exit (one sample at each end); plain periodic /proc reads."""

    def __init__(self, pids: Sequence[int], interval_s: float) -> None:
        self.pids = tuple(pids)
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self.failure: str | None = None
        self._start = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._start = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        if kind is None and self.failure is None:
            self._sample()

    def _run(self) -> None:
        printed = 0.0
        while not self._stop.wait(self.interval_s):
            try:
                sample = self._sample()
            except (OSError, BenchError) as exc:  # a process is gone
                self.failure = f"cannot read /proc of {self.pids}: {exc}"
                return
            if sample.t_s - printed >= PRINT_EVERY_S:
                printed = sample.t_s
                print(f"  t={sample.t_s:4.0f} s: RSS {mib(sample.rss):.1f} MiB", flush=True)

    def _sample(self) -> Sample:
        sample = Sample(time.monotonic() - self._start, tree_rss_bytes(self.pids),
                        tree_cpu_seconds(self.pids))
        self.samples.append(sample)
        return sample


@dataclass(frozen=True, slots=True)
class Soak:
    peak: Measurement
    rate: float  # asked req/s
    load: Measurement
    samples: tuple[Sample, ...]


def soak(scenario: Scenario, duration_s: float, fraction: float, interval_s: float,
         peak_s: float, layout: str) -> Soak:
    """Start the scenario, check one request, find the peak, then run the paced load."""
    logs = OUT / "logs"
    loadgen_cpu = cpu_for(layout, LOADGEN, scenario.under_test)
    with Fleet() as fleet:
        ports = start(fleet, scenario, layout, f"soak-{scenario.name}")
        frame = OUT / "getuser.grpc-frame"
        frame.write_bytes(grpc_frame(request_message()))
        target = checked_target(scenario.load, f"{LOOPBACK}:{ports[scenario.load.port]}", frame,
                                scenario.expected())
        peak_log = logs / f"soak-{scenario.name}.peak.{target.tool}.log"
        run_load(target, PEAK_CONCURRENCY, PEAK_WARMUP_S, loadgen_cpu, peak_log)
        peak = measured(fleet, scenario, layout, lambda: run_load(
            target, PEAK_CONCURRENCY, peak_s, loadgen_cpu, peak_log), PEAK_CONCURRENCY)
        if peak.load.error_count:
            raise BenchError(f"the peak run had errors: {peak.load.errors}")
        rate = fraction * peak.load.rps
        print(f"peak {peak.load.rps:.0f} req/s (c={PEAK_CONCURRENCY}, {peak_s:g} s); soaking "
              f"at {rate:.0f} req/s for {duration_s / 60:g} min", flush=True)
        log = logs / f"soak-{scenario.name}.h2load.log"
        requests_log = log.with_suffix(".requests.tsv")
        argv = paced_argv(target, CLIENTS, rate, duration_s, requests_log)

        def paced() -> LoadResult:
            code, output, cpu_s = run_bounded(argv, log, loadgen_cpu, duration_s + GRACE_S)
            if code != 0:
                raise BenchError(f"h2load exited with {code}:\n{output[-2000:]}")
            try:
                return parse_h2load(output, requests_log.read_text(), target.reply_bytes,
                                    cpu_s, CLIENTS)
            finally:
                requests_log.unlink()  # one line per request: tens of MB after 10 minutes

        with Sampler(under_test(fleet, scenario).tree(), interval_s) as sampler:
            paced_run = measured(fleet, scenario, layout, paced, CLIENTS)
        if sampler.failure:
            raise BenchError(sampler.failure)
    return Soak(peak, rate, paced_run, tuple(sampler.samples))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=(
        "RSS growth of the process under test under a constant load (not a test)."))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fraction", type=float, default=0.7, help="of peak req/s")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="rest-gateway")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--peak-seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=OUT / "soak.json")
    args = parser.parse_args(argv)
    if not (0 < args.minutes <= 60 and 0 < args.fraction <= 1 and 0.5 <= args.interval <= 60
            and 1 <= args.peak_seconds <= 60):
        parser.error("need 0 < --minutes <= 60, 0 < --fraction <= 1, 0.5 <= --interval <= 60 "
                     "and 1 <= --peak-seconds <= 60")
    return guarded("bench.soak", lambda layout: report(args, layout))


def report(args: argparse.Namespace, layout: str) -> int:
    """The soak, its figures and verdict, and the results file."""
    scenario = SCENARIOS[args.scenario]
    duration_s = args.minutes * 60
    started = datetime.datetime.now(datetime.UTC)
    run = soak(scenario, duration_s, args.fraction, args.interval, args.peak_seconds, layout)
    figures = growth(run.samples, warmup_for(duration_s))
    load = run.load.load
    found = [*(f"peak run: {w}" for w in warnings(run.peak, layout)),
             *(f"paced run: {w}" for w in warnings(run.load, layout))]
    document: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "options": {"scenario": scenario.name, "minutes": args.minutes,
                    "fraction": args.fraction, "interval_s": args.interval,
                    "peak_seconds": args.peak_seconds, "clients": CLIENTS, "layout": layout},
        "peak": run.peak.as_json(),
        "load": {"asked_rps": round(run.rate, 1), **run.load.as_json()},
        "warnings": found,
    }
    samples = [{"t_s": round(s.t_s, 2), "rss_mib": round(mib(s.rss), 2),
                "cpu_s": round(s.cpu_s, 2)} for s in run.samples]
    if load.error_count:
        print(f"bench.soak: FAILED: {load.error_count} errors {load.errors} in "
              f"{load.requests} requests; no figures reported", file=sys.stderr)
        write_results(args.out.resolve(), {**document, "verdict": "FAILED", "samples": samples})
        return 1
    print(f"load: asked {run.rate:.0f} req/s ({args.fraction:g} x peak "
          f"{run.peak.load.rps:.0f}), "
          f"achieved {load.rps:.0f} req/s ({load.requests} requests, 0 errors), "
          f"p50 {load.latency_ms['p50']:.2f} ms, p99 {load.latency_ms['p99']:.2f} ms")
    if load.rps < SHORTFALL * run.rate:
        print(f"WARNING: achieved {load.rps / run.rate:.0%} of the asked rate: the process "
              f"under test could not keep up, so this was not a {args.fraction:.0%} load")
    for warning in found:
        print(f"WARNING: {warning}")
    print(f"{scenario.under_test} RSS: after warm-up ({figures.warm.t_s:.0f} s) "
          f"{mib(figures.warm.rss):.1f} MiB, end {mib(figures.end.rss):.1f} MiB, max "
          f"{mib(figures.max_rss):.1f} MiB; growth {figures.end_pct:+.2f} % (fit "
          f"{figures.fit_pct:+.2f} %, {figures.slope_mib_per_min:+.3f} MiB/min); "
          f"{figures.cores:.2f} cores")
    verdict = "PASS" if figures.passed else "MISS"
    print(f"{verdict}: RSS growth < {GROWTH_LIMIT_PCT:g} % over {args.minutes:g} min at "
          f"{args.fraction:.0%} of peak ({scenario.name})")
    write_results(args.out.resolve(), {**document, "rss": figures.as_json(),
                                       "verdict": verdict, "samples": samples})
    return 0 if figures.passed else 1


if __name__ == "__main__":
    sys.exit(main())
