from __future__ import annotations

from components.model.sizing.units import mib_from_bytes, next_power_of_two, round_up


def test_round_up() -> None:
    assert round_up(5000, 1024) == 5120
    assert round_up(1024, 1024) == 1024


def test_next_power_of_two() -> None:
    assert next_power_of_two(1) == 1
    assert next_power_of_two(53248) == 65536
    assert next_power_of_two(65536) == 65536


def test_mib_from_bytes_rounds_up() -> None:
    assert mib_from_bytes(1) == 1
    assert mib_from_bytes(1024 * 1024) == 1
