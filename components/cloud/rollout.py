"""Day-2 rollout: push the re-rendered files to the running box and run the same idempotent
apply script first boot used. It re-runs exactly when the rendered content changes: the hash is
part of the command's `update` (an update, never a replacement, unlike `triggers`).

The files travel as the command's stdin, a gzip'd tar that is a Pulumi secret: they hold
passwords, and `CopyToRemote` would need them as files on the runner's disk.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile

import pulumi
from pulumi_command import remote

from components.model.layout import PATHS
from components.model.render import Rendered

# Attempts to reach sshd while a new box is still booting.
SSH_DIAL_ATTEMPTS = 60


def bundle(rendered: Rendered) -> str:
    """base64 of a tar.gz of every file under its path; same files, same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in sorted(rendered.files, key=lambda f: f.path):
            data = f.content.encode()
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), int(f.mode, 8), 0
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(gzip.compress(raw.getvalue(), mtime=0)).decode()


def apply_command(content_hash: str) -> str:
    return f"""set -eu
status=0
cloud-init status --wait > /dev/null || status=$?
case $status in
    0) ;;
    2) echo "warning: first boot finished with recoverable errors (cloud-init status --long)" >&2 ;;
    *) echo "first boot failed ($status): see /var/log/cloud-init-output.log" >&2; exit 1 ;;
esac
staged=$(mktemp -d {PATHS.staging_dir}/staged.XXXXXX)
trap 'rm -rf "$staged"' EXIT
base64 -d | tar -xz -C "$staged"
{PATHS.apply_script} --from "$staged"
# tunedstack content {content_hash}
"""


class Rollout(pulumi.ComponentResource):
    content_hash: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        host: pulumi.Output[str],
        private_key: pulumi.Output[str],
        rendered: pulumi.Output[Rendered],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tunedstack:rollout:Rollout", name, None, opts)
        # A one-way hash of the files: safe to show in a preview, so reviewers see it change.
        self.content_hash = pulumi.Output.unsecret(rendered.apply(lambda r: r.content_hash))
        command = self.content_hash.apply(apply_command)
        files: pulumi.Output[str] = pulumi.Output.secret(rendered.apply(bundle))
        remote.Command(
            f"{name}-apply",
            connection=remote.ConnectionArgs(
                host=host,
                user="root",
                private_key=private_key,
                dial_error_limit=SSH_DIAL_ATTEMPTS,
            ),
            create=command,
            update=command,
            stdin=files,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"content_hash": self.content_hash})
