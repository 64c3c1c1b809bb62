"""The seed scenario with Locust, headless; its CSV stats are the record."""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from components.tools.bench.profiles import SeedProfile
from components.tools.bench.results import FAILURE_KINDS, ProfileResult, Series, failure_kind

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
# One Locust process uses one core: past this it is the bottleneck, not the box.
SATURATED_PERCENT = 90.0


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def parse_stats(prefix: Path) -> tuple[int, float, float, float]:
    with Path(f"{prefix}_stats.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return (int(row["Request Count"]), _float(row["50%"]), _float(row["95%"]), _float(row["99%"]))


def parse_failures(prefix: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Failures by kind, and by Locust's own error text (for the record)."""
    kinds = dict.fromkeys(FAILURE_KINDS, 0)
    texts: dict[str, int] = {}
    path = Path(f"{prefix}_failures.csv")
    if path.is_file():
        with path.open() as f:
            for row in csv.DictReader(f):
                count = int(row["Occurrences"])
                kinds[failure_kind(row["Error"])] += count
                texts[row["Error"][:120]] = texts.get(row["Error"][:120], 0) + count
    return kinds, texts


def parse_history(prefix: Path) -> tuple[Series, int | None]:
    """The per-second series, and how many clients there were when failures began."""
    series = Series()
    first_failure_clients: int | None = None
    path = Path(f"{prefix}_stats_history.csv")
    if not path.is_file():
        return series, None
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    if not rows:
        return series, None
    start = int(rows[0]["Timestamp"])
    for row in rows:
        series.t_s.append(int(row["Timestamp"]) - start)
        series.rps.append(_float(row["Requests/s"]))
        series.errors_per_s.append(_float(row["Failures/s"]))
        series.p50_ms.append(_float(row["50%"]))
        series.p95_ms.append(_float(row["95%"]))
        series.p99_ms.append(_float(row["99%"]))
        series.load.append(_float(row["User Count"]))
        if first_failure_clients is None and int(row["Total Failure Count"]) > 0:
            first_failure_clients = int(row["User Count"])
    return series, first_failure_clients


def run_seed(
    profile: SeedProfile,
    url: str,
    mode: str,
    work: Path,
    peak_connections: int = 0,
    hits_token: str = "",
) -> ProfileResult:
    work.mkdir(parents=True, exist_ok=True)
    prefix = work / f"seed-{mode}"
    env = {
        **os.environ,
        "TUNEDSTACK_HITS_TOKEN": hits_token,
        "TUNEDSTACK_THINK_S": str(profile.think_time_s),
        "TUNEDSTACK_PATH": profile.path,
        "TUNEDSTACK_TIMEOUT_S": str(profile.request_timeout_s),
    }
    locust = Path(sys.executable).parent / "locust"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        [
            str(locust),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            url,
            "--users",
            str(profile.clients),
            "--spawn-rate",
            str(profile.spawn_rate),
            "--run-time",
            f"{round(profile.duration_s)}s",
            "--stop-timeout",
            "10",
            "--csv",
            str(prefix),
            "--csv-full-history",
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        check=False,
        stdout=(work / f"locust-{mode}.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / wall * 100
    requests, p50, p95, p99 = parse_stats(prefix)
    kinds, texts = parse_failures(prefix)
    series, first_failure_clients = parse_history(prefix)
    return ProfileResult(
        profile="seed",
        mode=mode,
        requests=requests,
        failures=kinds,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        peak_connections=peak_connections,
        generator_cpu_percent=round(cpu, 1),
        generator_saturated=cpu >= SATURATED_PERCENT,
        duration_s=round(wall, 1),
        series=series,
        extra={
            "clients": profile.clients,
            "spawn_rate": profile.spawn_rate,
            "think_time_s": profile.think_time_s,
            "failures_began_at_clients": first_failure_clients,
            "errors": texts,
        },
    )
