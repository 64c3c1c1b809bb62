"""The HAProxy memory measurement, run here against the rendered haproxy.cfg and Debian 12's
HAProxy (the package the box runs): its script works, and what it measures is within what
sizing books per idle connection and per request. The rehearsal runs it again on the box."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from components.model.render import Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.tools.rehearsal.haproxy_memory import (
    ACTIVE_REQUESTS,
    IDLE_CONNECTIONS,
    MEASURE_SCRIPT,
    HaproxyMemory,
    guest_command,
    memory_checks,
    parse,
)
from tests import daemons

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="bin/test installs it")
def test_haproxy_grows_by_no_more_than_sizing_books() -> None:
    settings = load_stack_file(REPO / "stacks", "staging")
    sz = size(settings)
    cfg = render_files("staging", settings, sz, Secrets.placeholders()).by_path()
    with daemons.world_readable_tmpdir() as tmp:
        app = daemons.HeldApp(tmp / "app.sock", holds=lambda path: False)
        (tmp / "app.sock").chmod(0o777)
        threading.Thread(target=app.serve_forever, daemon=True).start()
        port, stats = daemons.free_port(), daemons.free_port()
        (tmp / "haproxy.cfg").write_text(
            daemons.haproxy_on_loopback(
                cfg["/etc/haproxy/haproxy.cfg"].content, sz, port, stats, tmp / "app.sock"
            )
        )
        try:
            with daemons.process(
                ["haproxy", "-db", "-f", str(tmp / "haproxy.cfg")], tmp / "haproxy.log"
            ) as proxy:
                daemons.wait_for(
                    lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5),
                    "HAProxy in front of the app",
                )
                result = subprocess.run(
                    [
                        *(sys.executable, "-c", MEASURE_SCRIPT, str(proxy.pid), str(port)),
                        *(str(IDLE_CONNECTIONS), str(ACTIVE_REQUESTS), "/"),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                )
        finally:
            app.shutdown()
            app.server_close()
    measured = parse(result.stdout)
    assert measured.idle_connections == IDLE_CONNECTIONS
    assert measured.with_idle_kb > measured.base_kb  # it did measure something
    assert measured.with_active_kb > measured.with_idle_kb
    for check in memory_checks(measured):
        assert check.ok, check


def test_checks_fail_when_haproxy_grows_more_than_booked() -> None:
    heavy = HaproxyMemory(10_000, 1000, 10_000 + 32 * 1000, 200, 10_000 + 32 * 1000 + 200 * 40)
    assert [c.ok for c in memory_checks(heavy)] == [False, False]


def test_the_guest_command_measures_the_worker_on_the_boxs_port() -> None:
    command = guest_command()
    assert "pgrep -P" in command and f" 80 {IDLE_CONNECTIONS} {ACTIVE_REQUESTS} / " in command
    assert command.rstrip().endswith("PY")
