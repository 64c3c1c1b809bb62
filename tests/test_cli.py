"""The `tunedstack` command, run as users run it: no token, no network, from the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.cli import main


def test_explain_text(capsys: pytest.CaptureFixture[str], stack_name: str) -> None:
    assert main(["explain", "--stack", stack_name]) == 0
    assert "memory budget" in capsys.readouterr().out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--stack", "staging", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["stack"] == "staging"


def test_bad_stack_exits_2_with_the_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path
) -> None:
    shutil.copy(repo / "Pulumi.yaml", tmp_path)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bad.yaml").write_text(
        "config:\n  tunedstack:region: us-east\n  tunedstack:plan: g6-huge-1\n"
    )
    assert main(["explain", "--stack", "bad", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "stacks/Pulumi.bad.yaml" in err and "tunedstack:plan = 'g6-huge-1'" in err


def test_console_script_without_token_or_network(repo: Path, tmp_path: Path) -> None:
    exe = shutil.which("tunedstack", path=str(Path(sys.executable).parent))
    assert exe, "pip install -e . puts tunedstack on the PATH"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINODE_", "PULUMI_"))}
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    result = subprocess.run(
        [exe, "explain", "--stack", "prod"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "g6-dedicated-8" in result.stdout
