"""Repeated runs read together: each headline figure as the median of the runs with its min and
max, and the tuning's targets checked run by run (stock and tuned of the same run compared), so
a target counts as met only when its worst run meets it."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from components.tools.bench.results import ProfileResult

# The tuning's targets (the numbers the project promises against stock Debian).
BELOW_CAPACITY_P99_OVER_STOCK = 1.2
OVERLOAD_MULTIPLIERS = (1.5, 2.0)
OVERLOAD_OWN_PEAK_SHARE = 0.9
OVERLOAD_OVER_STOCK = 1.5
SHED_P99_MS = 100.0
RAW_SHARE = 0.9  # tuned peak goodput through HAProxy over the app's raw throughput
TWICE_CAPACITY_OWN_PEAK_SHARE = 0.95


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        found = tuple(v for v in values if not math.isnan(v))
        if not found:
            return cls(math.nan, math.nan, math.nan, ())
        return cls(round(statistics.median(found), 3), min(found), max(found), found)

    @property
    def relative_range(self) -> float:
        """(max - min) / median: how far apart the runs are."""
        if not self.runs or self.median == 0:
            return math.nan
        return round((self.high - self.low) / self.median, 3)

    def text(self, unit: str = "") -> str:
        if not self.runs:
            return "n/a"
        if len(self.runs) == 1:
            return f"{self.median:g}{unit}"
        return f"{self.median:g}{unit} ({self.low:g}-{self.high:g})"


def by_run(results: list[ProfileResult], profile: str, mode: str) -> dict[int, ProfileResult]:
    return {
        int(r.extra.get("run", 1)): r for r in results if r.profile == profile and r.mode == mode
    }


def _steps(result: ProfileResult) -> dict[float, dict[str, Any]]:
    return {float(s["multiplier"]): s for s in result.extra.get("steps", [])}


def headline(
    results: list[ProfileResult], meta: dict[str, Any]
) -> dict[str, dict[str, dict[str, Spread]]]:
    """profile -> mode -> figure -> Spread, for the figures a reader compares."""
    out: dict[str, dict[str, dict[str, Spread]]] = {}
    for mode in ("stock", "tuned"):
        sweeps = list(by_run(results, "sweep", mode).values())
        if sweeps:
            figures = {"peak_goodput_rps": Spread.of(r.extra["peak_goodput_rps"] for r in sweeps)}
            for m in sorted({m for r in sweeps for m in _steps(r)}):
                for name in ("goodput_rps", "p99_ms", "shed_p99_ms"):
                    figures[f"{m:g}x {name}"] = Spread.of(
                        float(_steps(r)[m][name]) for r in sweeps if m in _steps(r)
                    )
            # Where a served request's CPU went at capacity, by daemon (host rig).
            at_capacity = [_steps(r)[1.0] for r in sweeps if 1.0 in _steps(r)]
            for daemon in sorted({d for s in at_capacity for d in daemon_ms(s)}):
                figures[f"1x {daemon} ms per served"] = Spread.of(
                    daemon_ms(s).get(daemon, math.nan) for s in at_capacity
                )
            out.setdefault("sweep", {})[mode] = figures
        c10ks = list(by_run(results, "c10k", mode).values())
        if c10ks:
            out.setdefault("c10k", {})[mode] = {
                "failed": Spread.of(r.failed for r in c10ks),
                "held_min": Spread.of(r.extra["held_min_during_hold"] for r in c10ks),
                "p99_ms": Spread.of(r.p99_ms for r in c10ks),
                "probe_p99_ms": Spread.of(r.extra["probe_p99_ms"] for r in c10ks),
            }
        seeds = list(by_run(results, "seed", mode).values())
        if seeds:
            out.setdefault("seed", {})[mode] = {
                "failed": Spread.of(r.failed for r in seeds),
                "p99_ms": Spread.of(r.p99_ms for r in seeds),
            }
    capacity = meta.get("capacity_runs_rps")
    raws = [b["raw"]["rates"] for b in meta.get("boxes", []) if "raw" in b]
    if capacity or raws:
        out["box"] = {
            "stock": {"capacity_rps": Spread.of(capacity or [])},
            "tuned": {
                "raw_app_rps": Spread.of(max(r["served_rps"] for r in rates) for rates in raws)
            },
        }
    return out


def daemon_ms(step: dict[str, Any]) -> dict[str, float]:
    """A metered step's CPU by daemon, in ms per served request."""
    cpu = step.get("cpu") or {}
    served = float(step.get("served_rps") or 0)
    if not served:
        return {}
    return {
        name: round(cores * 1000 / served, 2)
        for name, cores in (cpu.get("daemon_cores") or {}).items()
    }


@dataclass(frozen=True)
class Target:
    name: str
    met: bool | None  # None: not measured in this run
    measured: str  # every run's figure
    expected: str


def _check(
    name: str,
    expected: str,
    pairs: list[tuple[int, Any]],
    test: Callable[[Any], tuple[bool, str]],
) -> Target:
    if not pairs:
        return Target(name, None, "not measured", expected)
    verdicts = [(run, *test(item)) for run, item in pairs]
    return Target(
        name,
        all(ok for _, ok, _ in verdicts),
        "; ".join(f"run {run}: {text}" for run, _, text in verdicts),
        expected,
    )


