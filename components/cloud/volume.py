"""The data volume: PostgreSQL's and Redis' state outlive any instance replacement."""

from __future__ import annotations

import pulumi
import pulumi_linode as linode

from components.model.layout import volume_device, volume_label
from components.model.settings import Settings


class DataVolume(pulumi.ComponentResource):
    volume_id: pulumi.Output[str]
    device: str

    def __init__(
        self,
        name: str,
        stack: str,
        settings: Settings,
        linode_id: pulumi.Output[int],
        tags: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tunedstack:volume:DataVolume", name, None, opts)
        volume = linode.Volume(
            f"{name}-volume",
            label=volume_label(stack),
            region=settings.region,
            size=settings.volume_size_gb,
            linode_id=linode_id,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=settings.protected,
                # Labels are unique per account. Preflight refuses the changes that would
                # replace a volume holding data (region, a smaller size) before this applies.
                delete_before_replace=True,
                # Even a deliberate `pulumi destroy` of a protected stack keeps the data.
                retain_on_delete=settings.protected,
            ),
        )
        self.volume_id = volume.id
        self.device = volume_device(stack)
        self.register_outputs({"volume_id": self.volume_id, "device": self.device})
