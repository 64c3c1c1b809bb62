"""What a killed run leaves: its guest dies with it, and the next run stops a guest and removes
a run folder only when it can prove them its own and their run gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from components.tools.rehearsal.leftovers import RUN_OWNER, claim, clear_leftovers


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # dead, waiting for its parent to read its status
            return True
        time.sleep(0.1)
    return False


def test_a_guest_dies_with_the_run_that_started_it_even_by_sigkill(tmp_path: Path) -> None:
    run = (
        "import subprocess, sys, time\n"
        "from components.tools.rehearsal.vm import dies_with_this_process\n"
        "guest = subprocess.Popen(['sleep', '60'], start_new_session=True,\n"
        "                         preexec_fn=dies_with_this_process())\n"
        "print(guest.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    started = subprocess.Popen(
        [sys.executable, "-c", run],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert started.stdout is not None
    guest = int(started.stdout.readline())
    assert not _gone(guest, within=0.5)
    started.kill()  # SIGKILL: no handler, no finally
    started.wait()
    assert _gone(guest)


def _fake_qemu(folder: Path) -> subprocess.Popen[bytes]:
    """A process named like QEMU whose command line names a disk in `folder`."""
    renamed = "import os, sys; os.execv(sys.executable, sys.argv[1:])"
    qemu = ["qemu-system-x86_64", "-c", "import time; time.sleep(60)"]
    drive = ["-drive", f"file={folder}/root-1.qcow2,if=virtio,format=qcow2"]
    return subprocess.Popen([sys.executable, "-c", renamed, *qemu, *drive], start_new_session=True)


def test_the_next_run_stops_only_the_guests_and_folders_whose_run_is_gone(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    dead_run, live_run, images = cache / "staging-dead", cache / "staging-live", cache / "images"
    for folder in (dead_run, live_run, images / "abc"):
        folder.mkdir(parents=True)
    ended = subprocess.Popen(["true"])
    ended.wait()
    (dead_run / RUN_OWNER).write_text(f"{ended.pid}\n")  # a run that is gone
    claim(live_run)  # this test's own, alive
    orphan, running = _fake_qemu(dead_run), _fake_qemu(live_run)
    time.sleep(0.5)
    try:
        said = clear_leftovers(cache)
        assert said[0] == (
            f"stopped guest PID {orphan.pid}, left running by an earlier run in {dead_run}"
        )
        assert said[1:] == [f"removed {dead_run}, left by an earlier run whose process is gone"]
        assert _gone(orphan.pid)
        assert not dead_run.exists()
        assert running.poll() is None and live_run.exists() and images.exists()
    finally:
        for process in (orphan, running):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait()


def test_a_guest_that_is_not_qemu_or_not_in_the_cache_is_never_touched(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / RUN_OWNER).write_text("1\n")
    other = _fake_qemu(elsewhere)
    try:
        assert clear_leftovers(cache) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
