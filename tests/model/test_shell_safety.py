"""No stack value reaches a shell as code: values a script would misread are refused by shape,
and every value that goes into a rendered script goes in as one quoted word."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.model.errors import SettingsError
from components.model.layout import PATHS
from components.model.render import Secrets, render_files
from components.model.settings import Settings, load_stack_file, validate
from components.model.sizing import size

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = (PATHS.firstboot_script, PATHS.apply_script, PATHS.volume_script)


def _staging_raw(**app: Any) -> dict[str, Any]:
    settings = load_stack_file(REPO / "stacks", "staging")
    raw = settings.model_dump(by_alias=True, exclude_none=True)
    raw["app"] = {**raw["app"], **app}
    return raw


def _error(**app: Any) -> str:
    with pytest.raises(SettingsError) as err:
        validate(_staging_raw(**app), "stacks/Pulumi.staging.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/shop.git$(touch /tmp/p)",
        "https://example.com/shop.git`id`",
        'https://example.com/shop.git"; touch /tmp/p; "',
        "file:///etc/passwd",
        "https://example.com/shop .git",
    ],
)
def test_a_repository_url_a_shell_would_misread_is_refused(url: str) -> None:
    text = _error(git={"url": url})
    assert "tunedstack:app.git.url" in text and "must be an https:// or ssh:// URL" in text


@pytest.mark.parametrize("ref", ['main"; touch /tmp/p; "', "`id`", "$(id)", "-x", "a..b", "a b"])
def test_a_git_ref_a_shell_would_misread_is_refused(ref: str) -> None:
    text = _error(git={"url": "https://github.com/acme/shop.git", "ref": ref})
    assert "tunedstack:app.git.ref" in text and "must be a branch, tag or commit" in text


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/shop.git",
        "ssh://git@github.com/acme/shop.git",
        "git@github.com:acme/shop.git",
        "https://git.example.com:8443/team/shop",
    ],
)
def test_ordinary_repository_urls_are_accepted(url: str) -> None:
    settings = validate(_staging_raw(git={"url": url, "ref": "v1.2.0"}), "t")
    # pip takes scp-like URLs only in their ssh:// form.
    as_pip_reads_it = url.replace("git@github.com:", "ssh://git@github.com/")
    assert settings.app.requirement == f"git+{as_pip_reads_it}@v1.2.0"


def test_a_package_that_is_no_requirement_is_refused() -> None:
    assert "must be a pip requirement" in _error(package="shop==1.0; $(touch /tmp/p)")
    assert "credentials" in _error(package="shop @ https://u:p@example.com/shop.whl")


# Valid requirements that a naive "$VALUE" in a script would break or run.
PACKAGES = [
    'shop>=1.2; python_version >= "3.8"',
    'shop; os_name == "$(touch {marker})"',
    "shop; os_name == '`touch {marker}`'",
]


def _rendered(settings: Settings) -> dict[str, str]:
    rendered = render_files("staging", settings, size(settings), Secrets.placeholders())
    return {path: rendered.by_path()[path].content for path in SCRIPTS}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("package", PACKAGES)
def test_a_requirement_reaches_pip_as_one_word_and_runs_nothing(
    tmp_path: Path, package: str
) -> None:
    marker = tmp_path / "payload-ran"
    value = package.format(marker=marker)
    settings = validate(_staging_raw(package=value), "t")
    scripts = _rendered(settings)
    for path, text in scripts.items():
        script = tmp_path / Path(path).name
        script.write_text(text)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, path
    # The line that carries the value, run with pip replaced by a printer of its arguments.
    (line,) = [
        line
        for line in scripts[PATHS.firstboot_script].splitlines()
        if line.startswith(f"{PATHS.venv}/bin/pip install")
    ]
    printer = line.replace(f"{PATHS.venv}/bin/pip", "printf '<%s>\\n'", 1)
    result = subprocess.run(
        ["bash", "-c", printer], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert result.stdout == f"<install>\n<--quiet>\n<{value}>\n"
    assert not marker.exists()


def test_the_hostname_and_health_path_go_in_quoted() -> None:
    settings = load_stack_file(REPO / "stacks", "staging")
    firstboot = _rendered(settings)[PATHS.firstboot_script]
    assert "hostnamectl set-hostname tunedstack-staging\n" in firstboot
    assert "http://127.0.0.1/healthz;" in firstboot
