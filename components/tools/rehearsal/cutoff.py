"""Rollouts cut off the way real ones are: the SSH client killed (a cancelled CI job, a laptop
closing) or the box losing power, each once the apply has started to replace files. What the
rehearsal then checks is the next rollout's: every managed file of the current render, the app
healthy, the data intact."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

# A line the apply prints once its journal is on disk and a first file has been replaced.
MID_APPLY = "installed /"
# What the next apply says when it finds a journal a cut-off run left.
RECOVERED = "an earlier apply was cut off while it was at:"


@dataclass(frozen=True)
class CutRollout:
    output: str  # what the rollout printed before it was cut
    cut: bool  # whether the apply got as far as MID_APPLY and was cut there


def cut_rollout(
    command: list[str], stdin: str, cut: Callable[[], None], timeout: float
) -> CutRollout:
    """Run the rollout's SSH command with its bundle on stdin and call `cut` as soon as the
    apply says it has replaced a file; then the SSH client goes too, as it would."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith(MID_APPLY):
                seen.set()
        seen.set()  # the output ended without it

    def feed() -> None:
        assert process.stdin is not None
        try:
            process.stdin.write(stdin)
            process.stdin.close()
        except BrokenPipeError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    writer = threading.Thread(target=feed, daemon=True)
    reader.start()
    writer.start()
    seen.wait(timeout)
    reached = any(line.startswith(MID_APPLY) for line in lines)
    if reached:
        cut()
    process.kill()
    process.wait(timeout=30)
    reader.join(timeout=10)
    return CutRollout("".join(lines), reached)
