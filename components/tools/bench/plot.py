"""One PNG: per profile, latency percentiles, throughput and errors over time, stock and
tuned on the same axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from components.tools.bench.results import ProfileResult

COLORS = {"stock": "tab:red", "tuned": "tab:green"}


# The profiles with series to draw; the restarts profile's figures are its summary's.
PLOTTED = ("seed", "c10k", "sweep")


def plot(results: list[ProfileResult], path: Path, title: str) -> bool:
    """Write the figure, if any profile in `results` has one; whether it was written."""
    profiles = sorted({r.profile for r in results if r.profile in PLOTTED}, key=PLOTTED.index)
    if not profiles:
        return False
    fig, axes = plt.subplots(len(profiles), 3, figsize=(16, 4.2 * len(profiles)), squeeze=False)
    for row, profile in enumerate(profiles):
        left, middle, right = axes[row]
        load_axis = middle.twinx()
        for r in (r for r in results if r.profile == profile):
            s, color = r.series, COLORS[r.mode]
            marker = "o" if profile == "sweep" else None
            left.plot(s.t_s, s.p50_ms, color=color, linestyle=":", label=f"{r.mode} p50")
            left.plot(s.t_s, s.p95_ms, color=color, linestyle="--", label=f"{r.mode} p95")
            left.plot(s.t_s, s.p99_ms, color=color, marker=marker, label=f"{r.mode} p99")
            rate = "goodput" if profile == "sweep" else "req/s"
            middle.plot(s.t_s, s.rps, color=color, marker=marker, label=f"{r.mode} {rate}")
            right.plot(
                s.t_s, s.errors_per_s, color=color, marker=marker, label=f"{r.mode} errors/s"
            )
            load_axis.plot(s.t_s, s.load, color=color, alpha=0.35, linestyle="-.")
        # The sweep's x axis is the offered load; the other profiles' is time.
        x = "offered requests/s" if profile == "sweep" else "s"
        left.set(title=f"{profile}: latency of served requests", xlabel=x, ylabel="ms")
        left.set_yscale("symlog")
        if profile == "sweep":
            objective = next(r.extra["objective_ms"] for r in results if r.profile == profile)
            left.axhline(
                objective, color="grey", linewidth=0.8, label=f"objective {objective:g} ms"
            )
            middle.set(title="sweep: goodput (served within the objective)", xlabel=x)
            middle.set_ylabel("requests/s")
            load_axis.set_ylabel("served requests/s (dash-dot)")
        else:
            middle.set(title=f"{profile}: throughput", xlabel=x, ylabel="requests/s")
            load_axis.set_ylabel("clients / open connections (dash-dot)")
        right.set(title=f"{profile}: failed requests", xlabel=x, ylabel="errors/s")
        for ax in (left, middle, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
