"""The GitHub workflows: actionlint-clean, and shaped as the project needs them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
    "actionlint"
)
needs_actionlint = pytest.mark.skipif(ACTIONLINT is None, reason="installed by bin/test")


def _load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return dict(doc)


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def _pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in _steps(job) if str(s.get("uses", "")).startswith("pulumi/actions@")]
    return step


@needs_actionlint
def test_actionlint_accepts_every_workflow() -> None:
    assert ACTIONLINT is not None
    result = subprocess.run([ACTIONLINT, "-no-color"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    assert ACTIONLINT is not None
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (WORKFLOWS / "deploy.yml").read_text().replace("needs: staging", "needs: stagign")
    )
    result = subprocess.run(
        [ACTIONLINT, "-no-color", str(broken)], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode != 0 and "stagign" in result.stdout


def test_preview_runs_per_stack_with_pr_comments() -> None:
    wf = _load("preview.yml")
    assert "pull_request" in wf["on"]
    assert wf["permissions"]["pull-requests"] == "write"
    job = wf["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["staging", "prod"]
    pulumi = _pulumi_step(job)
    assert pulumi["uses"].startswith("pulumi/actions@")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
    steps = _steps(job)
    uses = [s.get("uses", "") for s in steps]
    assert uses.index("./.github/actions/setup-project") < next(
        i for i, u in enumerate(uses) if u.startswith("pulumi/actions@")
    )
    runs = " ".join(s.get("run", "") for s in steps)
    assert "tunedstack diff" in runs and "--format comment" in runs and "pytest" in runs


def test_setup_creates_the_virtualenv_pulumi_expects() -> None:
    action = yaml.safe_load((REPO / ".github/actions/setup-project/action.yml").read_text())
    runs = " ".join(s.get("run", "") for s in action["runs"]["steps"])
    pulumi_yaml = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert f"python -m venv {pulumi_yaml['runtime']['options']['virtualenv']}" in runs


def test_deploy_is_staging_then_reviewed_prod_never_overlapping() -> None:
    wf = _load("deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    staging, prod = wf["jobs"]["staging"], wf["jobs"]["prod"]
    assert prod["needs"] == "staging"
    assert prod["environment"] == "production"
    assert staging["concurrency"] == {"group": "deploy-staging", "cancel-in-progress": False}
    assert prod["concurrency"] == {"group": "deploy-prod", "cancel-in-progress": False}
    assert _pulumi_step(staging)["with"]["command"] == "up"
    assert _pulumi_step(prod)["with"]["stack-name"] == "prod"


def test_deploys_run_where_the_firewall_lets_ssh_in() -> None:
    """The rollout needs port 22, open only to adminCidrs: never a GitHub-hosted runner, and
    the runner's fixed address goes to preflight, which checks it against adminCidrs."""
    for job in _load("deploy.yml")["jobs"].values():
        assert job["runs-on"] == ["self-hosted", "tunedstack-deploy"]
        assert job["env"]["TUNEDSTACK_DEPLOY_FROM"] == "${{ vars.DEPLOY_FROM }}"


def test_every_pulumi_step_creates_a_missing_stack() -> None:
    """Without upsert, pulumi/actions fails on a stack that does not exist yet."""
    for name in ("deploy.yml", "preview.yml"):
        for job in _load(name)["jobs"].values():
            assert _pulumi_step(job)["with"]["upsert"] is True, name


def _groups(name: str) -> list[str]:
    return [
        str(job["concurrency"]["group"])
        for job in _load(name)["jobs"].values()
        if "concurrency" in job
    ]


def test_nothing_else_queues_in_a_deploy_group() -> None:
    """GitHub keeps one pending job per concurrency group and cancels the pending one when
    another queues: a job of another workflow in a deploy group could cancel a deploy."""
    deploy_groups = set(_groups("deploy.yml"))
    assert deploy_groups == {"deploy-staging", "deploy-prod"}
    for path in WORKFLOWS.glob("*.yml"):
        if path.name != "deploy.yml":
            assert not any(g.startswith("deploy-") for g in _groups(path.name)), path.name


def test_prods_secrets_reach_no_unreviewed_pull_request() -> None:
    job = _load("preview.yml")["jobs"]["preview"]
    assert job["environment"] == "${{ matrix.stack == 'prod' && 'production' || 'staging' }}"
    drift = _load("drift.yml")["jobs"]["drift"]
    assert "'production-readonly'" in drift["environment"]


def test_drift_check_expects_no_changes_on_a_schedule() -> None:
    wf = _load("drift.yml")
    assert wf["on"]["schedule"]
    job = wf["jobs"]["drift"]
    step = _pulumi_step(job)
    assert step["with"]["expect-no-changes"] is True and step["with"]["refresh"] is True
    assert any(s.get("if") == "failure()" for s in _steps(job))


def test_no_secret_is_written_into_a_workflow() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "TOKEN" in line or "PASSPHRASE" in line:
                assert "${{ secrets." in line, f"{path.name}: {line.strip()}"


def _all_steps() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in _load(path.name)["jobs"].values():
            found += [(path.name, step) for step in _steps(job)]
    action = yaml.safe_load((REPO / ".github/actions/setup-project/action.yml").read_text())
    found += [("setup-project", step) for step in action["runs"]["steps"]]
    return found


def test_third_party_actions_are_pinned_to_a_commit() -> None:
    """A tag can be moved to other code; a commit cannot. The comment says which release."""
    for where, step in _all_steps():
        uses = str(step.get("uses", ""))
        if uses and not uses.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), (where, uses)
    text = "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))
    assert all(
        re.search(r"@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line)
        for line in text.splitlines()
        if re.search(r"uses: (?!\./)\S+@", line)
    )


def test_deploys_install_only_what_the_program_needs() -> None:
    for name in ("deploy.yml", "drift.yml"):
        for job in _load(name)["jobs"].values():
            setup = [s for s in _steps(job) if s.get("uses") == "./.github/actions/setup-project"]
            assert setup and all(not s.get("with", {}).get("extras") for s in setup), name
            assert not any("pytest" in str(s.get("run", "")) for s in _steps(job)), name
    steps = [s for job in _load("preview.yml")["jobs"].values() for s in _steps(job)]
    assert any(s.get("with", {}).get("extras") == "dev" for s in steps)
