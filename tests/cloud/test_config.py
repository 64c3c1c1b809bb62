"""Reading the stack's settings from Pulumi's config inside the program."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import yaml

from components.cloud.config import load_pulumi_config
from components.model.settings import load_stack_file


def test_pulumi_config_loader_gives_the_same_settings(repo: Path, stack_name: str) -> None:
    doc = yaml.safe_load((repo / "stacks" / f"Pulumi.{stack_name}.yaml").read_text())
    # The engine hands config over as strings, structured values as JSON.
    as_engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc["config"].items()}
    pulumi.runtime.set_all_config(as_engine)
    try:
        assert load_pulumi_config(stack_name) == load_stack_file(repo / "stacks", stack_name)
    finally:
        pulumi.runtime.set_all_config({})
