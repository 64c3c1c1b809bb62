"""The restarts profile's arithmetic and its edit of gunicorn.conf.py, checked by Debian's
gunicorn: the measurement behind sizing's RESTART_COST_REQUESTS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.bench.restarts import (
    Window,
    parse_sample,
    recycling_config,
    restart_cost_requests,
)

REPO = Path(__file__).resolve().parents[3]
GUNICORN = "/usr/bin/gunicorn"  # Debian's, the one the box runs


def test_busy_cpu_is_proc_stat_without_idle_and_iowait() -> None:
    text = "cpu  100 5 50 9000 40 3 7 0 0 0\n12\n"
    sample = parse_sample(text)
    assert sample.busy_ticks == 100 + 5 + 50 + 3 + 7
    assert sample.workers_started == 12


def test_this_machines_own_proc_stat_parses_and_only_grows() -> None:
    line = Path("/proc/stat").read_text().splitlines()[0]
    first = parse_sample(f"{line}\n0\n")
    again = parse_sample(Path("/proc/stat").read_text().splitlines()[0] + "\n0\n")
    assert 0 < first.busy_ticks <= again.busy_ticks


def test_a_line_that_is_not_the_cpu_total_is_refused() -> None:
    with pytest.raises(ValueError, match="cpu line"):
        parse_sample("cpu0 1 2 3 4 5 6 7 8\n0\n")


def test_a_restart_costs_the_extra_cpu_per_restart_over_one_requests_cpu() -> None:
    calm = Window(max_requests=0, served=4000, seconds=60, cpu_ms=4000 * 26.0, restarts=0)
    # 10 restarts, each 2.6 s of CPU on top of 3000 requests at the calm 26 ms.
    forced = Window(
        max_requests=200, served=3000, seconds=60, cpu_ms=3000 * 26.0 + 10 * 2600, restarts=10
    )
    assert restart_cost_requests([calm, forced]) == pytest.approx(100)


def test_without_both_kinds_of_window_there_is_no_cost() -> None:
    calm = Window(max_requests=0, served=4000, seconds=60, cpu_ms=104_000, restarts=0)
    with pytest.raises(ValueError, match="restarted"):
        restart_cost_requests([calm])
    forced = Window(max_requests=200, served=3000, seconds=60, cpu_ms=104_000, restarts=10)
    with pytest.raises(ValueError, match="recycling off"):
        restart_cost_requests([forced])


@pytest.mark.parametrize("tuning", ["tuned", "stock"])
def test_the_edited_config_recycles_as_asked_in_gunicorns_own_reading(
    tuning: str, tmp_path: Path
) -> None:
    if not Path(GUNICORN).exists():
        pytest.skip("Debian's gunicorn is installed by bin/test")
    settings = load_stack_file(REPO / "stacks", "staging").model_copy(update={"tuning": tuning})
    rendered = render_files("staging", settings, size(settings), Secrets.placeholders())
    conf = tmp_path / "gunicorn.conf.py"
    text = rendered.by_path()[PATHS.gunicorn_conf].content
    app_dir = REPO / "sample-app"
    conf.write_text(
        recycling_config(text, 200).replace(f'chdir = "{PATHS.app_dir}"', f'chdir = "{app_dir}"')
    )
    shown = subprocess.run(
        [GUNICORN, "--print-config", "-c", str(conf)],
        capture_output=True,
        text=True,
        cwd=app_dir,
    )
    assert shown.returncode == 0, shown.stderr
    # `--print-config` lines: the setting's name padded, " = ", its value.
    resolved = {
        name.strip(): value.strip()
        for name, value in (line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    }
    assert resolved["max_requests"] == resolved["max_requests_jitter"] == "200"
    # Every other line as rendered, in its order.
    recycling = ("max_requests =", "max_requests_jitter =")
    others = [line for line in text.splitlines() if not line.startswith(recycling)]
    assert recycling_config(text, 200).splitlines()[: len(others)] == others
