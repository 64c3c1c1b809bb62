"""What a killed `rehearse` or `bench` may leave behind, found and removed by the next run:
guests (their QEMU handed to init) and run folders (disk images) whose run is gone. Only what
can be proven ours: a QEMU whose command line names a run folder of this cache, a run folder
whose owner process is dead.

A guest normally dies with the run that started it (vm.dies_with_this_process); this is for
what a crash of that mechanism, or an older tunedstack, left."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

# The file in a run folder naming the process that owns it.
RUN_OWNER = "owner"


def _owner_gone(folder: Path, parent: int) -> bool:
    """The run that made `folder` has ended: its owner process is dead (a folder without an
    owner file, from an older tunedstack: its guest was handed to init)."""
    try:
        pid = int((folder / RUN_OWNER).read_text())
    except FileNotFoundError:
        return parent == 1
    except (OSError, ValueError):
        return False
    return not Path(f"/proc/{pid}").exists()


def leftover_guests(cache: Path) -> list[tuple[int, Path]]:
    """QEMU processes a run of ours left behind: their command line names a run folder in this
    cache, and the run that made that folder is gone. Returns (pid, run folder) pairs."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if not argv or not Path(argv[0].decode(errors="replace")).name.startswith("qemu-system"):
            continue
        # Drives are `file=<run folder>/<disk>,...`.
        folders = {
            Path(arg.decode(errors="replace").split("=", 1)[-1].split(",")[0]).parent
            for arg in argv[1:]
        }
        for folder in sorted(f for f in folders if f.parent == cache and f.name != "images"):
            if _owner_gone(folder, parent):
                found.append((int(proc.name), folder))
                break
    return found


def stop_leftover_guests(cache: Path) -> list[str]:
    """SIGKILL every guest `leftover_guests` proves ours, and wait until it is gone; says
    which, for the run to print."""
    said = []
    for pid, folder in leftover_guests(cache):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            said.append(f"stopped guest PID {pid}, left running by an earlier run in {folder}")
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    return said


def claim(folder: Path) -> None:
    """Mark a new run folder as this process's."""
    (folder / RUN_OWNER).write_text(f"{os.getpid()}\n")


def stale_run_folders(cache: Path) -> list[Path]:
    """Run folders whose owner process is gone and that no guest uses any more."""
    in_use = {folder for _, folder in leftover_guests(cache)}
    return [
        owner.parent
        for owner in sorted(cache.glob(f"*/{RUN_OWNER}"))
        if _owner_gone(owner.parent, 0) and owner.parent not in in_use
    ]


def clear_leftovers(cache: Path) -> list[str]:
    """Stop our orphaned guests, then remove the run folders nothing owns; what was done."""
    said = stop_leftover_guests(cache)
    for folder in stale_run_folders(cache):
        shutil.rmtree(folder, ignore_errors=True)
        said.append(f"removed {folder}, left by an earlier run whose process is gone")
    return said
