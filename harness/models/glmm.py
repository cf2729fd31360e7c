"""A logistic mixed model with city random intercepts on real grouped data.

The data are eight 2 × 2 tables of smoking against lung cancer in eight Chinese
cities [liu1992], bundled with statsmodels
(``statsmodels.datasets.china_smoking``). It is a case-control study, so the
model is for the odds of smoking: each city ``c`` contributes two binomial
cells, cases (``x = 1``) and controls (``x = 0``), with ``successes`` the
smokers among ``trials`` people, and

    logit P(smoker) = μ + τ z_c + β x,   z_c ~ N(0, 1),

so ``β`` is the log odds ratio of smoking between cases and controls, shared by
the cities, and the cities' baselines vary with spread ``τ``
(:func:`harness.models.numpyro_models.binomial_random_intercepts`).
``d = 11``: ``μ``, ``β``, ``log τ`` and the eight ``z_c``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from harness.errors import check_choice, check_float, check_int
from harness.models import numpyro_models
from harness.models.base import Model
from harness.models.numpyro_adapter import from_numpyro


def china_smoking():
    """``(successes, trials, group, covariate)``: 16 cells, cases then controls."""
    from statsmodels.datasets import china_smoking as source

    table = source.load_pandas().data
    cases_smoking = table["smoking_yes_cancer_yes"].to_numpy(np.float64)
    cases_not = table["smoking_no_cancer_yes"].to_numpy(np.float64)
    controls_smoking = table["smoking_yes_cancer_no"].to_numpy(np.float64)
    controls_not = table["smoking_no_cancer_no"].to_numpy(np.float64)
    num_cities = table.shape[0]
    successes = np.concatenate([cases_smoking, controls_smoking])
    trials = np.concatenate(
        [cases_smoking + cases_not, controls_smoking + controls_not]
    )
    group = np.concatenate([np.arange(num_cities), np.arange(num_cities)])
    covariate = np.concatenate([np.ones(num_cities), np.zeros(num_cities)])
    return successes, trials, group, covariate


def build(cfg, dtype) -> Model:
    """Builds the mixed model from its config group."""
    check_choice(cfg.get("dataset"), "model.dataset", ("china_smoking",))
    prior_scale = check_float(
        cfg.get("prior_scale"), "model.prior_scale", greater_than=0
    )
    seed = check_int(cfg.get("seed", 0), "model.seed", 0)
    successes, trials, group, covariate = china_smoking()
    data = {
        "successes": jnp.asarray(successes),
        "trials": jnp.asarray(trials),
        "group": jnp.asarray(group, dtype=jnp.int32),
        "covariate": jnp.asarray(covariate),
        "prior_scale": jnp.asarray(prior_scale, dtype=jnp.float64),
    }
    model = from_numpyro(
        numpyro_models.binomial_random_intercepts,
        data,
        {"num_groups": int(group.max()) + 1},
        name="glmm",
        seed=seed,
    )
    return model.astype(dtype)
