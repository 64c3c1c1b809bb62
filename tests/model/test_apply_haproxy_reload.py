"""HAProxy's reload, with the real daemon: `systemctl reload` returns before the new
configuration is loaded, and a configuration that passes `haproxy -c` can still fail to load (a
port another process holds); the old workers then keep serving. The apply must not record such a
file as applied, and must roll it back.

HAProxy runs for real in a network namespace of its own, master-worker as Debian's unit runs it;
a recorded systemctl starts it and reloads it as the unit's ExecStart and ExecReload do.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from tests.namespace import needs_namespace, run_steps, stage, write_files

REPO = Path(__file__).resolve().parents[2]
HELD_PORT = 8081
PIDFILE = "/run/haproxy/haproxy.pid"

pytestmark = [
    needs_namespace,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy (bin/test)"),
]

# Debian's haproxy.service, by hand: ExecStart `haproxy -Ws` (here -W -D, no systemd to
# supervise), ExecReload `haproxy -c` then SIGUSR2 to the master.
HAPROXY_UNIT = f"""
case "$1 $2" in
    "restart haproxy.service"|"start haproxy.service")
        [ ! -s {PIDFILE} ] || kill $(cat {PIDFILE}) 2> /dev/null; sleep 0.5
        # Started by systemd on the box: no fd of the apply's (its lock) is inherited.
        haproxy -W -D -q -f {PATHS.haproxy_cfg} -p {PIDFILE} 9>&- \
            || {{ touch "$units/$2.failed"; exit 1; }}
        exit 0 ;;
    "reload-or-restart haproxy.service"|"reload haproxy.service")
        haproxy -c -q -f {PATHS.haproxy_cfg} || exit 1
        kill -USR2 $(cat {PIDFILE})
        exit 0 ;;
esac
"""


def _render() -> Rendered:
    settings = load_stack_file(REPO / "stacks", "staging")
    return render_files("staging", settings, size(settings), Secrets.placeholders())


def _with_haproxy_cfg(rendered: Rendered, extra: str) -> Rendered:
    files = tuple(
        replace(f, content=f.content + extra) if f.path == PATHS.haproxy_cfg else f
        for f in rendered.files
    )
    return replace(rendered, files=files)


def test_a_config_that_fails_at_reload_is_not_recorded_as_applied(tmp_path: Path) -> None:
    v1 = _render()
    # Passes `haproxy -c` (which binds nothing), fails to bind when loaded.
    held = _with_haproxy_cfg(
        v1, f"\nfrontend extra\n    bind 127.0.0.1:{HELD_PORT}\n    default_backend app\n"
    )
    # Loads: a comment is enough for a new worker.
    fine = _with_haproxy_cfg(v1, "\n# a change HAProxy loads\n")
    for name, version in (("v1", v1), ("held", held), ("fine", fine)):
        stage({f.path: (f.content, f.mode) for f in version.files}, tmp_path / name)
    held_sha = hashlib.sha256(held.by_path()[PATHS.haproxy_cfg].content.encode()).hexdigest()
    # Another process on the port (it says its own pid: python3 may be a wrapper that forks).
    holder = (
        "{ python3 -c 'import os, socket, time; s = socket.socket(); "
        f's.bind(("127.0.0.1", {HELD_PORT})); s.listen(); '
        f'open("{tmp_path}/holder.pid", "w").write(str(os.getpid())); time.sleep(300)\' & }} && '
        f"while [ ! -s {tmp_path}/holder.pid ]; do sleep 0.1; done"
    )
    boot, failed, loaded, _ = run_steps(
        tmp_path,
        [
            f"mkdir -p /run/haproxy && mount -t tmpfs tmpfs /run/haproxy && {holder} && "
            f"{write_files(tmp_path / 'v1')} && {PATHS.apply_script}",
            f"{PATHS.apply_script} --from {tmp_path / 'held'}; echo rc=$?; "
            f"grep -c {held_sha} {PATHS.applied_manifest}; "
            f"cmp {tmp_path / 'v1'}{PATHS.haproxy_cfg} {PATHS.haproxy_cfg} && echo v1-in-place",
            f"{PATHS.apply_script} --from {tmp_path / 'fine'}",
            f"kill $(cat {PIDFILE}) $(cat {tmp_path}/holder.pid)",
        ],
        scripts={"systemctl": HAPROXY_UNIT},
        network=True,
    )
    assert boot.ok, boot.output
    assert "haproxy did not load the new configuration" in failed.output, failed.output
    assert "rc=1\n0\nv1-in-place\n" in failed.output  # failed, not recorded, the old file back
    assert "rolled back: the box serves the files it had before this change" in failed.output
    # The rollback's reload of the previous file is confirmed like any other.
    assert "haproxy: new configuration loaded" in failed.output.split("putting the previous")[1]
    assert loaded.ok, loaded.output
    assert "haproxy: new configuration loaded (worker " in loaded.output
