"""The stack's backup bucket: Linode Object Storage in the stack's region, a key that reaches
that bucket only, and the two encryption keys the box encrypts with before anything leaves it.
All of it is Pulumi secrets from creation to the box (the rollout's bundle).

pgBackRest and restic keep their own retention (expire, forget --prune): a lifecycle rule that
deleted objects by age would break their repositories, so the bucket's only rule clears
multipart uploads a lost connection left unfinished.
"""

from __future__ import annotations

import pulumi
import pulumi_linode as linode
import pulumi_random as random

from components.model.backups import KEY_LENGTH, BackupKeys, BackupRepository
from components.model.settings import Settings

# Days after which an unfinished multipart upload (a backup cut off) is cleared.
ABORT_INCOMPLETE_UPLOAD_DAYS = 2
# Bucket names are unique per Object Storage cluster across every customer: a random suffix
# keeps two accounts' stacks of the same name apart.
SUFFIX_BYTES = 3


def bucket_label(stack: str, suffix: str) -> str:
    """`tunedstack-<stack>-<6 hex>`, within S3's 3-63 lower-case letters, digits and `-`."""
    base = f"tunedstack-{stack.lower()}"
    base = "".join(c if c.isalnum() or c == "-" else "-" for c in base)[: 63 - len(suffix) - 1]
    return f"{base.rstrip('-')}-{suffix}"


class BackupBucket(pulumi.ComponentResource):
    repository: pulumi.Output[BackupRepository]
    keys: pulumi.Output[BackupKeys]
    bucket: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        stack: str,
        settings: Settings,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tunedstack:backups:BackupBucket", name, None, opts)
        # The backups outlive the box, the stack and a `pulumi destroy`: a protected stack's
        # bucket and keys cannot be deleted by accident, and no stack's bucket is emptied.
        kept = pulumi.ResourceOptions(parent=self, protect=settings.protected)
        suffix = random.RandomId(f"{name}-bucket-suffix", byte_length=SUFFIX_BYTES, opts=kept)
        bucket = linode.ObjectStorageBucket(
            f"{name}-bucket",
            label=suffix.hex.apply(lambda h: bucket_label(stack, h)),
            region=settings.region,
            acl="private",
            lifecycle_rules=[
                linode.ObjectStorageBucketLifecycleRuleArgs(
                    id="abort-unfinished-uploads",
                    enabled=True,
                    abort_incomplete_multipart_upload_days=ABORT_INCOMPLETE_UPLOAD_DAYS,
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self, protect=settings.protected, retain_on_delete=True
            ),
        )
        key = linode.ObjectStorageKey(
            f"{name}-key",
            label=bucket.label.apply(lambda b: f"{b}-box"),
            bucket_accesses=[
                linode.ObjectStorageKeyBucketAccessArgs(
                    bucket_name=bucket.label, region=bucket.region, permissions="read_write"
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self, additional_secret_outputs=["secret_key", "access_key"]
            ),
        )

        def encryption_key(tool: str) -> pulumi.Output[str]:
            # Lose it and the backups it encrypted are unreadable: protected with the stack,
            # and never regenerated (no input of it ever changes).
            password = random.RandomPassword(
                f"{name}-{tool}-encryption", length=KEY_LENGTH, special=False, opts=kept
            )
            return pulumi.Output.secret(password.result)

        endpoint = (
            pulumi.Output.from_input(settings.backups.endpoint)
            if settings.backups.endpoint is not None
            else bucket.s3_endpoint
        )
        self.bucket = bucket.label
        self.repository = pulumi.Output.all(bucket.label, endpoint).apply(
            lambda v: BackupRepository(v[0], v[1])
        )
        self.keys = pulumi.Output.secret(
            pulumi.Output.all(
                key.access_key, key.secret_key, encryption_key("postgres"), encryption_key("redis")
            ).apply(lambda v: BackupKeys(v[0], v[1], v[2], v[3]))
        )
        self.register_outputs({"bucket": self.bucket})
