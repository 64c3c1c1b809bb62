"""Local rehearsal: boot the exact cloud-config in a QEMU VM and check the box."""
