"""Cutting a rollout off mid-apply: against a stand-in for the SSH command that prints what
the apply prints and then takes its time."""

from __future__ import annotations

from pathlib import Path

from components.tools.rehearsal.cutoff import MID_APPLY, cut_rollout


def _stand_in(tmp_path: Path, lines: list[str]) -> list[str]:
    script = tmp_path / "rollout.sh"
    body = "".join(f"echo {line!r}; sleep 0.1; " for line in lines)
    script.write_text(f"cat > {tmp_path}/stdin; {body} sleep 30; echo finished")
    return ["bash", str(script)]


def test_the_cut_comes_once_a_file_was_replaced_and_the_client_goes(tmp_path: Path) -> None:
    cuts: list[str] = []
    command = _stand_in(tmp_path, ["checking", f"{MID_APPLY}etc/redis/redis.conf", "more"])
    cut = cut_rollout(command, "the bundle", lambda: cuts.append("cut"), timeout=20)
    assert cut.cut and cuts == ["cut"]
    assert "checking" in cut.output and "finished" not in cut.output  # killed, not waited for
    assert (tmp_path / "stdin").read_text() == "the bundle"


def test_no_cut_when_the_apply_never_replaced_a_file(tmp_path: Path) -> None:
    cuts: list[str] = []
    command = _stand_in(tmp_path, ["refused before anything was installed"])
    cut = cut_rollout(command, "", lambda: cuts.append("cut"), timeout=1)
    assert not cut.cut and cuts == []
