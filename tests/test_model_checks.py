"""Every built model is checked where runs start, before any work."""

import textwrap

import pytest

from harness.errors import ConfigError
from harness.models import build_model
from harness.theory_check import path_settings

BUILDERS = """
import jax.numpy as jnp
from harness.models import Model

def nan_log_joint(cfg, dtype):
    return Model("nan", 2, lambda t, d: jnp.sum(t) * jnp.nan, (), jnp.zeros(2))

def wrong_dim(cfg, dtype):
    def log_joint(t, d):
        x, y = t
        return -(x**2 + y**2)
    return Model("wrong", 3, log_joint, (), jnp.zeros(3))

def vector(cfg, dtype):
    return Model("vector", 2, lambda t, d: -t**2, (), jnp.zeros(2))
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    (tmp_path / "user_models.py").write_text(textwrap.dedent(BUILDERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_models"


@pytest.mark.parametrize(
    ("builder", "message"),
    [
        ("nan_log_joint", "log-joint is nan at the reference mean"),
        ("wrong_dim", "cannot be evaluated at the reference mean of dim=3"),
        ("vector", "returned shape (2,)"),
    ],
)
def test_custom_models_are_checked(module, builder, message):
    with pytest.raises(ConfigError) as error:
        build_model({"name": "custom", "target": f"{module}:{builder}"}, "float64")
    assert message in str(error.value)
    assert "model=custom" in str(error.value)


def test_a_target_that_is_not_a_builder_is_refused():
    with pytest.raises(ConfigError, match=r"model\.target='os:getcwd'.*builder"):
        build_model({"name": "custom", "target": "os:getcwd"}, "float64")


def test_path_points_on_the_same_step_are_refused():
    cfg = {
        "num_steps": 3,
        "learning_rate": 0.1,
        "num_samples": 2,
        "path_points": [0.0, 0.1, 0.2],
        "start": "zero",
        "dense_hessian_max_dim": 10,
    }
    with pytest.raises(ConfigError, match=r"steps \[0, 0, 1\]"):
        path_settings(cfg)


def test_an_unwritable_compilation_cache_is_refused(tmp_path):
    from harness.app import configure_compilation_cache

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="compilation_cache_dir="):
        configure_compilation_cache(str(blocker / "cache"))
