"""The rollout: every rendered file reaches the box over SSH, at its first boot and at each
change after it. The command re-runs exactly when the content or the instance changes: both are
in its `update` (an update, never a replacement, unlike `triggers`).

The files travel as the command's stdin, a gzip'd tar that is a Pulumi secret: they hold
passwords, and `CopyToRemote` would need them as files on the runner's disk. The connection
pins the box's host key, so the bundle goes to this box or nowhere.
"""

from __future__ import annotations

import pulumi
from pulumi_command import remote

from components.model.delivery import bundle, rollout_script
from components.model.render import Rendered

# A new box boots while the rollout waits: attempts x PER_DIAL_SECONDS, about 10 minutes.
SSH_DIAL_ATTEMPTS = 40
PER_DIAL_SECONDS = 15


class Rollout(pulumi.ComponentResource):
    content_hash: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        host: pulumi.Output[str],
        host_key: pulumi.Output[str],
        private_key: pulumi.Output[str],
        instance_id: pulumi.Output[int],
        rendered: pulumi.Output[Rendered],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tunedstack:rollout:Rollout", name, None, opts)
        # A one-way hash of the files: safe to show in a preview, so reviewers see it change.
        self.content_hash = pulumi.Output.unsecret(rendered.apply(lambda r: r.content_hash))
        command = pulumi.Output.all(self.content_hash, instance_id).apply(
            lambda v: rollout_script(v[0], str(v[1]))
        )
        files: pulumi.Output[str] = pulumi.Output.secret(rendered.apply(bundle))
        remote.Command(
            f"{name}-apply",
            connection=remote.ConnectionArgs(
                host=host,
                user="root",
                private_key=private_key,
                host_key=host_key,
                dial_error_limit=SSH_DIAL_ATTEMPTS,
                per_dial_timeout=PER_DIAL_SECONDS,
            ),
            create=command,
            update=command,
            stdin=files,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"content_hash": self.content_hash})
