from __future__ import annotations

import shutil
import subprocess

import pytest

from components.model.project import PACKAGE_ROOT
from components.model.settings import Settings, load_stack_file
from components.model.sizing import size
from components.model.sizing.sysctl_rules import kernel_keys
from components.tools.rehearsal.checks import (
    Expectation,
    compare,
    expectations,
    parse_probe,
    probe_script,
    sysctl_keys_check,
)


def test_every_expectation_is_measured_by_the_probe(stack_settings: Settings) -> None:
    sz = size(stack_settings)
    script = probe_script(sz, "staging")
    for e in expectations(sz):
        assert f"emit '{e.name}'" in script, e.name


def test_probe_script_is_clean_bash(stack_settings: Settings) -> None:
    script = probe_script(size(stack_settings), "staging")
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    if shutil.which("shellcheck"):
        result = subprocess.run(
            ["shellcheck", "-s", "bash", "-"], input=script, text=True, capture_output=True
        )
        assert result.returncode == 0, result.stdout


def test_expectations_cover_sysctls_limits_and_services(stack_settings: Settings) -> None:
    sz = size(stack_settings)
    names = {e.name for e in expectations(sz)}
    assert {f"sysctl {s.key}" for s in sz.kernel.sysctls} <= names
    assert {
        "nofile haproxy (soft hard)",
        "postgresql data on volume",
        "redis maxmemory",
        "redis listen",
        "sshd passwordauthentication",
        "transparent hugepages",
    } <= names


@pytest.mark.parametrize(
    ("name", "measured", "ok"),
    [
        ("postgresql shared_buffers", "451MB", True),
        ("postgresql shared_buffers", "452MB", False),
        ("postgresql wal_buffers", "13848kB", True),  # rounded to 8 kB blocks
        ("postgresql wal_buffers", "16MB", False),
        ("postgresql data on volume", "volume[/postgresql]", True),
        ("postgresql data on volume", "/dev/vda", False),
        ("redis listen", "127.0.0.1:6379 [::1]:6379 ", True),
        ("redis listen", "0.0.0.0:6379 ", False),
        ("nofile redis (soft hard)", "65535 65535", True),
        ("nofile redis (soft hard)", "1024 4096", False),
        ("transparent hugepages", "always madvise [never]", True),
    ],
)
def test_comparisons(name: str, measured: str, ok: bool) -> None:
    staging = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    found = [e for e in expectations(size(staging)) if e.name == name]
    # Fixed sized values, so the cases test the comparison, not today's sizing.
    if name == "postgresql wal_buffers":
        found = [Expectation(name, "13854kB", found[0].compare)]
    if name == "postgresql shared_buffers":
        found = [Expectation(name, "451MB", found[0].compare)]
    (check,) = compare(found, {name: measured})
    assert check.ok is ok


def test_missing_measurement_fails() -> None:
    (check,) = compare([Expectation("x", "1", lambda m, e: m == e)], {})
    assert not check.ok and check.measured == "(not measured)"


def test_parse_probe() -> None:
    assert parse_probe("a\t1\nb c\t2 3\n\n") == {"a": "1", "b c": "2 3"}


def test_the_sysctl_keys_check_passes_on_the_listed_kernel_and_names_a_difference() -> None:
    listed = sorted(kernel_keys())
    on_box = "\n".join(k.replace(".*.", ".eth0.") for k in listed)
    assert sysctl_keys_check(on_box).ok
    changed = sysctl_keys_check(on_box.replace("vm.swappiness\n", "") + "\nvm.brand_new")
    assert not changed.ok
    assert "vm.swappiness" in changed.measured and "vm.brand_new" in changed.measured
