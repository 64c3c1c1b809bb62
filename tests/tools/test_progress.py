"""Progress of long commands: plain timestamped lines off a terminal, rich's live display on one,
and estimates from what a step took before."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from components.tools.progress import (
    LiveProgress,
    PlainProgress,
    Timings,
    duration,
    progress_for,
)

STAMP = r"\[\d\d:\d\d:\d\d\] "


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_durations_read_at_a_glance() -> None:
    assert duration(4.4) == "4 s"
    assert duration(59.6) == "1 min"
    assert duration(309) == "5 min 9 s"


def test_an_estimate_is_the_last_run_else_the_measured_figure(tmp_path: Path) -> None:
    timings = Timings(tmp_path / "timings.json", {"tcg first boot": 309.0})
    assert timings.expected("tcg first boot") == 309.0
    assert timings.expected("kvm first boot") is None
    timings.record("tcg first boot", 250.04)
    timings.record("base image", 104)
    assert timings.expected("tcg first boot") == 250.0
    assert timings.expected("base image") == 104
    (tmp_path / "timings.json").write_text("{not json")
    assert timings.expected("tcg first boot") == 309.0  # a damaged file is no estimate


def test_plain_lines_say_each_step_as_it_starts_and_ends(tmp_path: Path) -> None:
    out = io.StringIO()
    shown = PlainProgress(
        ("host packages", "first boot"), Timings(tmp_path / "t.json", {"boot": 309.0}), out
    )
    with shown.step("host packages", "all installed"):
        pass
    with shown.step("first boot", "boot, rollout", "boot", tmp_path / "boot.log") as outcome:
        started = out.getvalue().splitlines()
        # The start line is out before the work is done, with its estimate and its log.
        assert re.fullmatch(
            f"{STAMP}step 2/2 first boot: boot, rollout \\(about 5 min 9 s, log: .*boot.log\\)",
            started[-1],
        )
        shown.note("booting instance 1")
        shown.block(["  PASS  gunicorn workers  5  5"])
        outcome.summary = "1/1 checks passed"
    lines = out.getvalue().splitlines()
    assert all(re.match(STAMP, line) for line in lines)
    assert re.fullmatch(f"{STAMP}step 1/2 host packages: all installed", lines[0])
    assert re.fullmatch(f"{STAMP}step 1/2 host packages done in 0 s", lines[1])
    assert lines[3].endswith("   booting instance 1")
    assert lines[4].endswith("    PASS  gunicorn workers  5  5")
    assert re.fullmatch(f"{STAMP}step 2/2 first boot done in 0 s: 1/1 checks passed", lines[5])


def test_a_failed_step_says_so_and_records_no_estimate(tmp_path: Path) -> None:
    out = io.StringIO()
    timings = Timings(tmp_path / "t.json", {})
    shown = PlainProgress(("reboot",), timings, out)
    with pytest.raises(RuntimeError), shown.step("reboot", timing="tcg reboot"):
        raise RuntimeError("no SSH login")
    assert re.fullmatch(f"{STAMP}step 1/1 reboot FAILED in 0 s", out.getvalue().splitlines()[-1])
    assert timings.expected("tcg reboot") is None


def test_a_terminal_gets_the_live_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(progress_for(("a",), stream=Terminal()), LiveProgress)
    assert isinstance(progress_for(("a",), stream=io.StringIO()), PlainProgress)
    monkeypatch.setenv("CI", "true")  # CI's log is a terminal for some runners: still plain
    assert isinstance(progress_for(("a",), stream=Terminal()), PlainProgress)
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(progress_for(("a",), stream=Terminal()), PlainProgress)


def test_the_live_display_shows_the_step_its_notes_and_its_end(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    shown = LiveProgress(("first boot",), Timings(tmp_path / "t.json", {"boot": 300.0}), console)
    with shown.step("first boot", "boot, rollout", "boot", tmp_path / "boot.log") as outcome:
        shown.note("booting instance 1")
        shown.block(["  FAIL  redis maxmemory  1  2"])
        outcome.summary = "0/1 checks passed"
    text = screen.getvalue()
    assert "step 1/1 first boot: boot, rollout (about 5 min, log: " in text
    assert "booting instance 1" in text and "FAIL  redis maxmemory  1  2" in text
    assert "✓ step 1/1 first boot done in 0 s: 0/1 checks passed" in text
    assert shown.live is None  # nothing keeps drawing once the step is over
