"""The eight schools: a hierarchical normal model of coaching effects.

Eight schools each report an estimated effect of a coaching programme on test
scores and its standard error [rubin1981]; the model (in
:mod:`harness.models.numpyro_models`) pools them through a common mean ``μ``
and spread ``τ``. ``model.parameterization`` chooses the centred form (latent
``θ_j``; its unconstrained density is a funnel with no mode, so the reference
mean is the prior-median starting point) or the non-centred form (latent
``η_j = (θ_j − μ)/τ``; the reference is the posterior mode). ``d = 10``: ``μ``,
``log τ`` and one coordinate per school.
"""

from __future__ import annotations

import jax.numpy as jnp

from harness.errors import check_choice, check_int
from harness.models import numpyro_models
from harness.models.base import Model
from harness.models.numpyro_adapter import from_numpyro

ESTIMATES = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
STANDARD_ERRORS = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
PARAMETERIZATIONS = {
    "centered": numpyro_models.eight_schools_centered,
    "noncentered": numpyro_models.eight_schools_noncentered,
}


def build(cfg, dtype) -> Model:
    """Builds the eight-schools model from its config group."""
    parameterization = check_choice(
        cfg.get("parameterization"),
        "model.parameterization",
        tuple(PARAMETERIZATIONS),
    )
    seed = check_int(cfg.get("seed", 0), "model.seed", 0)
    data = {
        "estimates": jnp.asarray(ESTIMATES, dtype=jnp.float64),
        "standard_errors": jnp.asarray(STANDARD_ERRORS, dtype=jnp.float64),
    }
    model = from_numpyro(
        PARAMETERIZATIONS[parameterization],
        data,
        name="eight_schools",
        reference="init" if parameterization == "centered" else "mode",
        seed=seed,
    )
    return model.astype(dtype)
