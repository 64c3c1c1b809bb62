"""The idempotent apply script (cloud-init/apply.sh.j2), run for real on rendered files.

It runs in a private mount namespace with overlays over /etc, /usr/local, /opt and /var/lib, so
every file it installs lands in a temp dir and the host is untouched; the commands that would
change the running system (systemctl, sysctl, systemd-tmpfiles, runuser) are recorders on PATH.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from components.model.layout import PATHS
from components.model.render import LOG_KEEP_DAYS, Rendered, Secrets, render_files
from components.model.settings import (
    AppSettings,
    GitSource,
    Settings,
    SysctlOverride,
    load_stack_file,
)
from components.model.sizing import size
from tests.namespace import (
    apply_steps,
    first_boot,
    needs_namespace,
    run_steps,
    stage,
)

REPO = Path(__file__).resolve().parents[2]

pytestmark = needs_namespace


def _stage(rendered: Rendered, folder: Path) -> None:
    stage({f.path: (f.content, f.mode) for f in rendered.files}, folder)


@pytest.fixture
def staging() -> Settings:
    return load_stack_file(REPO / "stacks", "staging")


def _render(settings: Settings) -> Rendered:
    return render_files("staging", settings, size(settings), Secrets.placeholders())


def test_first_boot_applies_everything_in_order_then_nothing(
    tmp_path: Path, staging: Settings
) -> None:
    rendered = _render(staging)
    _stage(rendered, tmp_path / "v1")
    first, again = apply_steps(tmp_path, [first_boot(tmp_path / "v1"), PATHS.apply_script])
    assert first.output.endswith("rc=0\n"), first.output
    pg_unit = f"postgresql@{size(staging).postgres.version}-main.service"
    assert first.changes == [
        "systemctl restart systemd-modules-load.service",
        "sysctl --system --quiet",
        "systemd-tmpfiles --create",
        "systemctl daemon-reload",
        f"systemctl restart {pg_unit}",
        "systemctl restart redis-server.service",
        "systemctl restart tunedstack-app.socket",
        "systemctl restart tunedstack-app.service",
        "systemctl restart haproxy.service",
        "systemctl reload-or-restart ssh.service",
        "systemctl restart tunedstack-drift.timer",
    ]
    assert again.output.endswith("rc=0\n") and again.changes == []
    assert "changed" not in again.output


def test_day2_rollout_touches_only_what_changed(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    v2 = _render(
        staging.model_copy(
            update={
                "services": staging.services.model_copy(
                    update={
                        "haproxy": staging.services.haproxy.model_copy(
                            update={"queue_timeout_seconds": 20}
                        )
                    }
                )
            }
        )
    )
    changed = [p for p, f in v2.by_path().items() if v1.by_path()[p] != f]
    assert changed == ["/etc/haproxy/haproxy.cfg"]
    _stage(v1, tmp_path / "v1")
    _stage(v2, tmp_path / "v2")
    _, rollout, again = apply_steps(
        tmp_path,
        [
            first_boot(tmp_path / "v1"),
            f"{PATHS.apply_script} --from {tmp_path / 'v2'} && grep -q 'timeout queue 20s' "
            "/etc/haproxy/haproxy.cfg",
            f"{PATHS.apply_script} --from {tmp_path / 'v2'}",
        ],
    )
    assert rollout.output.endswith("rc=0\n"), rollout.output
    assert "installed /etc/haproxy/haproxy.cfg" in rollout.output
    assert rollout.output.count("installed ") == 1
    assert rollout.changes == ["systemctl reload-or-restart haproxy.service"]
    assert again.changes == [] and "installed" not in again.output


def test_postgres_change_restarts_only_when_postgres_asks(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    bigger = staging.model_copy(
        update={
            "services": staging.services.model_copy(
                update={
                    "postgres": staging.services.postgres.model_copy(update={"max_connections": 80})
                }
            )
        }
    )
    v2 = _render(bigger)
    _stage(v1, tmp_path / "v1")
    _stage(v2, tmp_path / "v2")
    _, rollout = apply_steps(
        tmp_path,
        [first_boot(tmp_path / "v1"), f"{PATHS.apply_script} --from {tmp_path / 'v2'}"],
        pending_restart="1",
    )
    pg_unit = f"postgresql@{size(staging).postgres.version}-main.service"
    assert f"systemctl reload {pg_unit}" in rollout.changes
    assert f"systemctl restart {pg_unit}" in rollout.changes
    assert not any("redis" in line or "haproxy" in line for line in rollout.changes)


def test_incomplete_staging_changes_nothing(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    _stage(v1, tmp_path / "v1")
    _stage(v1, tmp_path / "broken")
    (tmp_path / "broken/etc/redis/redis.conf").unlink()
    _, rollout = apply_steps(
        tmp_path,
        [first_boot(tmp_path / "v1"), f"{PATHS.apply_script} --from {tmp_path / 'broken'}"],
    )
    assert "staged /etc/redis/redis.conf is missing" in rollout.output
    assert rollout.output.endswith("rc=1\n")
    assert rollout.changes == []


def test_script_parses_as_bash() -> None:
    staging = load_stack_file(REPO / "stacks", "staging")
    script = _render(staging).by_path()[PATHS.apply_script].content
    result = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert script.startswith("#!/bin/bash\n")


def test_install_from_puts_every_file_in_place_and_acts_on_nothing(
    tmp_path: Path, staging: Settings
) -> None:
    """First boot installs the files before the data volume is mounted (as cloud-init's
    write_files did), and acts only once the app is ready."""
    rendered = _render(staging)
    staged = tmp_path / "staged"
    _stage(rendered, staged)
    listed = " ".join(f.path for f in rendered.files)
    install = f"{staged}{PATHS.apply_script} --install-from {staged}"
    (run,) = apply_steps(tmp_path, [f"{install} && ls {listed} > /dev/null"])
    assert run.ok, run.output
    # Only the packages the host lacks may be asked for; no service is touched.
    assert all(line.startswith("apt-get ") for line in run.changes), run.log
    assert "applied" not in run.output


def test_the_first_boot_checks_each_file_once_unless_it_changed_since(
    tmp_path: Path, staging: Settings
) -> None:
    """The install checks the staged files; the apply once the volume is ready finds the same
    files in place and does not check them again (under emulation a second throwaway initdb
    costs a minute of every first boot), but checks any that changed in between."""
    rendered = _render(staging)
    staged = tmp_path / "staged"
    _stage(rendered, staged)
    install = f"{staged}{PATHS.apply_script} --install-from {staged}"
    installed, applied, left = apply_steps(
        tmp_path, [install, PATHS.apply_script, f"ls -A {PATHS.staging_dir}"]
    )
    assert installed.ok and applied.ok, installed.output + applied.output
    assert f"+ haproxy -c -f {staged}{PATHS.haproxy_cfg}" in installed.output
    assert "+ haproxy -c" not in applied.output
    assert "the files in place are those the install checked" in applied.output
    assert "checked" not in left.output.split()  # the record goes with the apply it served

    other = tmp_path / "other"
    other.mkdir()
    hand_edit = f"echo '# by hand' >> {PATHS.haproxy_cfg}"
    _, edited = run_steps(
        other,
        [f"{install} && {hand_edit}", PATHS.apply_script],
        scripts={"runuser": 'case "$*" in *pending_restart*) echo 0; exit 0 ;; esac'},
    )
    assert edited.ok, edited.output
    assert f"+ haproxy -c -f {PATHS.haproxy_cfg}" in edited.output
    assert "not checked again" not in edited.output


# A failed change: the daemons' checks, then rollback of files and services.


def _with_redis_policy(settings: Settings, policy: str) -> Settings:
    return settings.model_copy(
        update={"workload": settings.workload.model_copy(update={"redis_policy": policy})}
    )


def _failing_when(unit: str, grep: str, path: str) -> str:
    """A systemctl that fails to (re)start or reload `unit` while `path` holds `grep`, as the
    daemon refusing its file would (and leaves the unit failed)."""
    return (
        f'case "$1 $2" in "restart {unit}"|"reload-or-restart {unit}"|"start {unit}") '
        f'if grep -q {grep!r} {path}; then touch "$units/{unit}.failed"; exit 1; fi ;; esac'
    )


def _two_versions(tmp_path: Path, v1: Rendered, v2: Rendered) -> tuple[Path, Path]:
    _stage(v1, tmp_path / "v1")
    _stage(v2, tmp_path / "v2")
    return tmp_path / "v1", tmp_path / "v2"


def test_a_config_haproxy_rejects_is_never_reloaded_and_is_put_back(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    first, _ = _two_versions(tmp_path, v1, v1)
    cfg = tmp_path / "v2" / PATHS.haproxy_cfg.lstrip("/")
    cfg.write_text(cfg.read_text() + "frontend broken\n    bind :80\n    no-such-keyword 1\n")
    _, rollout, after = apply_steps(
        tmp_path,
        [
            first_boot(first),
            f"{PATHS.apply_script} --from {tmp_path / 'v2'}",
            f"cmp {first}{PATHS.haproxy_cfg} {PATHS.haproxy_cfg} && ls -A {PATHS.staging_dir}",
        ],
    )
    assert rollout.output.endswith("rc=1\n"), rollout.output
    assert "no-such-keyword" in rollout.output  # haproxy's own message
    assert rollout.changes == []  # no reload, no restart
    assert "installed /" not in rollout.output  # checked as staged, before any file moved
    assert "refused before anything was installed" in rollout.output
    assert after.ok, after.output
    assert sorted(after.output.split()) == ["applied-manifest", "apply.lock", "rc=0"]


def test_a_config_redis_rejects_is_never_restarted_on(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    first, second = _two_versions(tmp_path, v1, _render(_with_redis_policy(staging, "allkeys-lfu")))
    conf = second / PATHS.redis_conf.lstrip("/")
    conf.write_text(conf.read_text().replace("maxmemory-policy allkeys-lfu", "maxmemory banana"))
    _, rollout = apply_steps(tmp_path, [first_boot(first), f"{PATHS.apply_script} --from {second}"])
    assert rollout.output.endswith("rc=1\n"), rollout.output
    # The staged candidate is what Redis read, before anything was installed.
    assert f"redis-server {second}{PATHS.redis_conf} (config check): refused" in rollout.output
    assert "maxmemory" in rollout.output  # Redis' own FATAL CONFIG FILE ERROR lines
    assert rollout.changes == []


def test_a_failed_restart_puts_the_old_file_back_and_the_service_on_it(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    first, second = _two_versions(tmp_path, v1, _render(_with_redis_policy(staging, "allkeys-lfu")))
    refuses = _failing_when("redis-server.service", "allkeys-lfu", PATHS.redis_conf)
    _, rollout, revert, again = run_steps(
        tmp_path,
        [
            first_boot(first),
            f"{PATHS.apply_script} --from {second}",
            f"cmp {first}{PATHS.redis_conf} {PATHS.redis_conf} && "
            f"{PATHS.apply_script} --from {first}",
            f"{PATHS.apply_script} --from {second}",
        ],
        scripts={"systemctl": refuses},
    )
    assert rollout.output.endswith("rc=1\n"), rollout.output
    assert rollout.changes == [
        "systemctl restart redis-server.service",  # refused: the new file
        "systemctl restart redis-server.service",  # the old file, back in place
    ]
    assert "rolled back: the box serves the files it had before this change" in rollout.output
    # Pushing the previous stack again finds the box as it was: nothing to do, all running.
    assert revert.ok, revert.output
    assert revert.changes == []
    # The same change fails the same way: the failed attempt was never recorded as applied.
    assert again.output.endswith("rc=1\n")
    assert again.changes == rollout.changes


def test_a_failed_reload_is_rolled_back(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    slower = staging.services.model_copy(
        update={
            "haproxy": staging.services.haproxy.model_copy(update={"queue_timeout_seconds": 20})
        }
    )
    first, second = _two_versions(
        tmp_path, v1, _render(staging.model_copy(update={"services": slower}))
    )
    refuses = _failing_when("haproxy.service", "timeout queue 20s", PATHS.haproxy_cfg)
    _, rollout = run_steps(
        tmp_path,
        [first_boot(first), f"{PATHS.apply_script} --from {second}"],
        scripts={"systemctl": refuses},
    )
    assert rollout.output.endswith("rc=1\n"), rollout.output
    assert rollout.changes == [
        "systemctl reload-or-restart haproxy.service",
        "systemctl reload-or-restart haproxy.service",
    ]
    assert f"restored {PATHS.haproxy_cfg}" in rollout.output
    assert "rolled back: the box serves" in rollout.output


def test_a_change_whose_rollback_fails_is_acted_on_again_by_the_next_apply(
    tmp_path: Path, staging: Settings
) -> None:
    """Redis refuses to start on either file (say its disk was full): the rollback cannot bring
    it back, so nothing is recorded as applied and the next apply, once the fault is gone,
    restarts it even though it pushes the files the box had before."""
    v1 = _render(staging)
    first, second = _two_versions(tmp_path, v1, _render(_with_redis_policy(staging, "allkeys-lfu")))
    fault = tmp_path / "disk-full"
    refuses = (
        'case "$1 $2" in "restart redis-server.service"|"start redis-server.service") '
        f'if [ -e {fault} ]; then touch "$units/$2.failed"; exit 1; fi ;; esac'
    )
    _, failed, revert = run_steps(
        tmp_path,
        [
            first_boot(first),
            f"touch {fault} && {PATHS.apply_script} --from {second}",
            f"rm {fault} && {PATHS.apply_script} --from {first}",
        ],
        scripts={"systemctl": refuses},
    )
    assert failed.output.endswith("rc=1\n"), failed.output
    assert "the rollback did not bring every service back" in failed.output
    assert revert.ok, revert.output
    assert "systemctl restart redis-server.service" in revert.changes


def test_a_unit_that_stopped_is_started_by_the_next_apply(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    _stage(v1, tmp_path / "v1")
    _, apply = run_steps(
        tmp_path,
        [
            first_boot(tmp_path / "v1"),
            f"touch {tmp_path}/stubs/units/redis-server.service.failed && {PATHS.apply_script}",
        ],
    )
    assert apply.ok, apply.output
    assert apply.changes == ["systemctl start redis-server.service"]
    assert "redis-server.service is not running: starting it" in apply.output


def test_a_sysctl_the_kernel_does_not_take_fails_the_change(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    wider = staging.model_copy(
        update={"sysctl": {"net.core.somaxconn": SysctlOverride(value="70000")}}
    )
    first, second = _two_versions(tmp_path, v1, _render(wider))
    # A kernel that caps the value (as one whose limit is lower would).
    kernel = (
        'if [ "$1 $2" = "-n net.core.somaxconn" ] && '
        f"grep -q '= 70000' {PATHS.sysctl_conf}; then echo 4096; exit 0; fi"
    )
    _, rollout = run_steps(
        tmp_path,
        [first_boot(first), f"{PATHS.apply_script} --from {second}"],
        scripts={"sysctl": kernel},
    )
    assert rollout.output.endswith("rc=1\n"), rollout.output
    assert (
        "sysctl net.core.somaxconn is '4096', not '70000': the kernel did not take it"
        in rollout.output
    )
    assert rollout.changes == ["sysctl --system --quiet", "sysctl --system --quiet"]
    assert f"restored {PATHS.sysctl_conf}" in rollout.output


def test_two_applies_never_interleave(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    _stage(v1, tmp_path / "v1")
    order, held = tmp_path / "order", tmp_path / "held"
    holder = (
        f"mkfifo {held}; ( flock {PATHS.apply_lock} bash -c "
        f"'echo > {held}; sleep 1; echo holder-done >> {order}' & ); read -r _ < {held}"
    )
    _, run = apply_steps(
        tmp_path,
        [
            first_boot(tmp_path / "v1"),
            f"{holder}; {PATHS.apply_script} && echo apply-done >> {order}; cat {order}",
        ],
    )
    assert run.ok, run.output
    assert run.output.splitlines()[-3:-1] == ["holder-done", "apply-done"]


def test_the_drift_check_names_every_file_that_changed_since_it_was_applied(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    _stage(v1, tmp_path / "v1")
    _, clean, drifted = apply_steps(
        tmp_path,
        [
            first_boot(tmp_path / "v1"),
            f"{PATHS.drift_script}",
            f"chmod 0600 {PATHS.haproxy_cfg} && echo '# by hand' >> {PATHS.redis_conf} && "
            f"rm {PATHS.sysctl_conf} && chown nobody {PATHS.gunicorn_conf} && "
            f"{PATHS.drift_script}; echo rc=$?; cat {PATHS.drift_report}",
        ],
    )
    assert clean.ok, clean.output
    assert ": 0 drifted" in clean.output
    report = drifted.output.split("rc=1\n")[1]
    assert ": 4 drifted" in report
    assert f"drifted {PATHS.haproxy_cfg}: mode 644 is now 600" in report
    assert f"drifted {PATHS.redis_conf}: content changed since it was applied" in report
    assert f"drifted {PATHS.sysctl_conf}: missing" in report
    assert f"drifted {PATHS.gunicorn_conf}: owner root:root is now nobody:root" in report


def test_a_mode_or_owner_change_alone_is_applied_and_acted_on(
    tmp_path: Path, staging: Settings
) -> None:
    v1 = _render(staging)
    stricter = tuple(
        replace(f, mode="0640") if f.path == PATHS.haproxy_cfg else f for f in v1.files
    )
    manifest = "".join(f.manifest_line() + "\n" for f in stricter if f.path != PATHS.manifest)
    v2 = replace(
        v1,
        files=tuple(
            replace(f, content=manifest) if f.path == PATHS.manifest else f for f in stricter
        ),
    )
    first, second = _two_versions(tmp_path, v1, v2)
    _, rollout = apply_steps(
        tmp_path,
        [
            first_boot(first),
            f"{PATHS.apply_script} --from {second} && stat -c %a {PATHS.haproxy_cfg}",
        ],
    )
    assert rollout.ok, rollout.output
    assert rollout.output.splitlines()[-2] == "640"
    assert f"installed {PATHS.haproxy_cfg}" in rollout.output
    assert rollout.changes == ["systemctl reload-or-restart haproxy.service"]


def test_a_file_that_leaves_the_manifest_is_removed_or_the_distributions_copy_put_back(
    tmp_path: Path, staging: Settings
) -> None:
    """A private repository's deploy key goes when the app no longer needs it; the tuned
    redis.conf, which replaced Debian's own, gives Debian's back when the stack turns stock."""
    private = staging.model_copy(
        update={
            "app": AppSettings(git=GitSource(url="git@github.com:acme/shop.git", deploy_key=True))
        }
    )
    stock = staging.model_copy(update={"tuning": "stock"})
    v1, v2 = _render(private), _render(stock)
    assert PATHS.app_deploy_key in v1.by_path() and PATHS.app_deploy_key not in v2.by_path()
    assert PATHS.redis_conf in v1.by_path() and PATHS.redis_conf not in v2.by_path()
    first, second = _two_versions(tmp_path, v1, v2)
    debian = Path(PATHS.redis_conf).read_bytes()
    boot, switched, after = apply_steps(
        tmp_path,
        [
            f"{first}{PATHS.apply_script} --from {first} && test -e {PATHS.app_deploy_key}",
            f"{PATHS.apply_script} --from {second}",
            f"test ! -e {PATHS.app_deploy_key} && sha256sum < {PATHS.redis_conf}",
        ],
    )
    assert boot.ok, boot.output
    assert switched.ok, switched.output
    assert f"retired {PATHS.app_deploy_key}: removed" in switched.output
    assert f"retired {PATHS.redis_conf}: the distribution's copy is back" in switched.output
    assert after.ok, after.output
    assert after.output.split()[0] == hashlib.sha256(debian).hexdigest()


def test_logs_of_detached_runs_are_kept_thirty_days(tmp_path: Path, staging: Settings) -> None:
    v1 = _render(staging)
    _stage(v1, tmp_path / "v1")
    old, recent = f"{PATHS.log_dir}/old.log", f"{PATHS.log_dir}/recent.log"
    (_, run) = apply_steps(
        tmp_path,
        [
            first_boot(tmp_path / "v1"),
            f"touch -d '{LOG_KEEP_DAYS + 1} days ago' {old} && touch -d '{LOG_KEEP_DAYS - 1} days "
            f"ago' {recent} && {PATHS.apply_script} && ls {PATHS.log_dir}",
        ],
    )
    assert run.ok, run.output
    assert "old.log" not in run.output and "recent.log" in run.output
