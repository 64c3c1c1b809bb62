from __future__ import annotations

from components.model.packages import PACKAGES
from components.tools.rehearsal import image


def test_recipe_covers_the_stacks_packages() -> None:
    packages = image.recipe()["packages"]
    assert isinstance(packages, list)
    assert set(PACKAGES) <= set(packages)
    assert {"cloud-init", "openssh-server", "linux-image-cloud-amd64"} <= set(packages)


def test_recipe_hash_is_stable_and_follows_the_recipe(monkeypatch: object) -> None:
    first = image.recipe_hash()
    assert first == image.recipe_hash()
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(image, "RECIPE_VERSION", image.RECIPE_VERSION + 1)
        assert image.recipe_hash() != first
