"""NumPyro definitions of the harness's real models.

Each function is a NumPyro model whose keyword arguments are its data; wrap it
with :func:`harness.models.numpyro_adapter.from_numpyro`, or name it on the
command line as ``model=numpyro model.target=harness.models.numpyro_models:NAME``.
"""

from __future__ import annotations

import numpyro
import numpyro.distributions as dist


def logistic_regression(features, targets=None, prior_scale=1.0):
    """``β ~ N(0, τ² I)``, ``y_n ~ Bernoulli(sigmoid(x_nᵀβ))``.

    ``features`` is the design matrix, intercept column included; the single
    site ``beta`` has the layout of :mod:`harness.models.logistic`.
    """
    dim = features.shape[-1]
    beta = numpyro.sample(
        "beta", dist.Normal(0.0, prior_scale).expand([dim]).to_event(1)
    )
    numpyro.sample("y", dist.Bernoulli(logits=features @ beta), obs=targets)


def eight_schools_centered(estimates, standard_errors):
    """``μ ~ N(0, 5²)``, ``τ ~ HalfCauchy(5)``, ``θ_j ~ N(μ, τ²)``,
    ``y_j ~ N(θ_j, s_j²)`` [rubin1981, gelman2013].
    """
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("schools", estimates.shape[0]):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("y", dist.Normal(theta, standard_errors), obs=estimates)


def eight_schools_noncentered(estimates, standard_errors):
    """The same model with ``θ_j = μ + τ η_j``, ``η_j ~ N(0, 1)``
    [papaspiliopoulos2007].
    """
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("schools", estimates.shape[0]):
        eta = numpyro.sample("eta", dist.Normal(0.0, 1.0))
        theta = mu + tau * eta
        numpyro.sample("y", dist.Normal(theta, standard_errors), obs=estimates)


def binomial_random_intercepts(
    successes, trials, group, covariate, num_groups, prior_scale=2.5
):
    """A logistic mixed model with one random intercept per group.

    ``logit p_n = α_{g(n)} + β x_n`` with ``α_g = μ + τ z_g`` (non-centred),
    ``z_g ~ N(0, 1)``, ``μ, β ~ N(0, prior_scale²)``, ``τ ~ HalfNormal(1)``,
    and ``successes_n ~ Binomial(trials_n, p_n)``.
    """
    mu = numpyro.sample("mu", dist.Normal(0.0, prior_scale))
    beta = numpyro.sample("beta", dist.Normal(0.0, prior_scale))
    tau = numpyro.sample("tau", dist.HalfNormal(1.0))
    with numpyro.plate("groups", num_groups):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    logits = mu + tau * z[group] + beta * covariate
    with numpyro.plate("cells", successes.shape[0]):
        numpyro.sample("successes", dist.Binomial(trials, logits=logits), obs=successes)
