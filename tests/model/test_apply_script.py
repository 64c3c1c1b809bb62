"""The idempotent apply script (cloud-init/apply.sh.j2), run for real on rendered files.

It runs in a private mount namespace with overlays over /etc, /usr/local, /opt and /var/lib, so
every file it installs lands in a temp dir and the host is untouched; the commands that would
change the running system (systemctl, sysctl, systemd-tmpfiles, runuser) are recorders on PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import Settings, load_stack_file
from components.model.sizing import size
from tests.namespace import Run, needs_namespace, run_steps, stage

REPO = Path(__file__).resolve().parents[2]

pytestmark = needs_namespace


def _stage(rendered: Rendered, folder: Path) -> None:
    stage({f.path: (f.content, f.mode) for f in rendered.files}, folder)


@pytest.fixture
def staging() -> Settings:
    return load_stack_file(REPO / "stacks", "staging")


def _render(settings: Settings) -> Rendered:
    return render_files("staging", settings, size(settings), Secrets.placeholders())


def _run_steps(tmp_path: Path, steps: list[str], pending_restart: str = "0") -> list[Run]:
    return run_steps(tmp_path, steps, answers={"runuser": pending_restart})


def _first_boot(staged: Path) -> str:
    # What cloud-init's write_files does, then the apply the first-boot script runs.
    return f"cp -a {staged}/. / && {PATHS.apply_script}"


def test_first_boot_applies_everything_in_order_then_nothing(
    tmp_path: Path, staging: Settings
) -> None:
    rendered = _render(staging)
    _stage(rendered, tmp_path / "v1")
    first, again = _run_steps(tmp_path, [_first_boot(tmp_path / "v1"), PATHS.apply_script])
    assert first.output.endswith("rc=0\n"), first.output
    pg_unit = f"postgresql@{size(staging).postgres.version}-main.service"
    assert first.log == [
        "systemctl restart systemd-modules-load.service",
        "sysctl --system --quiet",
        "systemd-tmpfiles --create",
        "systemctl daemon-reload",
        f"systemctl restart {pg_unit}",
        "systemctl restart redis-server.service",
        "systemctl restart tunedstack-app.socket",
        "systemctl restart tunedstack-app.service",
        "systemctl restart haproxy.service",
        "systemctl reload-or-restart ssh.service",
    ]
    assert again.output.endswith("rc=0\n") and again.log == []
    assert "changed" not in again.output


def test_day2_rollout_touches_only_what_changed(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    v2 = _render(
        staging.model_copy(
            update={
                "services": staging.services.model_copy(
                    update={
                        "haproxy": staging.services.haproxy.model_copy(
                            update={"queue_timeout_seconds": 20}
                        )
                    }
                )
            }
        )
    )
    changed = [p for p, f in v2.by_path().items() if v1.by_path()[p] != f]
    assert changed == ["/etc/haproxy/haproxy.cfg"]
    _stage(v1, tmp_path / "v1")
    _stage(v2, tmp_path / "v2")
    _, rollout, again = _run_steps(
        tmp_path,
        [
            _first_boot(tmp_path / "v1"),
            f"{PATHS.apply_script} --from {tmp_path / 'v2'} && grep -q 'timeout queue 20s' "
            "/etc/haproxy/haproxy.cfg",
            f"{PATHS.apply_script} --from {tmp_path / 'v2'}",
        ],
    )
    assert rollout.output.endswith("rc=0\n"), rollout.output
    assert "installed /etc/haproxy/haproxy.cfg" in rollout.output
    assert rollout.output.count("installed ") == 1
    assert rollout.log == ["systemctl reload-or-restart haproxy.service"]
    assert again.log == [] and "installed" not in again.output


def test_postgres_change_restarts_only_when_postgres_asks(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    bigger = staging.model_copy(
        update={
            "services": staging.services.model_copy(
                update={
                    "postgres": staging.services.postgres.model_copy(update={"max_connections": 80})
                }
            )
        }
    )
    v2 = _render(bigger)
    _stage(v1, tmp_path / "v1")
    _stage(v2, tmp_path / "v2")
    _, rollout = _run_steps(
        tmp_path,
        [_first_boot(tmp_path / "v1"), f"{PATHS.apply_script} --from {tmp_path / 'v2'}"],
        pending_restart="1",
    )
    pg_unit = f"postgresql@{size(staging).postgres.version}-main.service"
    assert f"systemctl reload {pg_unit}" in rollout.log
    assert f"systemctl restart {pg_unit}" in rollout.log
    assert not any("redis" in line or "haproxy" in line for line in rollout.log)


def test_incomplete_staging_changes_nothing(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    _stage(v1, tmp_path / "v1")
    _stage(v1, tmp_path / "broken")
    (tmp_path / "broken/etc/redis/redis.conf").unlink()
    _, rollout = _run_steps(
        tmp_path,
        [_first_boot(tmp_path / "v1"), f"{PATHS.apply_script} --from {tmp_path / 'broken'}"],
    )
    assert "staged /etc/redis/redis.conf is missing" in rollout.output
    assert rollout.output.endswith("rc=1\n")
    assert rollout.log == []


def test_script_parses_as_bash() -> None:
    staging = load_stack_file(REPO / "stacks", "staging")
    script = _render(staging).by_path()[PATHS.apply_script].content
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert script.startswith("#!/bin/bash\n")


def test_install_from_puts_every_file_in_place_and_acts_on_nothing(
    tmp_path: Path, staging: Settings
) -> None:
    """First boot installs the files before the data volume is mounted (as cloud-init's
    write_files did), and acts only once the app is ready."""
    rendered = _render(staging)
    staged = tmp_path / "staged"
    _stage(rendered, staged)
    listed = " ".join(f.path for f in rendered.files)
    install = f"{staged}{PATHS.apply_script} --install-from {staged}"
    (run,) = _run_steps(tmp_path, [f"{install} && ls {listed} > /dev/null"])
    assert run.ok, run.output
    # Only the packages the host lacks may be asked for; no service is touched.
    assert all(line.startswith("apt-get ") for line in run.log), run.log
    assert "applied" not in run.output
