"""Unit helpers shared by the sizing modules (memory is MiB unless a name says otherwise)."""

from __future__ import annotations

import math

KIB_PER_MIB = 1024


def round_up(value: float, step: int) -> int:
    return math.ceil(value / step) * step


def next_power_of_two(value: int) -> int:
    return 1 if value <= 1 else 1 << (value - 1).bit_length()


def mib_from_bytes(n_bytes: float) -> int:
    return math.ceil(n_bytes / (1024 * 1024))
