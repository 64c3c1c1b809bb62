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

# A new box boots while the rollout waits. pulumi-command dials it until SSH_DIAL_ERROR_LIMIT
# dials have failed and then once more, each bounded by PER_DIAL_SECONDS, with a back-off between
# them: about 13 minutes while the box drops packets, under 3 once its port 22 refuses
# (dial_wait_seconds).
SSH_DIAL_ERROR_LIMIT = 40
PER_DIAL_SECONDS = 15
# The back-off between dials: pulumi's retry.Until defaults (sdk/go/common/util/retry), which
# pulumi-command's dialWithRetry uses (provider/pkg/provider/remote/connection.go): 0.1 s, times
# 1.5 after each failure, at most 5 s.
DIAL_BACKOFF_FIRST_S = 0.1
DIAL_BACKOFF_FACTOR = 1.5
DIAL_BACKOFF_MAX_S = 5.0


def dial_wait_seconds(dial_seconds: float) -> float:
    """How long the rollout dials a box that does not answer before it fails, when each failed
    dial takes `dial_seconds` (PER_DIAL_SECONDS when packets are dropped, ~0 when the port
    refuses): dialWithRetry gives up once more than SSH_DIAL_ERROR_LIMIT dials failed, and
    waits its back-off after each failed dial before that."""
    total, backoff = 0.0, DIAL_BACKOFF_FIRST_S
    for _ in range(SSH_DIAL_ERROR_LIMIT):
        total += dial_seconds + min(backoff, DIAL_BACKOFF_MAX_S)
        backoff *= DIAL_BACKOFF_FACTOR
    return total + dial_seconds


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
                dial_error_limit=SSH_DIAL_ERROR_LIMIT,
                per_dial_timeout=PER_DIAL_SECONDS,
            ),
            create=command,
            update=command,
            stdin=files,
            # Each run's stdin would otherwise go back to the box as two environment variables
            # Debian's sshd refuses (a warning on every update).
            add_previous_output_in_env=False,
            # The apply's output names files, units and daemons' complaints: kept encrypted in
            # the state like everything else that comes from the box.
            opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["stdout", "stderr"]
            ),
        )
        self.register_outputs({"content_hash": self.content_hash})
