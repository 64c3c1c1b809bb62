from __future__ import annotations

from pathlib import Path

from components.tools.bench.plot import plot
from components.tools.bench.results import FAILURE_KINDS, ProfileResult, Series


def test_plot_writes_a_png(tmp_path: Path) -> None:
    series = Series(
        [0, 5, 10], [10, 20, 30], [5, 6, 7], [9, 10, 11], [20, 30, 40], [0, 1, 0], [10, 20, 30]
    )
    results = [
        ProfileResult(
            p, m, 100, dict.fromkeys(FAILURE_KINDS, 0), 5, 9, 20, 30, 10, False, 10, series
        )
        for p in ("seed", "c10k")
        for m in ("stock", "tuned")
    ]
    plot(results, tmp_path / "bench.png", "test")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_with_nothing_to_draw_writes_no_figure(tmp_path: Path) -> None:
    # The restarts profile's figures are per window, in its summary and the JSON.
    series = Series(t_s=[0.0, 1.0], rps=[70.0, 55.0], load=[0.0, 10.0])
    results = [
        ProfileResult(
            "restarts", m, 100, dict.fromkeys(FAILURE_KINDS, 0), 0, 0, 0, 0, 0, False, 10, series
        )
        for m in ("stock", "tuned")
    ]
    assert not plot(results, tmp_path / "bench.png", "test")
    assert not (tmp_path / "bench.png").exists()
