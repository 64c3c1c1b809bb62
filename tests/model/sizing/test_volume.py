"""The data volume's budget: ext4's overhead measured on a real mkfs, WAL scaled to the volume,
and stacks whose volume cannot hold their own services' files refused naming volumeSizeGb."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.model.errors import SizingError
from components.model.settings import validate
from components.model.sizing import size
from components.model.sizing import volume as vol
from components.model.sizing.postgres import GB, MB


def _available_to_services_mb(image: Path) -> float:
    """What a non-root process may write on a fresh ext4 made as volume.sh makes it."""
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "tunedstack-data", str(image)], check=True)
    header = subprocess.run(
        ["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True
    ).stdout

    def field(name: str) -> int:
        match = re.search(rf"^{name}:\s+(\d+)$", header, re.MULTILINE)
        assert match, name
        return int(match.group(1))

    free = field("Free blocks") - field("Reserved block count")
    return free * field("Block size") / (1024 * 1024)


@pytest.mark.parametrize("size_gb", [10, 20])
def test_usable_space_is_what_a_real_ext4_leaves_non_root(tmp_path: Path, size_gb: int) -> None:
    image = tmp_path / "volume.img"
    with image.open("wb") as f:
        f.truncate(size_gb * 1024 * 1024 * 1024)  # sparse: mkfs writes only its metadata
    available = _available_to_services_mb(image)
    assert vol.usable_mb(size_gb) <= available
    # ... and not so cautious that it refuses volumes that would do (within 1 % of the size).
    assert available - vol.usable_mb(size_gb) < size_gb * 1024 / 100


def test_redis_files_at_their_largest_are_four_data_sets() -> None:
    # dump.rdb + AOF base + an increment as big as the base + one child's new file.
    assert vol.redis_files_mb(1000) == 4000


def test_a_declared_database_is_booked_twice_and_never_below_the_floor() -> None:
    assert vol.database_mb(None) == vol.DATABASE_FLOOR_MB
    assert vol.database_mb(5000) == 10000
    assert vol.database_mb(10) == vol.DATABASE_FLOOR_MB


def test_wal_is_scaled_to_the_volume(minimal_raw: dict[str, Any]) -> None:
    small = size(validate({**minimal_raw, "volumeSizeGb": 10}, "t")).postgres
    assert small.max_wal_size_kb == 1 * GB  # a tenth of 10 GB, not pgtune's 4 GB (40 %)
    assert small.min_wal_size_kb == 256 * MB
    big = size(validate({**minimal_raw, "volumeSizeGb": 100}, "t")).postgres
    assert big.max_wal_size_kb == 4 * GB and big.min_wal_size_kb == 1 * GB  # pgtune's


def test_a_volume_too_small_for_redis_is_refused_with_the_least_size(
    minimal_raw: dict[str, Any],
) -> None:
    raw = {**minimal_raw, "plan": "g6-standard-8"}  # 32 GB of RAM: Redis ~6 GB
    with pytest.raises(SizingError) as err:
        size(validate(raw, "stacks/Pulumi.test.yaml"), source="stacks/Pulumi.test.yaml")
    text = str(err.value)
    match = re.search(r"tunedstack:volumeSizeGb = 20: .* set it to at least (\d+),", text)
    assert match, text
    assert "declare tunedstack:workload.redisDataMb" in text
    assert "Data volume budget:" in text and "over the volume" in text
    least = int(match.group(1))
    sz = size(validate({**raw, "volumeSizeGb": least}, "t"))
    assert sz.volume.fits
    with pytest.raises(SizingError, match="volumeSizeGb"):
        size(validate({**raw, "volumeSizeGb": least - 1}, "t"))


def test_a_declared_database_that_does_not_fit_names_its_key(minimal_raw: dict[str, Any]) -> None:
    raw = {**minimal_raw, "workload": {"postgresDataMb": 9000}}
    with pytest.raises(SizingError) as err:
        size(validate(raw, "t"))
    assert "data 18000 MB" in str(err.value)
    assert "lower tunedstack:workload.postgresDataMb" in str(err.value)


def test_every_sized_stack_fits_its_volume(minimal_raw: dict[str, Any]) -> None:
    sz = size(validate(minimal_raw, "t"))
    v = sz.volume
    assert v.redis_maxmemory_mb == sz.redis.maxmemory_mb
    assert v.max_wal_size_mb * MB == sz.postgres.max_wal_size_kb
    assert v.needed_mb + v.free_mb == vol.usable_mb(v.size_gb)
    assert v.free_mb >= 0
