"""Results of a run: one Measurement per (repetition, scenario, concurrency), their summary
rows (medians and min-max over repetitions), same-run ratios, the printed tables and the
Markdown summary.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.loadgen import LoadResult

LOADGEN = "loadgen"
RUNNER = "runner"  # this process: it only waits, but its CPU is counted where it runs
SATURATED_CORES = 0.95
DISTURBED_CORES = 0.15  # foreign CPU use (other processes, steal) that makes a run suspect
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Measurement:
    scenario: str
    concurrency: int
    repetition: int
    under_test: str  # role of the process under test
    load: LoadResult
    wall_s: float  # wall time over which cpu_s was taken
    cpu_s: dict[str, float]  # role (LOADGEN, RUNNER too) -> CPU seconds used during the run
    peak_rss: dict[str, int]  # role -> peak RSS in bytes during the run (VmHWM summed)
    cpu_of: dict[str, int | None]  # role (and LOADGEN) -> the CPU it was pinned to
    host: dict[int, tuple[float, float]]  # CPU -> (busy, steal) seconds during the run
    processes: dict[str, int] = field(default_factory=dict)  # role -> processes in its tree
    # Who else ran: command name -> CPU seconds of the processes not ours (largest first), and
    # CPU -> seconds of interrupts (no process's); both for the `foreign` figure.
    others: dict[str, float] = field(default_factory=dict)
    irq: dict[int, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.load.error_count == 0

    def cores(self, role: str) -> float:
        return self.cpu_s[role] / self.wall_s

    @property
    def cpu_us_per_request(self) -> float:
        requests = self.load.requests
        return self.cpu_s[self.under_test] / requests * 1e6 if requests else float("nan")

    @property
    def cpu_load(self) -> dict[int, float]:
        """Cores used on each pinned CPU, all processes pinned there added up."""
        load: dict[int, float] = {}
        for role, cpu in self.cpu_of.items():
            if cpu is not None:
                load[cpu] = load.get(cpu, 0.0) + self.cores(role)
        return load

    @property
    def foreign(self) -> float:
        """Cores used by anything but our processes (other work on the host, hypervisor
        steal), on the busiest pinned CPU, or over all CPUs when nothing is pinned."""
        return max(self.foreign_by_cpu.values())

    @property
    def foreign_by_cpu(self) -> dict[int, float]:
        """foreign per CPU (-1: all of them, when nothing is pinned)."""
        ours = self.cpu_load
        if not ours:
            ours = {-1: sum(self.cores(role) for role in self.cpu_s)}
            busy = {-1: sum(b + s for b, s in self.host.values()) / self.wall_s}
        else:
            busy = {cpu: (b + s) / self.wall_s for cpu, (b, s) in self.host.items()}
        return {cpu: max(0.0, busy.get(cpu, 0.0) - ours.get(cpu, 0.0)) for cpu in busy}

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "concurrency": self.concurrency,
            "repetition": self.repetition, "under_test": self.under_test, "ok": self.ok,
            "requests": self.load.requests, "duration_s": round(self.load.duration_s, 3),
            "rps": round(self.load.rps, 1), "in_flight": self.load.concurrency,
            "latency_ms": {k: round(v, 3) for k, v in self.load.latency_ms.items()},
            "errors": self.load.errors,
            "cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "cpu_s": {k: round(v, 3) for k, v in self.cpu_s.items()},
            "cores": {role: round(self.cores(role), 3) for role in self.cpu_s},
            "peak_rss_mib": {k: round(v / MIB, 1) for k, v in self.peak_rss.items()},
            "processes": self.processes,
            "pinned": self.cpu_of,
            "cpu_load": {f"cpu{c}": round(v, 3) for c, v in sorted(self.cpu_load.items())},
            "host_cores": {f"cpu{c}": {"busy": round(b / self.wall_s, 3),
                                       "steal": round(s / self.wall_s, 3)}
                           for c, (b, s) in sorted(self.host.items())},
            "foreign_cores": round(self.foreign, 3),
            "foreign_cores_by_cpu": {f"cpu{c}": round(v, 3)
                                     for c, v in sorted(self.foreign_by_cpu.items()) if c >= 0},
            "other_processes_cores": {k: round(v / self.wall_s, 3)
                                      for k, v in self.others.items()},
            "irq_cores": {f"cpu{c}": round(v / self.wall_s, 3)
                          for c, v in sorted(self.irq.items())},
            "wall_s": round(self.wall_s, 3),
        }

    def others_text(self) -> str:
        """The other processes' and the interrupts' cores, for a warning."""
        where = ", ".join(f"cpu{c} {v:.2f}" for c, v in sorted(self.foreign_by_cpu.items())
                          if c >= 0)
        parts = [f"foreign on {where}"] if where else []
        parts += [f"{name} {seconds / self.wall_s:.2f}" for name, seconds in self.others.items()]
        parts += [f"irq/softirq cpu{c} {v / self.wall_s:.2f}" for c, v in sorted(self.irq.items())]
        return ", ".join(parts)


def latency(percentile: str) -> Callable[[Measurement], float]:
    return lambda m: m.load.latency_ms[percentile]


def cores(role: str) -> Callable[[Measurement], float]:
    return lambda m: m.cores(role)


@dataclass(frozen=True, slots=True)
class Spread:
    median: float
    low: float
    high: float

    @staticmethod
    def of(values: Iterable[float]) -> Spread:
        items = list(values)
        return Spread(statistics.median(items), min(items), max(items))

    def as_json(self, digits: int = 3) -> dict[str, float]:
        return {"median": round(self.median, digits), "min": round(self.low, digits),
                "max": round(self.high, digits)}


@dataclass(frozen=True, slots=True)
class Row:
    """One (scenario, concurrency) over its repetitions; `failed` says why it is not reported."""

    scenario: str
    concurrency: int
    runs: tuple[Measurement, ...]
    failed: str | None

    def spread(self, metric: Callable[[Measurement], float]) -> Spread:
        return Spread.of(metric(m) for m in self.runs)

    def warnings(self, layout: str) -> list[str]:
        """cpu0 (load generator, and the backend in the isolated layout) saturated; other
        work on the host took CPU during the runs."""
        if self.failed or not self.runs:
            return []
        found = []
        name = f"{self.scenario} c={self.concurrency}"
        cpu0 = self.spread(lambda m: m.cpu_load.get(0, 0.0))
        if layout != "shared" and cpu0.median >= SATURATED_CORES:
            parts = ", ".join(f"{role} {self.spread(cores(role)).median:.2f}"
                              for role, cpu in self.runs[0].cpu_of.items() if cpu == 0)
            found.append(f"{name}: cpu0 saturated ({cpu0.median:.2f} cores: {parts}); its "
                         "numbers are bounded by cpu0, not by the process under test")
        foreign = self.spread(lambda m: m.foreign)
        if foreign.high >= DISTURBED_CORES:
            worst = max(self.runs, key=lambda m: m.foreign)
            found.append(f"{name}: other work on the host took up to {foreign.high:.2f} cores "
                         f"of a CPU in use (median {foreign.median:.2f}; /proc/stat): "
                         "these runs are disturbed, repeat them on a quiet host"
                         + (f" (worst run: {worst.others_text()})" if worst.others_text() else ""))
        return found

    def as_json(self) -> dict[str, Any]:
        if self.failed:
            return {"scenario": self.scenario, "concurrency": self.concurrency,
                    "failed": self.failed}
        roles = self.runs[0].cpu_s
        return {
            "scenario": self.scenario, "concurrency": self.concurrency,
            "repetitions": len(self.runs), "rps": self.spread(lambda m: m.load.rps).as_json(1),
            "latency_ms": {p: self.spread(latency(p)).as_json()
                           for p in self.runs[0].load.latency_ms},
            "cpu_us_per_request": self.spread(lambda m: m.cpu_us_per_request).as_json(1),
            "cores": {role: self.spread(cores(role)).as_json() for role in roles},
            "peak_rss_mib": self.spread(
                lambda m: m.peak_rss[m.under_test] / MIB).as_json(1),
            "cpu_load": {f"cpu{c}": Spread.of(m.cpu_load[c] for m in self.runs).as_json()
                         for c in sorted(self.runs[0].cpu_load)},
            "foreign_cores": self.spread(lambda m: m.foreign).as_json(),
        }


def summarize(measurements: Sequence[Measurement], order: Sequence[str],
              concurrencies: Sequence[int],
              failures: dict[tuple[str, int | None], str]) -> list[Row]:
    """Rows in scenario order, then concurrency order; a row with any error is FAILED."""
    rows = []
    for scenario in order:
        for conc in concurrencies:
            runs = tuple(m for m in measurements
                         if m.scenario == scenario and m.concurrency == conc)
            reason = failures.get((scenario, None)) or failures.get((scenario, conc))
            bad = [m for m in runs if not m.ok]
            if bad:
                totals: dict[str, int] = {}
                for m in bad:
                    for kind, count in m.load.errors.items():
                        totals[kind] = totals.get(kind, 0) + count
                counts = " ".join(f"{k}={v}" for k, v in sorted(totals.items()))
                reason = f"errors in {len(bad)}/{len(runs)} runs: {counts}"
            if runs or reason:
                rows.append(Row(scenario, conc, runs, reason))
    return rows


@dataclass(frozen=True, slots=True)
class Ratio:
    numerator: str
    denominator: str
    concurrency: int
    metrics: dict[str, Spread]  # metric -> spread of the same-repetition ratios

    def as_json(self) -> dict[str, Any]:
        return {"ratio": f"{self.numerator} / {self.denominator}",
                "concurrency": self.concurrency,
                **{name: spread.as_json() for name, spread in self.metrics.items()}}


RATIO_METRICS: dict[str, Callable[[Measurement], float]] = {
    "rps": lambda m: m.load.rps,
    "p50": latency("p50"),
    "p99": latency("p99"),
    "cpu_per_request": lambda m: m.cpu_us_per_request,
}


def ratios(rows: Sequence[Row], pairs: Sequence[tuple[str, str]]) -> list[Ratio]:
    """numerator/denominator per repetition where both ran without errors: median, min-max."""
    ok = {(r.scenario, r.concurrency): r for r in rows if not r.failed}
    found = []
    for numerator, denominator in pairs:
        for (scenario, conc), row in ok.items():
            other = ok.get((denominator, conc))
            if scenario != numerator or other is None:
                continue
            by_rep = {m.repetition: m for m in other.runs}
            pairs_ = [(m, by_rep[m.repetition]) for m in row.runs if m.repetition in by_rep]
            if pairs_:
                found.append(Ratio(numerator, denominator, conc, {
                    name: Spread.of(metric(a) / metric(b) for a, b in pairs_)
                    for name, metric in RATIO_METRICS.items()}))
    return found


def _cell(spread: Spread, digits: int = 2) -> str:
    return f"{spread.median:.{digits}f}"


# Columns of the tables: title, width in the text table (negative: left-aligned).
ROW_COLUMNS = (("scenario", -22), ("conc", 4), ("req/s median (min-max)", -22), ("p50 ms", 7),
               ("p99 ms", 7), ("p99.9 ms", 8), ("CPU µs/req", 10), ("cores", 5),
               ("RSS MiB", 7), ("errors", 6), ("cpu0", 4), ("foreign", 7), ("other cores", -1))
RATIO_COLUMNS = (("ratio", -40), ("conc", 4),
                 *((name, -18) for name in RATIO_METRICS))


def row_cells(row: Row) -> list[str]:
    """The table cells of a row; a FAILED row has its reason in the third cell, no more."""
    head = [row.scenario, str(row.concurrency)]
    if row.failed:
        return [*head, f"FAILED: {row.failed.splitlines()[0].rstrip(':')}"]
    rps = row.spread(lambda m: m.load.rps)
    first = row.runs[0]
    others = ", ".join(f"{role} {row.spread(cores(role)).median:.2f}"
                       for role in first.cpu_s if role != first.under_test)
    cpu0 = (f"{row.spread(lambda m: m.cpu_load[0]).median:.2f}" if 0 in first.cpu_load
            else "-")
    return [
        *head, f"{rps.median:.0f} ({rps.low:.0f}-{rps.high:.0f})",
        *(_cell(row.spread(latency(p))) for p in ("p50", "p99", "p99.9")),
        _cell(row.spread(lambda m: m.cpu_us_per_request), 0),
        _cell(row.spread(lambda m: m.cores(m.under_test))),
        _cell(row.spread(lambda m: m.peak_rss[m.under_test] / MIB), 1),
        "0", cpu0, f"{row.spread(lambda m: m.foreign).median:.2f}", others,
    ]


def ratio_cells(ratio: Ratio) -> list[str]:
    return [f"{ratio.numerator} / {ratio.denominator}", str(ratio.concurrency),
            *(f"{s.median:.2f} [{s.low:.2f}-{s.high:.2f}]" for s in ratio.metrics.values())]


def _text_table(columns: Sequence[tuple[str, int]], lines: Iterable[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        # a FAILED row's reason runs on over the columns it has no cells for
        return "  ".join(f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
                         for cell, (_, width) in zip(cells, columns, strict=False)).rstrip()

    header = line([title for title, _ in columns])
    return "\n".join([header, "-" * len(header), *(line(cells) for cells in lines)])


def format_rows(rows: Sequence[Row]) -> str:
    return _text_table(ROW_COLUMNS, map(row_cells, rows))


def format_ratios(found: Sequence[Ratio]) -> str:
    return _text_table(RATIO_COLUMNS, map(ratio_cells, found)) if found else NO_RATIOS


NO_RATIOS = "ratios: none (each needs both of its scenarios to run without errors)"


def markdown_table(columns: Sequence[tuple[str, int]], lines: Iterable[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        padded = [*cells, *([""] * (len(columns) - len(cells)))]
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in padded) + " |"

    aligns = ["---" if width < 0 else "---:" for _, width in columns]
    return "\n".join([line([title for title, _ in columns]), "|" + "|".join(aligns) + "|",
                      *(line(cells) for cells in lines)])


def format_markdown(document: Mapping[str, Any], rows: Sequence[Row],
                    found: Sequence[Ratio]) -> str:
    """The run as Markdown (bench/RESULTS.md is a copy): when, what, where, the command, the
    table, the ratios and the warnings. `document` is the results JSON's content."""
    git, machine, options = document["git"], document["machine"], document["options"]
    versions = ", ".join(f"{name} {str(version).removeprefix(name + ' ')}"
                         for name, version in document["versions"].items())
    concurrency = ",".join(str(c) for c in options["concurrency"])
    lines = [
        "# Benchmark results", "",
        *(["**Interrupted: partial results.**", ""] if document.get("interrupted") else []),
        f"- date: {document['date']}",
        f"- commit: `{git['commit']}`" + (" (dirty: uncommitted changes)" if git["dirty"] else ""),
        f"- machine: {machine['nproc']} CPUs, {machine['cpu_model']}, "
        f"Linux {machine['kernel']}",
        f"- versions: {versions}",
        f"- command: `{document.get('command', 'python -m bench')}`",
        f"- layout `{options['layout']}`, concurrency {concurrency}, {options['repeat']} x "
        f"{options['duration_s']:g} s per measurement (+{options['warmup_s']:g} s warm-up), "
        "round-robin; cells are medians over the repetitions",
        "", "## Results", "",
        markdown_table(ROW_COLUMNS, map(row_cells, rows)),
        "", "## Ratios", "",
        "Same-run ratios: median [min-max] of the per-repetition ratios. rps above 1 and "
        "p50, p99, cpu_per_request below 1 favour the numerator.", "",
        markdown_table(RATIO_COLUMNS, map(ratio_cells, found)) if found else NO_RATIOS,
        "", "## Warnings", "",
        *([f"- {warning}" for warning in document["warnings"]] or ["none"]),
    ]
    return "\n".join(lines) + "\n"
