"""The latency-against-throughput plot of a run: per scenario, its p50 (solid) and p99 (dashed)
medians over its concurrencies; one panel for the REST scenarios, one for gRPC. Needs
matplotlib (the [bench] extra), imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.report import Row, latency

PANELS = (("REST (wrk, HTTP/1.1)", "rest-"), ("gRPC (h2load, HTTP/2)", "grpc-"))
LOG_X_SPAN = 30.0  # throughputs further apart than this get a log x axis


def plot(rows: Sequence[Row], path: Path, title: str = "") -> None:
    """Draw `rows` into the PNG at `path`; `title` (date, commit, layout) goes under the
    headline. Failed rows are left out. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no display; before anything imports pyplot
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    panels = [(name, series) for name, prefix in PANELS if (series := _series(rows, prefix))]
    figure = Figure(figsize=(max(9, 7 * len(panels)), 7), layout="constrained")
    figure.suptitle("Latency against throughput" + (f"\n{title}" if title else ""), fontsize=11)
    if not panels:
        figure.text(0.5, 0.5, "no scenario ran without errors", ha="center")
        figure.savefig(path, dpi=110)
        return
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    minor = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:e}"[0] in "25" else "")
    palette = matplotlib.colormaps["tab20"]  # 10 hues, dark then light
    for axes, (name, series) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels,
                                    strict=True):
        axes.set_title(name)
        axes.set_xlabel("throughput (req/s, median over repetitions)")
        axes.set_ylabel("latency (ms, log scale)")
        for index, (scenario, points) in enumerate(series.items()):
            color = palette((2 * index) % 20 + (index // 10) % 2)
            throughput = [rps for _, rps, _, _ in points]
            axes.plot(throughput, [p50 for *_, p50, _ in points], "o-", color=color,
                      label=scenario)
            axes.plot(throughput, [p99 for *_, p99 in points], "s--", color=color, alpha=0.7)
            for conc, rps, p50, _ in points:
                axes.annotate(f"c{conc}", (rps, p50), textcoords="offset points",
                              xytext=(4, -10), fontsize=7, color=color)
        axes.set_yscale("log")
        every = [rps for points in series.values() for _, rps, _, _ in points]
        if max(every) > LOG_X_SPAN * min(every):
            axes.set_xscale("log")
        for axis in (axes.yaxis, *((axes.xaxis,) if axes.get_xscale() == "log" else ())):
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(minor)
        axes.tick_params(which="minor", labelsize=7)
        axes.grid(True, which="both", alpha=0.3)
        styles = [Line2D([], [], color="black", marker="o", label="p50"),
                  Line2D([], [], color="black", marker="s", linestyle="--", label="p99")]
        handles, _ = axes.get_legend_handles_labels()
        axes.legend(handles=[*handles, *styles], fontsize=8, loc="upper center",
                    bbox_to_anchor=(0.5, -0.1), ncols=2)
    figure.savefig(path, dpi=110)


def _series(rows: Sequence[Row], prefix: str
            ) -> dict[str, list[tuple[int, float, float, float]]]:
    """Scenario -> (concurrency, req/s, p50 ms, p99 ms) medians, by concurrency."""
    found: dict[str, list[tuple[int, float, float, float]]] = {}
    for row in rows:
        if row.failed or not row.runs or not row.scenario.startswith(prefix):
            continue
        found.setdefault(row.scenario, []).append((
            row.concurrency, row.spread(lambda m: m.load.rps).median,
            row.spread(latency("p50")).median, row.spread(latency("p99")).median))
    return {name: sorted(points) for name, points in found.items()}
