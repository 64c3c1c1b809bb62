from __future__ import annotations

from pathlib import Path

from components.model.render import Secrets
from components.tools.review import (
    USER_DATA,
    cli_module,
    read_tree,
    render_stack,
    unified_diff,
    write_tree,
)
from tests.pulumi_program import REPO


def test_tree_round_trip_leaves_user_data_out(tmp_path: Path) -> None:
    rendered, document = render_stack(REPO, "staging", Secrets.placeholders())
    write_tree(rendered, document, tmp_path)
    assert (tmp_path / USER_DATA).read_text() == document
    assert read_tree(tmp_path) == {f.path.lstrip("/"): f.content for f in rendered.files}


def test_unified_diff_marks_added_and_removed_files() -> None:
    diff = unified_diff({"a.conf": "x\n", "gone.conf": "y\n"}, {"a.conf": "z\n", "new.conf": "n\n"})
    assert "--- a/a.conf\n+++ b/a.conf\n" in diff and "-x\n+z\n" in diff
    assert "--- a/gone.conf\n+++ /dev/null\n" in diff
    assert "--- /dev/null\n+++ b/new.conf\n" in diff
    assert unified_diff({"a": "1\n"}, {"a": "1\n"}) == ""


def test_the_cli_module_is_found_in_old_and_new_layouts(tmp_path: Path) -> None:
    assert cli_module(REPO) == "components.tools.cli"
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "cli.py").write_text("")
    assert cli_module(tmp_path) == "components.cli"


def test_render_writes_the_document_and_private_files_for_their_owner_only(
    tmp_path: Path,
) -> None:
    rendered, document = render_stack(REPO, "staging", Secrets.generate())
    written = write_tree(rendered, document, tmp_path / "out")
    modes = {p.name: p.stat().st_mode & 0o777 for p in written}
    assert modes["user-data"] == 0o600
    assert modes["app.env"] == 0o600 and modes["redis.conf"] == 0o640
    # Rendering again over the same folder keeps them private.
    (tmp_path / "out/user-data").chmod(0o644)
    write_tree(rendered, document, tmp_path / "out")
    assert (tmp_path / "out/user-data").stat().st_mode & 0o777 == 0o600
