"""How the rendered files reach a box: one bundle on the rollout's stdin, and the script that
installs it. Used by the Pulumi rollout and by the rehearsal alike, byte for byte.

The script waits for cloud-init (the first-boot document only installs the SSH keys), stages the
bundle, then runs the *staged* first-boot script on a box that was never made ready, or the
staged apply script on one that was: always this rollout's code, whatever the box has installed.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile

from components.model.layout import PATHS
from components.model.render import LOCK_WAIT_SECONDS, Rendered


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


def rollout_script(content_hash: str, instance_id: str) -> str:
    """The command. Its last line names the content and the instance: a change to either (new
    files, or a replaced box) changes the command, and pulumi-command runs it again.

    It takes the apply lock before it stages anything (so an apply cleaning up after a run that
    was cut off never meets a bundle still being staged) and hands it to the staged script,
    which runs detached from this SSH session: a dropped link or a cancelled `pulumi up` leaves
    it to finish or roll back on its own, and the next rollout waits for it."""
    return f"""set -eu
# cloud-init only installs the SSH keys, and this connection proves it did: whatever else it
# reports is worth a warning, never a box that can no longer be fixed by a rollout.
status=0
cloud-init status --wait > /dev/null || status=$?
[ $status = 0 ] \\
    || echo "warning: cloud-init reported status $status (cloud-init status --long); going on" >&2
mkdir -p {PATHS.staging_dir}
exec 9> {PATHS.apply_lock}
flock -w {LOCK_WAIT_SECONDS} 9 \\
    || {{ echo "another tunedstack apply still holds {PATHS.apply_lock}" >&2; exit 1; }}
export TUNEDSTACK_LOCKED=1
staged=$(mktemp -d {PATHS.staging_dir}/staged.XXXXXX)
base64 -d | tar -xz -C "$staged" || {{ rm -rf "$staged"; exit 1; }}
# From here the staged script owns the bundle (it holds secrets) and removes it when it ends.
if [ -e {PATHS.ready_marker} ]; then
    exec "$staged{PATHS.apply_script}" --from "$staged"
else
    exec "$staged{PATHS.firstboot_script}" --from "$staged"
fi
# tunedstack content {content_hash} on instance {instance_id}
"""
