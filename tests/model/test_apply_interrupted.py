"""The apply cut off the way rollouts really are: the apply SIGKILLed at each phase of its work
(its daemons' checks, the install, the actions, its own rollback), the reader of its output gone
(a dropped SSH link), SIGHUP. Whatever ran, the next apply leaves every managed file equal to
exactly one render, with its mode and owner, every unit active and nothing but state in
/var/lib/tunedstack.

Run for real in the private mount namespace of tests/namespace.py; a recorded command (or a
wrapped real one) does the cutting, once, at the chosen point.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import Rendered, Secrets, render_files
from components.model.settings import Settings, load_stack_file
from components.model.sizing import size
from tests.namespace import Run, needs_namespace, run_steps, stage, write_files

REPO = Path(__file__).resolve().parents[2]

pytestmark = needs_namespace

# What /var/lib/tunedstack may hold between runs: state, never a bundle, a backup or a scratch.
STATE_ONLY = {"applied-manifest", "apply.lock", "originals", "ready"}


def _render(settings: Settings) -> Rendered:
    return render_files("staging", settings, size(settings), Secrets.placeholders())


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Rendered, Rendered]:
    """v1, and v2 changing a file of each kind of action: Redis (restart), HAProxy (reload),
    PostgreSQL (reload, or a restart when it asks)."""
    v1_settings = load_stack_file(REPO / "stacks", "staging")
    services = v1_settings.services
    v2_settings = v1_settings.model_copy(
        update={
            "workload": v1_settings.workload.model_copy(update={"redis_policy": "allkeys-lfu"}),
            "services": services.model_copy(
                update={
                    "haproxy": services.haproxy.model_copy(update={"queue_timeout_seconds": 20}),
                    "postgres": services.postgres.model_copy(update={"max_connections": 80}),
                }
            ),
        }
    )
    v1, v2 = _render(v1_settings), _render(v2_settings)
    stage({f.path: (f.content, f.mode) for f in v1.files}, tmp_path / "v1")
    stage({f.path: (f.content, f.mode) for f in v2.files}, tmp_path / "v2")
    changed = [p for p, f in v2.by_path().items() if v1.by_path()[p].content != f.content]
    assert len(changed) == 3, changed
    return v1, v2


def _once(tmp_path: Path, what: str) -> str:
    """Bash for a recorder or a wrapper: the first time only, `what`."""
    marker = tmp_path / "cut"
    return f"if [ ! -e {marker} ]; then touch {marker}; {what}; fi"


# The apply's process group (it runs detached, in a session of its own): what a recorder or a
# wrapper it called belongs to.
APPLY_GROUP = "$(cut -d' ' -f5 /proc/$$/stat)"
KILL_APPLY = f"kill -KILL -- -{APPLY_GROUP}"


def _inspect(tmp_path: Path) -> str:
    """Shell printing what the assertions read: every managed file's hash, mode and owner, the
    state folder, any temp file left beside a managed one, any unit left failed."""
    return (
        f"{{ awk '{{print $4}}' {PATHS.manifest}; echo {PATHS.manifest}; }} | while read -r p; do "
        "echo \"file $(sha256sum < $p | cut -d' ' -f1) $(stat -c '%a %U:%G' $p) $p\"; done; "
        f"echo state $(ls -A {PATHS.staging_dir}); "
        "find /etc /usr/local /opt /root -name '.tunedstack.*' -printf 'temp %p\\n'; "
        f"for u in {tmp_path}/stubs/units/*.failed; do [ -e $u ] && echo failed $u; done; true"
    )


@dataclass
class Box:
    files: dict[str, tuple[str, str]]  # path -> (sha256, "mode owner")
    state: set[str]
    temps: list[str]
    failed_units: list[str]

    @classmethod
    def parse(cls, output: str) -> Box:
        files, state, temps, failed = {}, set(), [], []
        for line in output.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "file":
                sha, mode, owner, path = rest.split()
                files[path] = (sha, f"{mode} {owner}")
            elif kind == "state":
                state = set(rest.split())
            elif kind == "temp":
                temps.append(rest)
            elif kind == "failed":
                failed.append(rest)
        return cls(files, state, temps, failed)

    def assert_clean(self) -> None:
        """Nothing but state in /var/lib/tunedstack, no temp file, every unit active."""
        assert self.state <= STATE_ONLY, self.state
        assert self.temps == []
        assert self.failed_units == []

    def render_held(self, *renders: Rendered) -> int | None:
        """Which of `renders` the box holds, every file of it with its mode and owner."""
        for n, rendered in enumerate(renders):
            wanted = self.expected(rendered)
            if self.files == wanted:
                return n
        return None

    @staticmethod
    def expected(rendered: Rendered) -> dict[str, tuple[str, str]]:
        return {
            f.path: (
                hashlib.sha256(f.content.encode()).hexdigest(),
                f"{int(f.mode, 8):o} {f.owner}",
            )
            for f in rendered.files
        }


# Where the apply is SIGKILLed, as (recorder or wrapper, its bash): the daemons' checks of the
# staged files; the install, some files replaced and the next being written; the actions, with
# PostgreSQL already reloaded on its new file and Redis being restarted.
CUTS = {
    "check": ("runuser", 'case "$*" in *"-C data_directory"*) {cut} ;; esac'),
    "install": (
        "chown",
        "[ -e {tmp}/chowns ] || echo 0 > {tmp}/chowns; "
        "n=$(( $(cat {tmp}/chowns) + 1 )); echo $n > {tmp}/chowns; "
        'if [ "$n" = 4 ]; then {cut}; fi',
    ),
    "act": ("systemctl", 'case "$1 $2" in "restart redis-server.service") {cut} ;; esac'),
}


def _killed_then(tmp_path: Path, where: str, after: str) -> tuple[Run, Run, Box]:
    """First boot on v1, then `--from v2` SIGKILLed once at `where`, then `after`: the killed
    run, the next one and the box it left."""
    scripts, wraps = _cut(tmp_path, where)
    # The first boot is not cut: the cut is armed once it is done.
    arm = f"rm -f {tmp_path}/chowns {tmp_path}/cut"
    boot, killed, after_run, inspect = run_steps(
        tmp_path,
        [
            f"touch {tmp_path}/cut && {write_files(tmp_path / 'v1')} && {PATHS.apply_script}",
            f"{arm} && {PATHS.apply_script} --from {tmp_path / 'v2'}",
            after,
            _inspect(tmp_path),
        ],
        scripts=scripts,
        wraps=wraps,
    )
    assert boot.ok, boot.output
    assert killed.output.endswith("rc=137\n"), killed.output
    assert "was killed by signal 9" in killed.output
    return killed, after_run, Box.parse(inspect.output)


def _cut(
    tmp_path: Path, where: str, what: str = KILL_APPLY
) -> tuple[dict[str, str], dict[str, str]]:
    """The `scripts` and `wraps` of run_steps that do `what` (SIGKILL the apply) once at
    `where`."""
    name, bash = CUTS[where]
    hook = bash.format(cut=_once(tmp_path, what), tmp=tmp_path)
    return ({}, {name: hook}) if name == "chown" else ({name: hook}, {})


@pytest.mark.parametrize("where", list(CUTS))
def test_an_apply_killed_then_rolled_out_again_ends_on_the_new_render(
    tmp_path: Path, versions: tuple[Rendered, Rendered], where: str
) -> None:
    """The rollout is retried with the same bundle (as `pulumi up` run again does): the box ends
    on the new files, acted on, whatever state the killed run left."""
    _v1, v2 = versions
    _, retried, box = _killed_then(
        tmp_path, where, f"{PATHS.apply_script} --from {tmp_path / 'v2'}"
    )
    assert retried.ok, retried.output
    if where != "check":
        assert "an earlier apply was cut off" in retried.output
    # Every change of v2 acted on, the ones the killed run may have started too.
    assert "systemctl restart redis-server.service" in retried.changes
    assert "systemctl reload-or-restart haproxy.service" in retried.changes
    assert box.files == Box.expected(v2)
    box.assert_clean()


@pytest.mark.parametrize("where", ["install", "act"])
def test_an_apply_killed_then_any_apply_puts_the_last_completed_change_back(
    tmp_path: Path, versions: tuple[Rendered, Rendered], where: str
) -> None:
    """The next run is a plain apply (an operator's, or a first boot's): it finds the journal,
    puts back every file of the cut-off change, and acts on them."""
    v1, _v2 = versions
    _, recovered, box = _killed_then(tmp_path, where, PATHS.apply_script)
    assert recovered.ok, recovered.output
    assert "recovered: every file is back as it was before that change" in recovered.output
    assert "systemctl restart redis-server.service" in recovered.changes
    assert box.files == Box.expected(v1)
    box.assert_clean()


def _refuses_redis_on(policy: str) -> str:
    """Redis fails to restart on a redis.conf with `policy`, as a daemon refusing it would."""
    return (
        'case "$1 $2" in "restart redis-server.service"|"start redis-server.service") '
        f'if grep -q {policy!r} {PATHS.redis_conf}; then touch "$units/$2.failed"; exit 1; fi ;; '
        "esac"
    )


def test_a_failed_change_whose_reader_went_away_is_still_rolled_back(
    tmp_path: Path, versions: tuple[Rendered, Rendered]
) -> None:
    """The SSH link drops as the apply starts (its output's reader gone: `head` exits), and the
    change then fails: the apply, detached, rolls every file back and says so in its log."""
    v1, _v2 = versions
    _, dropped, after, inspect = run_steps(
        tmp_path,
        [
            f"{write_files(tmp_path / 'v1')} && {PATHS.apply_script}",
            f"{PATHS.apply_script} --from {tmp_path / 'v2'} | head -c 20",
            f"{PATHS.apply_script} && cat {PATHS.log_dir}/*.log",
            _inspect(tmp_path),
        ],
        scripts={"systemctl": _refuses_redis_on("allkeys-lfu")},
    )
    assert len(dropped.output) <= len("tunedstack-apply: ru") + len("rc=0\n")
    assert after.ok, after.output
    assert "rolled back: the box serves the files it had before this change" in after.output
    box = Box.parse(inspect.output)
    assert box.files == Box.expected(v1)
    box.assert_clean()


def _caller_cut_off(tmp_path: Path, how: str) -> tuple[str, str]:
    """The step that runs the apply as a rollout's caller would, and the bash that cuts that
    caller off: a SIGHUP to it and to the apply (what sshd or a closing terminal sends), or the
    reader of its output gone (a dropped SSH link)."""
    caller, reader = tmp_path / "caller.pid", tmp_path / "reader.pid"
    apply = f"{PATHS.apply_script} --from {tmp_path / 'v2'}"
    if how == "hangup":
        # The caller's output elsewhere: its `tail`, left behind, writes on until the apply ends.
        step = f"bash -c 'echo $$ > {caller}; exec {apply}' > {tmp_path}/caller.out 2>&1"
        cut = f"trap '' HUP; kill -HUP -- -{APPLY_GROUP}; kill -HUP $(cat {caller})"
    else:
        step = f"{apply} | (echo $BASHPID > {reader}; exec cat > /dev/null)"
        cut = f"while [ ! -s {reader} ]; do sleep 0.05; done; kill -KILL $(cat {reader})"
    return f"{step}; echo caller $?", cut


@pytest.mark.parametrize("where", list(CUTS))
@pytest.mark.parametrize("how", ["hangup", "reader gone"])
def test_a_caller_cut_off_at_any_phase_leaves_the_apply_to_finish(
    tmp_path: Path, versions: tuple[Rendered, Rendered], how: str, where: str
) -> None:
    """The rollout's caller goes at the apply's checks, install or actions: the apply, detached,
    finishes the change on its own, and the next rollout of the same files finds nothing to do."""
    _v1, v2 = versions
    step, cut = _caller_cut_off(tmp_path, how)
    scripts, wraps = _cut(tmp_path, where, cut)
    arm = f"rm -f {tmp_path}/chowns {tmp_path}/cut"
    _, cut_off, after, inspect, logs = run_steps(
        tmp_path,
        [
            f"touch {tmp_path}/cut && {write_files(tmp_path / 'v1')} && {PATHS.apply_script}",
            f"{arm} && {step}",
            f"{PATHS.apply_script} --from {tmp_path / 'v2'}",
            _inspect(tmp_path),
            f"grep -c '^applied ' {PATHS.log_dir}/*.log",
        ],
        scripts=scripts,
        wraps=wraps,
    )
    assert (tmp_path / "cut").exists(), "the cut never came"
    if how == "hangup":
        assert "caller 129\n" in cut_off.output, cut_off.output
    # The cut-off run finished the change: the next finds nothing to do.
    assert after.ok, after.output
    assert "installed " not in after.output and "changed " not in after.output
    assert "cut off" not in after.output
    assert [line.split(":")[-1] for line in logs.output.splitlines()] == ["1", "1", "1", "rc=0"]
    box = Box.parse(inspect.output)
    assert box.files == Box.expected(v2)
    box.assert_clean()


def test_the_candidate_redis_never_holds_the_lock(
    tmp_path: Path, versions: tuple[Rendered, Rendered]
) -> None:
    """The apply is killed while its candidate Redis checks the staged redis.conf: the candidate
    holds no lock fd of the apply's, and the next apply does not wait for it."""
    del versions  # staged: v2 is what the apply checks
    # The candidate Redis running is the moment: kill the apply then (the apply alone, as the
    # OOM killer or `kill -9` would), from beside it.
    watch = tmp_path / "watch.sh"
    watch.write_text(
        """
for _ in $(seq 1 600); do
    for r in $(pgrep -x redis-server); do
        # This test's own (another suite may be running its candidates beside it).
        [ "$(readlink /proc/$r/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] || continue
        p=$r
        while [ "$p" -gt 1 ]; do
            p=$(cut -d' ' -f4 /proc/$p/stat)
            if grep -q tunedstack-apply /proc/$p/cmdline 2> /dev/null; then
                parent=$(cut -d' ' -f4 /proc/$r/stat)
                echo fds $(ls -l /proc/$r/fd /proc/$parent/fd | grep -c apply.lock)
                kill -KILL $p
                exit 0
            fi
        done
    done
    sleep 0.05
done
echo no candidate redis seen
"""
    )
    (run,) = run_steps(
        tmp_path,
        [
            f"{tmp_path / 'v2'}{PATHS.apply_script} --from {tmp_path / 'v2'} & "
            f"bash {watch}; wait; timeout 20 flock -w 10 {PATHS.apply_lock} echo lock-free",
        ],
    )
    assert run.output.splitlines()[-2:] == ["lock-free", "rc=0"], run.output
    assert "fds 0" in run.output  # neither the candidate nor its parent had the lock open
