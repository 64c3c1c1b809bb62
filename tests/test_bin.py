"""The set-up scripts and CI entry point are shell: keep them shellcheck-clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="installed by bin/test")
def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [REPO / ".ci/run", *sorted((REPO / "bin").iterdir())]
    result = subprocess.run(
        ["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stdout


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert "\nbin/test " in readme
    assert "exec bin/test" in (REPO / ".ci/run").read_text()


def test_readme_main_job_is_the_staging_rehearsal() -> None:
    readme = (REPO / "README.md").read_text()
    assert "\nbin/tunedstack rehearse --stack staging " in readme
