"""The rollout: the real command, fed the real bundle on stdin, run on a box in a namespace."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pulumi
import pytest

from components.cloud import rollout
from components.cloud.rollout import Rollout
from components.model.delivery import bundle, rollout_script
from components.model.layout import PATHS
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import Settings, load_stack_file
from components.model.sizing import size
from tests.namespace import needs_namespace, run_steps, stage, write_files
from tests.pulumi_program import REPO, Registration, run_body

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheBox000000000000000000000000"


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


def test_command_names_the_content_and_the_instance() -> None:
    assert "# tunedstack content abc123 on instance 42" in rollout_script("abc123", "42")


def _command(rendered: Rendered, instance_id: int) -> Registration:
    """The rollout's command as the component registers it."""
    run = run_body(
        "t",
        {},
        lambda: Rollout(
            "t",
            pulumi.Output.from_input("203.0.113.10"),
            pulumi.Output.from_input(HOST_KEY),
            pulumi.Output.secret("deploy-private-key"),
            pulumi.Output.from_input(instance_id),
            pulumi.Output.from_input(rendered),
        ),
    )
    command = run.one("command:remote:Command")
    assert {"stdin", "connection"} <= command.secret_paths
    return command


def _component(rendered: Rendered, instance_id: int) -> dict[str, object]:
    return _command(rendered, instance_id).inputs


def test_component_hands_files_as_secret_stdin_to_the_pinned_host(staging: Settings) -> None:
    rendered = _render(staging)
    inputs = _component(rendered, 4242)
    assert inputs["stdin"] == bundle(rendered)
    expected = rollout_script(rendered.content_hash, "4242")
    assert inputs["update"] == inputs["create"] == expected
    assert "triggers" not in inputs
    connection = inputs["connection"]
    assert isinstance(connection, dict)
    assert connection["hostKey"] == HOST_KEY
    assert connection["privateKey"] == "deploy-private-key"


def test_the_rollout_output_is_secret_and_no_previous_output_goes_back(staging: Settings) -> None:
    """pulumi-command keeps stdout and stderr in the state in plain text unless they are listed
    as additional secret outputs, and sends the previous ones back as environment variables
    (PULUMI_COMMAND_STDOUT/STDERR) unless told not to (commandOutputs.go: unset means yes)."""
    command = _command(_render(staging), 4242)
    assert command.inputs["addPreviousOutputInEnv"] is False
    assert {"stdout", "stderr"} <= set(command.additional_secret_outputs)


def _dialled_seconds(dial_seconds: float, limit: int) -> float:
    """pulumi's retry.Until driving pulumi-command's dialWithRetry, step by step: the delay is
    capped before each wait, each failure counts `try + 1` dials and stops once they exceed the
    limit, the delay grows by the back-off factor after each wait."""
    delay, elapsed, attempt = 0.1, 0.0, 0
    while True:
        delay = min(delay, 5.0)
        elapsed += dial_seconds  # Accept(try): the dial fails
        if attempt + 1 > limit:
            return elapsed
        elapsed += delay
        delay *= 1.5
        attempt += 1


@pytest.mark.parametrize("dial_seconds", [0.0, rollout.PER_DIAL_SECONDS])
def test_how_long_the_rollout_dials_a_box_that_does_not_answer(dial_seconds: float) -> None:
    waited = rollout.dial_wait_seconds(dial_seconds)
    assert waited == pytest.approx(_dialled_seconds(dial_seconds, rollout.SSH_DIAL_ERROR_LIMIT))
    # What the comment and the README say: under 3 minutes refused, about 13 dropped.
    if dial_seconds == 0:
        assert 120 < waited < 180
    else:
        assert 12.5 * 60 < waited < 13.5 * 60


def test_a_replaced_instance_gets_the_files_again(staging: Settings) -> None:
    """Same content, new instance: the command changes, so pulumi-command runs its update."""
    rendered = _render(staging)
    assert _component(rendered, 4242)["update"] != _component(rendered, 4343)["update"]


def _ready_box(tmp_path: Path, v1: Rendered) -> str:
    """A box whose first boot succeeded with v1."""
    stage({f.path: (f.content, f.mode) for f in v1.files}, tmp_path / "v1")
    return (
        f"{write_files(tmp_path / 'v1')} && {PATHS.apply_script} && "
        f"mkdir -p {PATHS.staging_dir} && touch {PATHS.ready_marker}"
    )


def _rollout(tmp_path: Path, v2: Rendered) -> str:
    (tmp_path / "cmd.sh").write_text(rollout_script(v2.content_hash, "4242"))
    (tmp_path / "stdin").write_text(bundle(v2))
    return f"bash {tmp_path / 'cmd.sh'} < {tmp_path / 'stdin'} && ls {PATHS.staging_dir}"


@needs_namespace
@pytest.mark.parametrize("cloud_init_status", [0, 1, 2])
def test_on_a_ready_box_the_rollout_applies_what_changed(
    tmp_path: Path, staging: Settings, cloud_init_status: int
) -> None:
    """Whatever cloud-init reports, the rollout goes on: the first-boot document only installs
    the SSH keys this connection used, and refusing would leave a box no rollout can fix."""
    v1 = _render(staging)
    v2 = _render(
        staging.model_copy(
            update={"workload": staging.workload.model_copy(update={"redis_policy": "allkeys-lfu"})}
        )
    )
    _, rollout = run_steps(
        tmp_path,
        [_ready_box(tmp_path, v1), _rollout(tmp_path, v2)],
        exit_codes={"cloud-init": cloud_init_status},
    )
    assert rollout.changes[0] == "cloud-init status --wait"
    assert rollout.ok, rollout.output
    assert rollout.changes[1:] == ["systemctl restart redis-server.service"]
    warning = f"warning: cloud-init reported status {cloud_init_status}"
    assert (warning in rollout.output) is (cloud_init_status != 0)
    assert "staged." not in rollout.output.split("applied")[-1]  # the staged copy is gone
    assert "previous." not in rollout.output.split("applied")[-1]


@needs_namespace
def test_on_a_new_box_the_rollout_runs_the_staged_first_boot(
    tmp_path: Path, staging: Settings
) -> None:
    """No ready marker: the staged first-boot script runs (stopped here at its first step, the
    recorded hostnamectl failing, so nothing else of the box is touched)."""
    (rollout,) = run_steps(
        tmp_path, [_rollout(tmp_path, _render(staging))], exit_codes={"hostnamectl": 1}
    )
    assert rollout.changes == [
        "cloud-init status --wait",
        "hostnamectl set-hostname tunedstack-staging",
    ]
    assert rollout.output.endswith("rc=1\n")
