"""Shared helpers of the test suite: composing run configs like the CLI does."""

from __future__ import annotations

from hydra import compose, initialize_config_dir

from harness.app import CONF_DIR


def compose_config(overrides: list[str]):
    """The run config that ``python -m harness OVERRIDES`` would see."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose("config", overrides=overrides)
