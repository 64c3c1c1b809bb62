from __future__ import annotations

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.cloud.passwords import ServicePasswords
from components.model.render import SECRET_LENGTH
from tests.pulumi_program import run_body


def test_passwords_are_generated_secret_and_url_safe() -> None:
    seen: dict[str, tuple[str, bool]] = {}

    def body() -> None:
        passwords = ServicePasswords("t")
        for role in ("root", "postgres", "redis"):
            out: pulumi.Output[str] = getattr(passwords, role)
            seen[role] = (_sync_await(out.future()) or "", _sync_await(out.is_secret()))

    run = run_body("t", {}, body)
    assert all(secret for _, secret in seen.values())
    by_name = {r.name: r.inputs for r in run.of_type("random:index/randomPassword:RandomPassword")}
    for role in ("postgres", "redis"):
        assert by_name[f"t-{role}"] == {"length": SECRET_LENGTH, "special": False}
    assert by_name["t-root"]["special"] is True and by_name["t-root"]["length"] >= 32
    component = run.one("tunedstack:passwords:ServicePasswords")
    assert component.custom is False
