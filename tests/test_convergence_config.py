"""Bad convergence settings are refused before any work, with clear messages."""

import pytest

from harness import app, optimizers
from harness.config import run_settings
from harness.errors import ConfigError
from harness.variance import VARIANCE_ESTIMATORS
from tests.convergence_helpers import config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optim__name": "no_such_optimizer"}, r"optim\.name='no_such_optimizer'"),
        ({"optim__name": "apply_updates"}, r"optim\.name='apply_updates'.*fails"),
        ({"optim__name": "lbfgs"}, r"optim\.name='lbfgs'.*update\(updates"),
        ({"optim__name": "GradientTransformation"}, r"optim\.name="),
        ({"optim__steps": 0}, r"optim\.steps=0 is not allowed: expected an integer"),
        ({"optim__learning_rate": -0.1}, r"optim\.learning_rate=-0\.1 .*> 0"),
        ({"optim__schedule": "step"}, r"optim\.schedule='step' .*constant, cosine"),
        ({"optim__options": {"momentum": 0.9}}, r"optim\.options=.*adam"),
        (
            {"optim__schedule": "warmup_cosine", "optim__warmup_steps": 40},
            r"optim\.warmup_steps=40 .*from 0 to 39",
        ),
        ({"eval_every": 0}, r"eval_every=0 is not allowed"),
        ({"eval_every": 41}, r"eval_every=41 .*optim\.steps=40"),
        ({"tolerance": 0.0}, r"tolerance=0\.0 .*> 0"),
        ({"baseline_decay": 1.0}, r"baseline_decay=1\.0 .*\[0, 1\)"),
        ({"elbo_samples": 100}, r"elbo_samples=100 .*≥ 4096"),
        ({"estimators": ["sf_cv"], "num_samples": 2}, r"num_samples=2 .*sf_cv"),
    ],
)
def test_bad_convergence_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        optimizers.convergence_settings(config(**changes))


def test_good_settings_build_every_schedule():
    for schedule in optimizers.SCHEDULES:
        settings = optimizers.convergence_settings(
            config(optim__schedule=schedule, optim__warmup_steps=5)
        )
        schedule_fn = optimizers.learning_rate_schedule(settings.optim)
        rate = schedule_fn if schedule == "constant" else schedule_fn(40)
        assert rate == pytest.approx(0.05 if schedule == "constant" else 0.005)


def test_sgd_with_options_is_accepted():
    settings = optimizers.convergence_settings(
        config(optim__name="sgd", optim__options={"momentum": 0.9})
    )
    assert settings.optim.options == {"momentum": 0.9}


def test_the_variance_experiment_refuses_sf_ma_saying_why():
    cfg = config(experiment="variance", estimators=["rp", "sf_ma"])
    with pytest.raises(ConfigError) as error:
        run_settings(cfg, VARIANCE_ESTIMATORS)
    text = str(error.value)
    assert "estimators: 'sf_ma' is not allowed in the variance experiment" in text
    assert "carries a state" in text and "names from rp" in text


def test_the_variance_experiment_accepts_sf_cv():
    cfg = config(experiment="variance", estimators="all", num_samples=3)
    assert "sf_cv" in run_settings(cfg, VARIANCE_ESTIMATORS).estimators


def test_the_job_builder_validates_before_building_the_model(monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before validation")

    monkeypatch.setattr(app, "build_model", no_model)
    with pytest.raises(ConfigError, match=r"optim\.steps=0"):
        app.JOBS["convergence"](config(optim__steps=0))
    with pytest.raises(ConfigError, match="sf_ma"):
        app.JOBS["variance"](config(experiment="variance", estimators=["sf_ma"]))
