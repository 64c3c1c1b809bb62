"""The `tunedstack` command, run as users run it: no token, no network, from the checkout."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.tools.cli import build_parser, main


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


def test_render_writes_the_tree_with_placeholders(tmp_path: Path, repo: Path) -> None:
    assert main(["render", "--stack", "staging", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "user-data").read_text().startswith("#cloud-config")
    redis_conf = (tmp_path / "etc/redis/redis.conf").read_text()
    assert "requirepass SECRETredisPassword" in redis_conf
    assert oct((tmp_path / "etc/tunedstack/app.env").stat().st_mode)[-3:] == "600"


def test_render_can_generate_local_secrets(tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxvY2FsIHJlaGVhcnNhbCBrZXkgb25seQ== x\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "render",
                "--stack",
                "staging",
                "--out",
                str(out),
                "--generate-secrets",
                "--ssh-key",
                str(key),
            ]
        )
        == 0
    )
    assert "SECRET" not in (out / "etc/redis/redis.conf").read_text()
    assert (
        "AAAAC3NzaC1lZDI1NTE5AAAAIGxvY2FsIHJlaGVhcnNhbCBrZXkgb25seQ=="
        in (out / "root/.ssh/authorized_keys").read_text()
    )


def test_diff_against_an_older_stack_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path
) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(
        (repo / "stacks/Pulumi.staging.yaml").read_text().replace("allkeys-lru", "allkeys-lfu")
    )
    assert main(["diff", "--stack", "staging", "--old-file", str(old)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- a/etc/redis/redis.conf\n+++ b/etc/redis/redis.conf\n")
    assert "-maxmemory-policy allkeys-lfu\n+maxmemory-policy allkeys-lru\n" in out
    assert "requirepass" not in out


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def project_copy(tmp_path: Path, repo: Path) -> Path:
    """This project's rendering inputs in a git repository of their own, one commit deep."""
    copy = tmp_path / "project"
    for name in ("components", "cloud-init", "sample-app", "stacks"):
        shutil.copytree(repo / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo / "Pulumi.yaml", copy)
    _git(copy, "init", "-q")
    _git(copy, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    _git(copy, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    return copy


def test_diff_against_a_git_revision(
    capsys: pytest.CaptureFixture[str], project_copy: Path
) -> None:
    stack = project_copy / "stacks/Pulumi.staging.yaml"
    stack.write_text(stack.read_text().replace("peakConnections: 4000", "peakConnections: 6000"))
    assert (
        main(["diff", "--stack", "staging", "--base", "HEAD", "--project-dir", str(project_copy)])
        == 0
    )
    out = capsys.readouterr().out
    assert "--- a/etc/haproxy/haproxy.cfg" in out
    assert "-    maxconn 5120\n+    maxconn 8192\n" in out
    # Secrets are always placeholders in a diff, whatever the box will get.
    assert [line for line in out.splitlines() if "requirepass" in line] == [
        " requirepass SECRETredisPassword"
    ]


def test_diff_shows_a_sizing_code_change_too(
    capsys: pytest.CaptureFixture[str], project_copy: Path
) -> None:
    budget = project_copy / "components/model/sizing/budget.py"
    budget.write_text(budget.read_text().replace("REDIS_SHARE = 0.28", "REDIS_SHARE = 0.20"))
    assert main(["diff", "--stack", "staging", "--project-dir", str(project_copy)]) == 0
    out = capsys.readouterr().out
    assert "--- a/etc/redis/redis.conf" in out and "+maxmemory " in out


def test_diff_with_no_change_says_so(
    capsys: pytest.CaptureFixture[str], project_copy: Path
) -> None:
    assert main(["diff", "--stack", "staging", "--project-dir", str(project_copy)]) == 0
    assert capsys.readouterr().out == (
        "no changes to the rendered files of stack staging against HEAD\n"
    )


def test_diff_of_a_new_stack_shows_every_file_added(
    capsys: pytest.CaptureFixture[str], project_copy: Path
) -> None:
    shutil.copy(
        project_copy / "stacks/Pulumi.staging.yaml", project_copy / "stacks/Pulumi.dev.yaml"
    )
    assert main(["diff", "--stack", "dev", "--project-dir", str(project_copy)]) == 0
    out = capsys.readouterr().out
    assert "--- /dev/null\n+++ b/etc/haproxy/haproxy.cfg" in out


def test_pr_comment_from_two_revisions_is_readable_and_holds_no_secret(
    capsys: pytest.CaptureFixture[str], project_copy: Path
) -> None:
    """What preview.yml posts: the diff of the rendered files between base and head."""
    stack = project_copy / "stacks/Pulumi.staging.yaml"
    stack.write_text(stack.read_text().replace("allkeys-lru", "allkeys-lfu"))
    _git(
        project_copy,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qam",
        "head",
    )
    assert (
        main(
            [
                "diff",
                "--stack",
                "staging",
                "--base",
                "HEAD~1",
                "--format",
                "comment",
                "--project-dir",
                str(project_copy),
            ]
        )
        == 0
    )
    body = capsys.readouterr().out
    assert body.startswith("<!-- tunedstack:rendered-diff:staging -->\n")
    assert "1 file(s) change on the box: `/etc/redis/redis.conf`" in body
    assert "```diff\n--- a/etc/redis/redis.conf\n+++ b/etc/redis/redis.conf\n" in body
    assert "-maxmemory-policy allkeys-lru\n+maxmemory-policy allkeys-lfu\n" in body
    # Only placeholders: a real render for the box would have generated passwords here.
    for line in body.splitlines():
        assert not re.search(r"[A-Za-z0-9]{32}", line.replace("SECRETredisPassword", "")), line


def test_pr_comment_without_changes(capsys: pytest.CaptureFixture[str], project_copy: Path) -> None:
    assert (
        main(["diff", "--stack", "prod", "--format", "comment", "--project-dir", str(project_copy)])
        == 0
    )
    assert "No rendered file changes" in capsys.readouterr().out


def test_every_option_of_every_command_has_help_with_its_default() -> None:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            where = f"{name} {action.option_strings[0]}"
            assert action.help, where
            shown = action.default not in (None, False, [], argparse.SUPPRESS)
            if shown and not action.required and action.dest != "project_dir":
                assert f"default: {action.default}" in action.help, where


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "config:\n  tunedstack:region: us-east\n  tunedstack:plan: [a\n",
            "  - line 4, column 1: not valid YAML (expected ',' or ']'",
        ),
        (
            "tunedstack:region: us-east\ntunedstack:plan: g6-standard-2\n",
            "  - the settings go under a `config:` key "
            "(found `tunedstack:region` at the top level)",
        ),
        (
            "config:\n  region: us-east\n  tunedstack:plan: g6-standard-2\n",
            "  - region = (missing): did you mean `tunedstack:region`?",
        ),
        (
            "config:\n  tunedstack:region: us-east\n  tunedstack:plan: g6-standard-2\n"
            "  tunedstack:volumeSizeG: 20\n",
            "unknown setting; did you mean `volumeSizeGb`?",
        ),
        (
            "config:\n  tunedstack:region: us-east\n  tunedstack:plan: g6-standard-2\n"
            "  tunedstack:workload:\n    peakConnection: 20\n",
            "tunedstack:workload.peakConnection = 20: unknown setting; "
            "did you mean `peakConnections`?",
        ),
    ],
)
def test_errors_say_where_and_what_was_meant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path, text: str, says: str
) -> None:
    shutil.copy(repo / "Pulumi.yaml", tmp_path)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bad.yaml").write_text(text)
    assert main(["explain", "--stack", "bad", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunedstack: stacks/Pulumi.bad.yaml: ")
    assert says in err, err
    assert "(file)" not in err and "<unicode string>" not in err


def test_bench_takes_a_profile_group_or_a_list_and_a_rig() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "--stack", "staging"])
    assert args.profile == {"seed", "c10k"} and args.rig == "vm" and args.runs is None
    args = parser.parse_args(
        ["bench", "--stack", "staging", "--rig", "host", "--profile", "sweep,c10k"]
    )
    assert args.profile == {"sweep", "c10k"} and args.rig == "host"
    assert parser.parse_args(["bench", "--stack", "s", "--profile", "all"]).profile == {
        "seed",
        "c10k",
        "sweep",
    }
    for bad in ("sweep,banana", "restarts,sweep"):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", "--stack", "staging", "--profile", bad])
