"""The set-up scripts and CI entry point are shell: keep them shellcheck-clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
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


FAKE_PYTHON3 = """#!/bin/sh
# Stands in for the host's python3: venv makes a .venv whose python is the fake pip below.
[ "$1" = -c ] && exit 0
sleep 1
mkdir -p .venv/bin
cat > .venv/bin/python <<'PY'
#!/bin/sh
case "$*" in
    *--upgrade*) exit 0 ;;
esac
sleep 2
if [ -n "$PIP_FAILS" ]; then echo "ERROR: No matching distribution found for pulumi"; exit 1; fi
echo "Successfully installed tunedstack"
PY
chmod +x .venv/bin/python
printf '#!/bin/sh\necho "tunedstack $*"\n' > .venv/bin/tunedstack
chmod +x .venv/bin/tunedstack
"""


def _checkout(tmp_path: Path) -> dict[str, str]:
    """bin/ and pyproject.toml in a folder, and a PATH whose python3 is the fake above."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    (fake / "python3").write_text(FAKE_PYTHON3)
    (fake / "python3").chmod(0o755)
    (tmp_path / "bin").mkdir(exist_ok=True)
    for script in ("_setup.sh", "tunedstack"):
        shutil.copy(REPO / "bin" / script, tmp_path / "bin")
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "PIP_FAILS": ""}


def _bootstrap(tmp_path: Path, fail: bool = False) -> tuple[int, list[tuple[float, str]]]:
    """`setup_venv` as bin/tunedstack runs it on first use, its output a pipe, each line with
    when it arrived."""
    env = {**_checkout(tmp_path), "PIP_FAILS": "1" if fail else ""}
    started = time.monotonic()
    lines = []
    with subprocess.Popen(
        ["bash", "-c", 'source bin/_setup.sh && setup_venv ""'],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
    return process.returncode, lines


STAMP = r"\[\d\d:\d\d:\d\d\] tunedstack: "


def test_first_use_says_each_step_as_it_starts_with_its_duration_and_log(tmp_path: Path) -> None:
    code, lines = _bootstrap(tmp_path)
    assert code == 0, lines
    text = [line for _, line in lines]
    assert re.fullmatch(f"{STAMP}creating the virtualenv .venv \\(about 7 s\\)", text[0])
    assert re.fullmatch(f"{STAMP}done in 1 s", text[1])
    assert re.fullmatch(
        f"{STAMP}installing . into .venv \\(once; about 30 s; log: .venv/pip.log\\)", text[2]
    )
    assert re.fullmatch(f"{STAMP}done in 2 s", text[3])
    # The install's line came out when it started, not with its end.
    assert lines[3][0] - lines[2][0] > 1.5
    assert "Successfully installed" in (tmp_path / ".venv/pip.log").read_text()
    assert (tmp_path / ".venv/.tunedstack-installed").is_file()


def test_a_failed_install_shows_its_log_and_is_tried_again_next_time(tmp_path: Path) -> None:
    code, lines = _bootstrap(tmp_path, fail=True)
    text = "\n".join(line for _, line in lines)
    assert code != 0
    assert "ERROR: No matching distribution found for pulumi" in text
    assert "failed after 2 s (exit 1; log: .venv/pip.log)" in text
    assert not (tmp_path / ".venv/.tunedstack-installed").exists()


def test_bin_tunedstack_installs_the_benchmarks_packages_only_for_bench(tmp_path: Path) -> None:
    env = _checkout(tmp_path)
    stamp = tmp_path / ".venv/.tunedstack-installed"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bin/tunedstack", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    explain = run("explain", "--stack", "staging")
    assert explain.stdout == "tunedstack explain --stack staging\n"
    assert "installing . into .venv" in explain.stderr
    assert [line.split()[0] for line in stamp.read_text().splitlines()] == ["."]
    assert "installing" not in run("render", "--stack", "staging").stderr  # once is enough
    bench = run("bench", "--help")
    assert "installing .[bench] into .venv (once; about 45 s" in bench.stderr
    assert [line.split()[0] for line in stamp.read_text().splitlines()] == [".", ".[bench]"]


def test_the_readme_says_what_bin_test_installs_and_enables() -> None:
    """Every Debian package bin/test installs is named where the README describes bin/test,
    with the services that installing them enables."""
    script = (REPO / "bin/test").read_text()
    call = re.search(r"^setup_debs ((?:.*\\\n)*.*)$", script, re.MULTILINE)
    assert call is not None
    packages = call.group(1).replace("\\\n", " ").split()
    readme = (REPO / "README.md").read_text()
    paragraph = readme[readme.index("`bin/test` installs") :].split("\n\n")[0]
    for package in packages:
        if package.startswith(("python3-", "systemd")):
            continue  # libraries and the init system every Debian machine has
        assert package in paragraph, package
    for service in ("haproxy", "redis-server", "postgresql", "cloud-init"):
        assert service in paragraph.split("enable", 1)[1], service
