"""The first-boot script, run for real in a private mount namespace (tests/namespace.py) with
a data volume that is a plain directory: what it leaves running when a step fails, and that
running it again finishes the job."""

from __future__ import annotations

import shlex
from pathlib import Path

from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import AppSettings, GitSource, load_stack_file
from components.model.sizing import size
from tests.namespace import needs_namespace, run_steps, stage

REPO = Path(__file__).resolve().parents[2]

pytestmark = needs_namespace


def test_a_failed_first_boot_leaves_the_databases_running_and_a_rerun_finishes_it(
    tmp_path: Path,
) -> None:
    staging = load_stack_file(REPO / "stacks", "staging")
    app = AppSettings(git=GitSource(url="https://github.com/acme/shop.git"))
    settings = staging.model_copy(update={"app": app})
    sz = size(settings)
    rendered = render_files("staging", settings, sz, Secrets.placeholders())
    staged = tmp_path / "staged"
    stage({f.path: (f.content, f.mode) for f in rendered.files}, staged)
    # The volume: already mounted (the volume script has its own tests).
    volume = staged / PATHS.volume_script.lstrip("/")
    volume.write_text(f"#!/bin/sh\nmkdir -p {PATHS.data_mount}\n")
    # The app's install fails (a network blip: pip cannot reach the repository) while `fault`
    # exists: a pip in the app's virtualenv that says so.
    fault = tmp_path / "fault"
    pip = Path(PATHS.venv) / "bin/pip"
    fake_pip = (
        f"#!/bin/sh\n[ ! -e {fault} ] || {{ echo 'pip: network is unreachable' >&2; exit 1; }}\n"
    )
    firstboot = f"{staged}{PATHS.firstboot_script} --from {staged}"
    failed, rerun = run_steps(
        tmp_path,
        [
            f"mkdir -p {pip.parent} && printf %s {shlex.quote(fake_pip)} > {pip} && chmod +x {pip}"
            f" && touch {fault} && {firstboot}",
            f"rm {fault} && {firstboot} && cat {PATHS.ready_marker}",
        ],
    )
    pg_unit = f"postgresql@{sz.postgres.version}-main.service"
    databases = f"systemctl start {pg_unit} redis-server.service"
    assert failed.output.endswith("rc=1\n"), failed.output
    # Left running: started once they were on the volume, never stopped again.
    services = [line for line in failed.changes if line.startswith("systemctl st")]
    assert services[-1] == databases
    assert "pip: network is unreachable" in failed.output
    assert "tunedstack ready" not in failed.output
    assert rerun.ok, rerun.output
    assert "kept the data already on the volume" in rerun.output
    assert "tunedstack ready" in rerun.output
