from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from components.tools.bench.results import (
    FAILURE_KINDS,
    ProfileResult,
    Series,
    failure_kind,
    percentile,
    ratios,
    write_results,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("ConnectionRefusedError(111, 'Connection refused')", "refused"),
        ("ConnectionResetError(104, 'Connection reset by peer')", "reset"),
        ("RemoteDisconnected('Remote end closed connection without response')", "reset"),
        (
            "ReadTimeout(\"HTTPConnectionPool(host='x'): Read timed out. (read timeout=30)\")",
            "timeout",
        ),
        (
            "HTTPError('503 Server Error: Service Unavailable for url: http://127.0.0.1/hits')",
            "http_5xx",
        ),
        ("something else", "other"),
    ],
)
def test_failure_kinds(error: str, kind: str) -> None:
    assert failure_kind(error) == kind


def test_percentile() -> None:
    assert percentile(list(map(float, range(1, 101))), 99) == 99.0
    assert percentile([5.0], 50) == 5.0
    assert math.isnan(percentile([], 50))


def _result(mode: str, requests: int, failed: int, p99: float) -> ProfileResult:
    failures = dict.fromkeys(FAILURE_KINDS, 0)
    failures["refused"] = failed
    return ProfileResult(
        "seed", mode, requests, failures, 10.0, 50.0, p99, 300, 40.0, False, 60.0, Series()
    )


def test_ratios_and_results_file(tmp_path: Path) -> None:
    tuned, stock = _result("tuned", 2000, 0, 100.0), _result("stock", 1000, 40, 400.0)
    r = ratios(tuned, stock)
    assert r["requests"] == 2.0 and r["p99_ms"] == 0.25 and r["failed"] == 0.0
    assert ratios(stock, tuned)["failed"] is None  # tuned failed nothing: no ratio
    write_results(tmp_path / "results.json", {"stack": "staging"}, [tuned, stock])
    data = json.loads((tmp_path / "results.json").read_text())
    seed = data["profiles"]["seed"]
    assert seed["stock"]["failed"] == 40 and seed["stock"]["failures"]["refused"] == 40
    assert seed["ratio_tuned_over_stock"]["requests"] == 2.0
