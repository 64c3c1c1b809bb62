"""Reading a stack's box without a cloud: render it to a folder, or diff two renderings."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from components.model.errors import Problem, SettingsError
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import load_stack_file
from components.model.sizing import size
from components.model.userdata import PLACEHOLDER_KEYS, cloud_config

USER_DATA = "user-data"


def render_stack(
    root: Path,
    stack: str,
    secrets: Secrets,
    extra_ssh_keys: list[str] | None = None,
    stacks: Path | None = None,
) -> tuple[Rendered, str]:
    """Render with the templates under `root`, the stack file from `stacks` (default root's).

    The first-boot document comes with placeholder keys: real ones exist only in Pulumi's state.
    """
    settings = load_stack_file(stacks or root / "stacks", stack)
    if extra_ssh_keys:
        settings = settings.model_copy(update={"ssh_keys": [*settings.ssh_keys, *extra_ssh_keys]})
    rendered = render_files(
        stack, settings, size(settings, f"stacks/Pulumi.{stack}.yaml"), secrets, root
    )
    return rendered, cloud_config(PLACEHOLDER_KEYS, stack)


def write_tree(rendered: Rendered, document: str, out: Path) -> list[Path]:
    """Each file under its path on the box, plus the document as `user-data`."""
    written = []
    for f in rendered.files:
        target = out / f.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, f.content, int(f.mode, 8))
        written.append(target)
    # The first-boot document holds the box's SSH host key.
    _write(out / USER_DATA, document, 0o600)
    return [*written, out / USER_DATA]


def _write(path: Path, text: str, mode: int) -> None:
    """Created with its mode, never readable by others for a moment, even when it existed."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(mode)  # the umask may have taken bits off


def read_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != USER_DATA
    }


def cli_module(tree: Path) -> str:
    """The CLI's module in that tree: revisions before the layer folders had it at the top."""
    return (
        "components.tools.cli" if (tree / "components/tools/cli.py").is_file() else "components.cli"
    )


def render_tree(tree: Path, stack: str, out: Path, label: str) -> bool:
    """Render `stack` with the code, templates and stack file of the project in `tree`.

    Each side of a diff runs its own code, so a change to sizing shows up like a change to a
    stack file. False when that tree has no such stack.
    """
    if not (tree / "stacks" / f"Pulumi.{stack}.yaml").is_file():
        return False
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            cli_module(tree),
            "render",
            "--stack",
            stack,
            "--project-dir",
            str(tree),
            "--out",
            str(out),
        ],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SettingsError(
            f"{label}:stacks/Pulumi.{stack}.yaml",
            [Problem("--base", label, f"cannot render it: {result.stderr.strip()}")],
        )
    return True


def render_revision(repo: Path, rev: str, stack: str, out: Path) -> bool:
    """Render `stack` as git revision `rev` would (its own code and stack file)."""
    with tempfile.TemporaryDirectory(prefix="tunedstack-base-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", rev], capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise SettingsError("--base", [Problem("--base", rev, archive.stderr.decode().strip())])
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        return render_tree(Path(tmp), stack, out, rev)


def unified_diff(old: dict[str, str], new: dict[str, str]) -> str:
    chunks: list[str] = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        chunks.extend(
            difflib.unified_diff(
                (a or "").splitlines(keepends=True),
                (b or "").splitlines(keepends=True),
                fromfile=f"a/{path}" if a is not None else "/dev/null",
                tofile=f"b/{path}" if b is not None else "/dev/null",
            )
        )
    return "".join(chunks)


# GitHub refuses comments over 65536 characters; leave room for the frame.
COMMENT_LIMIT = 60_000


def comment_marker(stack: str) -> str:
    """Hidden line the workflow finds its own comment by, to update it in place."""
    return f"<!-- tunedstack:rendered-diff:{stack} -->"


def comment_body(stack: str, base: str, diff: str) -> str:
    """Markdown for a pull request: the rendered files' unified diff, secrets as placeholders."""
    files = [line[6:] for line in diff.splitlines() if line.startswith("+++ b/")]
    removed = [
        line[6:]
        for line in diff.splitlines()
        if line.startswith("--- a/") and f"+++ b/{line[6:]}" not in diff
    ]
    lines = [comment_marker(stack), f"### Rendered files for stack `{stack}` (against `{base}`)"]
    if not diff:
        lines.append("No rendered file changes: the box would get exactly the same files.")
        return "\n".join(lines) + "\n"
    changed = sorted(set(files) | set(removed))
    lines.append(
        f"{len(changed)} file(s) change on the box: " + ", ".join(f"`/{path}`" for path in changed)
    )
    shown = diff if len(diff) <= COMMENT_LIMIT else diff[:COMMENT_LIMIT]
    lines += ["", "```diff", shown.rstrip("\n"), "```"]
    if shown != diff:
        lines.append(
            f"(cut at {COMMENT_LIMIT} characters: run `tunedstack diff --stack {stack} "
            f"--base {base}` for the rest)"
        )
    lines.append("Secrets are placeholders; boxes get these files through the rollout.")
    return "\n".join(lines) + "\n"
