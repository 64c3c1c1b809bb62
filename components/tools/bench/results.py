"""Benchmark results: failures by kind, latency percentiles, time series, tuned/stock ratios."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAILURE_KINDS = ("refused", "reset", "timeout", "http_5xx", "other")


def failure_kind(error: str) -> str:
    """Map a client-side error (Locust's text, or an exception's name) to one kind."""
    text = error.lower()
    if "refused" in text:
        return "refused"
    if (
        "reset" in text
        or "remotedisconnected" in text
        or "aborted" in text
        or "eof" in text
        or "incompleteread" in text
    ):
        return "reset"
    if "timeout" in text or "timed out" in text:
        return "timeout"
    if any(f"{code} server error" in text or f"status {code}" in text for code in range(500, 600)):
        return "http_5xx"
    return "other"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Series:
    """Per-interval figures for the plot."""

    t_s: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p95_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors_per_s: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # clients (seed) or open connections (C10K)


@dataclass
class ProfileResult:
    profile: str
    mode: str
    requests: int
    failures: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    peak_connections: int
    generator_cpu_percent: float
    generator_saturated: bool
    duration_s: float
    series: Series
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def ratios(tuned: ProfileResult, stock: ProfileResult) -> dict[str, float | None]:
    """tuned / stock for every figure; None where stock's is zero."""
    figures = ("requests", "failed", "p50_ms", "p95_ms", "p99_ms", "peak_connections")
    out: dict[str, float | None] = {}
    for name in figures:
        a, b = float(getattr(tuned, name)), float(getattr(stock, name))
        out[name] = None if b == 0 or math.isnan(b) or math.isnan(a) else round(a / b, 3)
    return out


def write_results(
    path: Path,
    meta: dict[str, Any],
    results: list[ProfileResult],
    read_together: dict[str, Any] | None = None,
) -> None:
    """`profiles`: the first run, each profile's stock and tuned and their ratios (what the plot
    draws); `later_runs`: the same for each further run; `read_together`: medians and spreads
    over the runs, and the targets."""
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    for r in results:
        entry = asdict(r)
        entry["failed"] = r.failed
        runs.setdefault(int(r.extra.get("run", 1)), {}).setdefault(r.profile, {})[r.mode] = entry
    for run, by_profile in runs.items():
        of_run = [r for r in results if int(r.extra.get("run", 1)) == run]
        for profile, modes in by_profile.items():
            if "tuned" in modes and "stock" in modes:
                tuned = next(r for r in of_run if r.profile == profile and r.mode == "tuned")
                stock = next(r for r in of_run if r.profile == profile and r.mode == "stock")
                modes["ratio_tuned_over_stock"] = ratios(tuned, stock)
    first = min(runs, default=1)
    data: dict[str, Any] = {"meta": meta, "profiles": runs.get(first, {})}
    if len(runs) > 1:
        data["later_runs"] = {str(run): runs[run] for run in sorted(runs) if run != first}
    if read_together is not None:
        data.update(read_together)
    path.write_text(json.dumps(data, indent=2, default=str))
