"""The rollout: the real command, fed the real bundle on stdin, run on a box in a namespace."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pytest

from components.cloud.rollout import Rollout, apply_command, bundle
from components.model.layout import PATHS
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import Settings, load_stack_file
from components.model.sizing import size
from tests.namespace import needs_namespace, run_steps, stage
from tests.pulumi_program import REPO, run_body


@pytest.fixture
def staging() -> Settings:
    return load_stack_file(REPO / "stacks", "staging")


def _render(settings: Settings) -> Rendered:
    return render_files("staging", settings, size(settings), Secrets.placeholders())


def test_bundle_is_deterministic_and_holds_every_file(staging: Settings) -> None:
    rendered = _render(staging)
    assert bundle(rendered) == bundle(_render(staging))
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(bundle(rendered)))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {f.path.lstrip("/") for f in rendered.files}
        env = members[PATHS.app_env.lstrip("/")]
        assert oct(env.mode) == "0o600" and env.mtime == 0
        extracted = tar.extractfile(env)
        assert extracted is not None
        assert extracted.read().decode() == rendered.by_path()[PATHS.app_env].content


def test_command_embeds_the_content_hash() -> None:
    assert "# tunedstack content abc123" in apply_command("abc123")


def test_component_hands_files_as_secret_stdin(staging: Settings) -> None:
    import pulumi

    rendered = _render(staging)
    run = run_body(
        "t",
        {},
        lambda: Rollout(
            "t",
            pulumi.Output.from_input("203.0.113.10"),
            pulumi.Output.secret("key"),
            pulumi.Output.from_input(rendered),
        ),
    )
    command = run.one("command:remote:Command")
    assert command.inputs["stdin"] == bundle(rendered)
    assert "stdin" in command.secret_paths
    assert (
        command.inputs["update"] == command.inputs["create"] == apply_command(rendered.content_hash)
    )
    assert "triggers" not in command.inputs


def _rollout_steps(tmp_path: Path, v1: Rendered, v2: Rendered) -> list[str]:
    stage({f.path: (f.content, f.mode) for f in v1.files}, tmp_path / "v1")
    (tmp_path / "cmd.sh").write_text(apply_command(v2.content_hash))
    (tmp_path / "stdin").write_text(bundle(v2))
    return [
        f"cp -a {tmp_path / 'v1'}/. / && {PATHS.apply_script}",
        f"bash {tmp_path / 'cmd.sh'} < {tmp_path / 'stdin'} && ls {PATHS.staging_dir}",
    ]


@needs_namespace
@pytest.mark.parametrize(("cloud_init_status", "ok"), [(0, True), (2, True), (1, False)])
def test_rollout_waits_for_first_boot_then_applies(
    tmp_path: Path, staging: Settings, cloud_init_status: int, ok: bool
) -> None:
    v1 = _render(staging)
    v2 = _render(
        staging.model_copy(
            update={"workload": staging.workload.model_copy(update={"redis_policy": "allkeys-lfu"})}
        )
    )
    _, rollout = run_steps(
        tmp_path, _rollout_steps(tmp_path, v1, v2), exit_codes={"cloud-init": cloud_init_status}
    )
    assert rollout.log[0] == "cloud-init status --wait"
    if ok:
        assert rollout.ok, rollout.output
        assert rollout.log[1:] == ["systemctl restart redis-server.service"]
        assert ("warning: first boot finished with recoverable errors" in rollout.output) is (
            cloud_init_status == 2
        )
        assert "staged." not in rollout.output.split("applied")[-1]  # the staged copy is gone
    else:
        assert rollout.output.endswith("rc=1\n")
        assert "first boot failed (1)" in rollout.output
        assert rollout.log == ["cloud-init status --wait"]
