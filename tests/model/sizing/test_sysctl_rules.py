"""Sysctl overrides: keys the target kernel has, values of the kind it takes, and the values
that make the kernel run a program only with a reason."""

from __future__ import annotations

import io
import sys

import pytest

from components.model.errors import SettingsError, SizingError
from components.model.project import PACKAGE_ROOT
from components.model.settings import SysctlOverride, load_stack_file, validate
from components.model.sizing import size
from components.model.sizing.kernel import Floors, apply_overrides, file_limits, profile_sysctls
from components.model.sizing.sysctl_rules import (
    LISTED_IMAGE,
    interface_free,
    kernel_keys,
    key_problem,
    main,
    value_problem,
)


def _problems(
    key: str, value: str, reason: str | None = None, image: str = LISTED_IMAGE
) -> list[str]:
    profile = profile_sysctls(4096, 65536, 65536)
    _, problems = apply_overrides(
        profile,
        {key: SysctlOverride(value=value, reason=reason)},
        4096,
        4096,
        Floors(65536, file_limits(1000, 1000)),
        image,
    )
    return [p.message for p in problems]


@pytest.mark.parametrize(
    "value", ["banana", "-5", "1 # c", "inf", "1.5", "0x10", "9" * 20, "1 2 3 4 5 6 7 8 9"]
)
def test_a_value_the_kernel_would_not_take_is_refused(value: str) -> None:
    (message,) = _problems("net.core.netdev_max_backlog", value)
    assert "must be whole numbers of 0 or more" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.core.netdev_max_backlog", "16384"),
        ("net.ipv4.tcp_rmem", "4096 131072 16777216"),
        ("kernel.perf_event_paranoid", "-1"),
        ("net.ipv4.tcp_congestion_control", "bbr"),
        ("net.core.default_qdisc", "fq"),
        ("net.ipv4.conf.eth0.rp_filter", "1"),
        ("net.ipv6.conf.all.disable_ipv6", "0"),
    ],
)
def test_ordinary_values_are_accepted(key: str, value: str) -> None:
    assert _problems(key, value) == []


def test_an_unknown_key_is_refused_with_the_nearest_real_one() -> None:
    (message,) = _problems("net.core.somaxcon", "8192")
    assert "has no such sysctl" in message and "`net.core.somaxconn`" in message


def test_keys_are_checked_only_against_the_kernel_they_were_listed_from() -> None:
    assert key_problem("net.core.somaxcon", "linode/ubuntu24.04") is None
    assert key_problem("net.core.somaxcon", LISTED_IMAGE) is not None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kernel.core_pattern", "|/tmp/x %p"),
        ("kernel.modprobe", "/tmp/x"),
        ("kernel.poweroff_cmd", "/tmp/x"),
    ],
)
def test_a_value_that_runs_a_program_needs_a_reason(key: str, value: str) -> None:
    (message,) = _problems(key, value)
    assert "run a program as root" in message
    assert _problems(key, value, reason="the crash collector we run") == []


def test_a_plain_core_pattern_needs_no_reason() -> None:
    assert _problems("kernel.core_pattern", "core.%p") == []


def test_a_newline_in_a_reason_never_reaches_the_sysctl_file() -> None:
    with pytest.raises(SettingsError) as e:
        validate(
            {
                "region": "us-east",
                "plan": "g6-standard-2",
                "sysctl": {
                    "vm.swappiness": {"value": 5, "reason": "x\nkernel.core_pattern = |/tmp/x"}
                },
            },
            "stacks/Pulumi.t.yaml",
        )
    assert "tunedstack:sysctl['vm.swappiness'].reason" in str(e.value)
    assert "control character" in str(e.value)


def test_the_error_names_the_stack_key() -> None:
    settings = load_stack_file(PACKAGE_ROOT / "stacks", "staging")
    bad = settings.model_copy(update={"sysctl": {"vm.swappiness": SysctlOverride(value="banana")}})
    with pytest.raises(SizingError) as e:
        size(bad, "stacks/Pulumi.staging.yaml")
    assert "tunedstack:sysctl['vm.swappiness'] = 'banana': must be whole numbers" in str(e.value)


def test_the_profile_only_sets_keys_the_kernel_has() -> None:
    for sysctl in profile_sysctls(4096, 65536, 65536):
        assert interface_free(sysctl.key) in kernel_keys(), sysctl.key
        assert value_problem(sysctl.key, sysctl.value) is None, sysctl.key


def test_the_list_is_made_from_sysctl_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys,
        "stdin",
        io.StringIO("vm.swappiness\nnet.ipv4.conf.eth0.rp_filter\nnet.ipv4.conf.all.rp_filter\n"),
    )
    main()
    assert capsys.readouterr().out.splitlines() == [
        "net.ipv4.conf.*.rp_filter",
        "net.ipv4.conf.all.rp_filter",
        "vm.swappiness",
    ]
