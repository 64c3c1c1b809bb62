"""Generated passwords (pulumi-random), kept as Pulumi secrets from creation to the box."""

from __future__ import annotations

import pulumi
import pulumi_random as random

from components.model.render import SECRET_LENGTH

ROOT_PASSWORD_LENGTH = 40


class ServicePasswords(pulumi.ComponentResource):
    """Root password for the instance, PostgreSQL's app role password and Redis' requirepass."""

    root: pulumi.Output[str]
    postgres: pulumi.Output[str]
    redis: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tunedstack:passwords:ServicePasswords", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def service(role: str) -> pulumi.Output[str]:
            # Letters and digits only: they go into URLs and shell-sourced env files.
            password = random.RandomPassword(
                f"{name}-{role}", length=SECRET_LENGTH, special=False, opts=child
            )
            return pulumi.Output.secret(password.result)

        self.postgres = service("postgres")
        self.redis = service("redis")
        root = random.RandomPassword(
            f"{name}-root",
            length=ROOT_PASSWORD_LENGTH,
            special=True,
            override_special="-_.+=",
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            min_special=2,
            opts=child,
        )
        self.root = pulumi.Output.secret(root.result)
        self.register_outputs({"root": self.root, "postgres": self.postgres, "redis": self.redis})