def targets(results: list[ProfileResult], meta: dict[str, Any]) -> list[Target]:
    """The tuning's targets, each run's tuned box against the same run's stock box."""
    stock_sweeps, tuned_sweeps = (
        by_run(results, "sweep", "stock"),
        by_run(results, "sweep", "tuned"),
    )
    sweep_pairs = [
        (run, (stock_sweeps[run], t)) for run, t in tuned_sweeps.items() if run in stock_sweeps
    ]

    def below(pair: tuple[ProfileResult, ProfileResult]) -> tuple[bool, str]:
        stock, tuned = pair
        texts, ok = [], True
        for m, step in sorted(_steps(tuned).items()):
            if m >= 1:
                continue
            base = _steps(stock).get(m)
            limit = BELOW_CAPACITY_P99_OVER_STOCK * float(base["p99_ms"]) if base else math.nan
            good = step["failed"] == 0 and float(step["p99_ms"]) <= limit
            ok = ok and good
            texts.append(
                f"{m:g}x {step['failed']} errors, p99 {step['p99_ms']:.0f} ms "
                f"(stock {base['p99_ms']:.0f})"
                if base
                else f"{m:g}x no stock step"
            )
        return ok, ", ".join(texts)

    def overload(pair: tuple[ProfileResult, ProfileResult]) -> tuple[bool, str]:
        stock, tuned = pair
        peak = float(tuned.extra["peak_goodput_rps"])
        texts, ok = [], True
        for m in OVERLOAD_MULTIPLIERS:
            step, base = _steps(tuned).get(m), _steps(stock).get(m)
            if step is None or base is None:
                continue
            goodput, stock_goodput = float(step["goodput_rps"]), float(base["goodput_rps"])
            shed_p99 = float(step["shed_p99_ms"])
            good = (
                goodput >= OVERLOAD_OWN_PEAK_SHARE * peak
                and goodput >= OVERLOAD_OVER_STOCK * stock_goodput
                and goodput > 0
                and (math.isnan(shed_p99) or shed_p99 < SHED_P99_MS)
            )
            ok = ok and good
            texts.append(
                f"{m:g}x goodput {goodput:.0f} ({goodput / peak if peak else 0:.2f}x own peak, "
                f"stock {stock_goodput:.0f}), shed p99 {shed_p99:.0f} ms"
            )
        return ok and bool(texts), ", ".join(texts) or "no 1.5x or 2x step"

    out = [
        _check(
            "below capacity: 0 errors, p99 <= 1.2x stock",
            "every step under 1x",
            sweep_pairs,
            below,
        ),
        _check(
            "1.5x and 2x: goodput >= 0.9x own peak and >= 1.5x stock, sheds p99 < 100 ms",
            "both steps",
            sweep_pairs,
            overload,
        ),
    ]
    stock_c10k, tuned_c10k = by_run(results, "c10k", "stock"), by_run(results, "c10k", "tuned")

    def c10k(pair: tuple[ProfileResult, ProfileResult]) -> tuple[bool, str]:
        stock, tuned = pair
        probe, stock_probe = tuned.extra["probe_p99_ms"], stock.extra["probe_p99_ms"]
        ok = tuned.extra["all_held"] and tuned.failed == 0 and probe <= stock_probe
        return ok, (
            f"held {tuned.extra['held_min_during_hold']}, {tuned.failed} failed, probe p99 "
            f"{probe:.0f} ms (stock {stock_probe:.0f})"
        )

    out.append(
        _check(
            "C10K: all held, 0 failures, probe p99 <= stock",
            "every run",
            [(run, (stock_c10k[run], t)) for run, t in tuned_c10k.items() if run in stock_c10k],
            c10k,
        )
    )
    out.append(
        _check(
            "seed: 0 failed",
            "0",
            sorted(by_run(results, "seed", "tuned").items()),
            lambda r: (r.failed == 0, f"{r.failed} failed"),
        )
    )
    raws = {b["run"]: b["raw"] for b in meta.get("boxes", []) if "raw" in b}

    def physical(tuned: ProfileResult) -> tuple[bool, str]:
        run = int(tuned.extra.get("run", 1))
        raw = max((r["served_rps"] for r in raws[run]["rates"]), default=0.0)
        peak = float(tuned.extra["peak_goodput_rps"])
        twice = _steps(tuned).get(2.0)
        at_twice = float(twice["goodput_rps"]) if twice else math.nan
        ok = (
            raw > 0
            and peak >= RAW_SHARE * raw
            and not math.isnan(at_twice)
            and at_twice >= TWICE_CAPACITY_OWN_PEAK_SHARE * peak
        )
        return ok, (
            f"peak {peak:.0f} = {peak / raw if raw else 0:.2f}x raw {raw:.0f}; 2x {at_twice:.0f} = "
            f"{at_twice / peak if peak else 0:.2f}x peak"
        )

    out.append(
        _check(
            "physical limit: peak >= 0.9x the raw app, 2x goodput >= 0.95x peak",
            "every run",
            [(run, t) for run, t in sorted(tuned_sweeps.items()) if run in raws],
            physical,
        )
    )
    return out


def as_json(
    spreads: dict[str, dict[str, dict[str, Spread]]], checked: list[Target]
) -> dict[str, Any]:
    return {
        "headline": {
            profile: {
                mode: {name: asdict(s) for name, s in figures.items()}
                for mode, figures in modes.items()
            }
            for profile, modes in spreads.items()
        },
        "targets": [asdict(t) for t in checked],
    }
