"""Where a long command (rehearse, bench) is: each step as it starts, with what it took the last
time, the step's notes as they come, and a line when it ends.

On a terminal this is a live display (the `rich` library: a spinner, the time so far against the
time expected); in a pipe, a file or CI's log it is plain lines, each with its time of day, and
flushed at once, so a log shows what ran when.
"""

from __future__ import annotations

import json
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import Progress as RichProgress
from rich.progress import ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.progress_bar import ProgressBar
from rich.table import Column, Table
from rich.text import Text


def duration(seconds: float) -> str:
    """`45 s`, `5 min 9 s`: what a reader takes in at a glance."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


@dataclass(frozen=True)
class Timings:
    """What each step took the last time it ran on this machine (kept in the cache folder), or
    else the figure measured for it when it was written; `None` where neither exists."""

    path: Path
    measured: Mapping[str, float]

    def _recorded(self) -> dict[str, float]:
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {str(k): float(v) for k, v in loaded.items() if isinstance(v, int | float)}

    def expected(self, key: str) -> float | None:
        return self._recorded().get(key, self.measured.get(key))

    def record(self, key: str, seconds: float) -> None:
        recorded = {**self._recorded(), key: round(seconds, 1)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        temporary.replace(self.path)  # a parallel run never reads half a file


@dataclass
class StepOutcome:
    """What a step says when it ends (e.g. `52/52 checks passed`); set inside the step."""

    summary: str = ""


class Progress(ABC):
    """The steps of one command, numbered from its plan (so a forked child numbers the steps it
    runs exactly as the parent would)."""

    def __init__(self, plan: Sequence[str], timings: Timings | None = None) -> None:
        self.plan = tuple(plan)
        self.timings = timings

    def number(self, name: str) -> str:
        return f"{self.plan.index(name) + 1}/{len(self.plan)}"

    @contextmanager
    def step(
        self,
        name: str,
        detail: str = "",
        timing: str | None = None,
        log: Path | None = None,
        expected_s: float | None = None,
    ) -> Iterator[StepOutcome]:
        """One step of the plan. `timing` names what it took before (no estimate without it or
        `expected_s`, e.g. for work that may be skipped); `log` is where its tool output goes."""
        expected = expected_s
        if expected is None and self.timings and timing:
            expected = self.timings.expected(timing)
        heading = f"step {self.number(name)} {name}" + (f": {detail}" if detail else "")
        said = [f"about {duration(expected)}"] if expected is not None else []
        if log is not None:
            said.append(f"log: {log}")
        self._started(heading, expected, ", ".join(said))
        outcome = StepOutcome()
        started = time.monotonic()
        try:
            yield outcome
        except BaseException:
            self._ended(f"step {self.number(name)} {name} FAILED", time.monotonic() - started, "")
            raise
        took = time.monotonic() - started
        if self.timings and timing:
            self.timings.record(timing, took)
        self._ended(f"step {self.number(name)} {name} done", took, outcome.summary)

    @abstractmethod
    def _started(self, heading: str, expected: float | None, said: str) -> None: ...

    @abstractmethod
    def _ended(self, heading: str, took: float, summary: str) -> None: ...

    @abstractmethod
    def note(self, text: str) -> None:
        """A line about the current step (a VM booting, a rollout starting)."""

    @abstractmethod
    def block(self, lines: Sequence[str]) -> None:
        """Lines shown as they are, e.g. a phase's checks once measured."""


class PlainProgress(Progress):
    """Timestamped lines: for pipes, files and CI logs."""

    def __init__(
        self, plan: Sequence[str], timings: Timings | None = None, stream: TextIO | None = None
    ) -> None:
        super().__init__(plan, timings)
        self.stream = stream or sys.stdout

    def _line(self, text: str) -> None:
        self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        self.stream.flush()

    def _started(self, heading: str, expected: float | None, said: str) -> None:
        self._line(heading + (f" ({said})" if said else ""))

    def _ended(self, heading: str, took: float, summary: str) -> None:
        self._line(f"{heading} in {duration(took)}" + (f": {summary}" if summary else ""))

    def note(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self._line(f"  {line}")

    def block(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._line(f"  {line}")


class _AgainstExpected(ProgressColumn):
    """A bar of the time so far against the time expected, or just the time so far."""

    def render(self, task: Task) -> RenderableType:
        elapsed = task.elapsed or 0.0
        expected = task.fields.get("expected")
        if not isinstance(expected, float | int) or expected <= 0:
            return Text(duration(elapsed))
        row = Table.grid(padding=(0, 1))
        row.add_row(
            ProgressBar(total=expected, completed=min(elapsed, expected), width=24),
            Text(f"{duration(elapsed)} of ~{duration(expected)}"),
        )
        return row


class LiveProgress(Progress):
    """rich's live display on a terminal: the running step stays at the bottom, notes and
    finished steps scroll above it."""

    def __init__(
        self, plan: Sequence[str], timings: Timings | None = None, console: Console | None = None
    ) -> None:
        super().__init__(plan, timings)
        self.console = console or Console(highlight=False)
        self.live: RichProgress | None = None

    def _started(self, heading: str, expected: float | None, said: str) -> None:
        self.live = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            _AgainstExpected(),
            console=self.console,
            transient=True,
        )
        self.live.start()
        self.live.add_task(heading, expected=expected)
        if said:
            self.console.print(Text(f"{heading} ({said})", style="dim"))

    def _ended(self, heading: str, took: float, summary: str) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        failed = heading.endswith("FAILED")
        mark = Text("✗ " if failed else "✓ ", style="bold red" if failed else "bold green")
        rest = f"{heading} in {duration(took)}" + (f": {summary}" if summary else "")
        self.console.print(Text.assemble(mark, rest))

    def note(self, text: str) -> None:
        self.console.print(Text(f"  {text}"))

    def block(self, lines: Sequence[str]) -> None:
        for line in lines:
            style = "red" if line.lstrip().startswith("FAIL") else ""
            self.console.print(Text(f"  {line}", style=style))


def on_a_terminal(stream: TextIO) -> bool:
    """A person watching: a terminal that is not CI's and not a dumb one."""
    return stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM", "") != "dumb"


def progress_for(
    plan: Sequence[str], timings: Timings | None = None, stream: TextIO | None = None
) -> Progress:
    stream = stream or sys.stdout
    if on_a_terminal(stream):
        return LiveProgress(plan, timings, Console(file=stream, highlight=False))
    return PlainProgress(plan, timings, stream)
