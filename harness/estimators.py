"""Monte Carlo estimators of the ELBO gradient for a mean-field Gaussian.

The ELBO is ``L(λ) = E_q[log h(θ)] + H[q]``. Each estimator averages ``S``
single-draw estimates at ``θ_s = μ + σ ∘ ε_s`` and is unbiased for ``∇_λ L``
[mohamed2020]:

``rp``
  Reparameterization (pathwise): ``∇_λ log h(μ + σ ∘ ε_s)`` plus ``∇_λ H[q]``
  exactly (``entropy="analytic"``) or the pathwise gradient of
  ``−log q_λ(θ_s)`` (``"sampled"``). Under a Gaussian ``q`` the two entropy
  terms are the same number, because ``log q_λ(μ + σ ∘ ε)`` depends on ``λ``
  only through ``−Σ log σ_i``.
``stl``
  Sticking the landing [roeder2017]: ``∇_λ [log h(θ_s) − log q_λ̄(θ_s)]`` with
  the gradient stopped in the density's parameters ``λ̄`` but not in ``θ_s``.
  Per draw this adds ``ε_s/σ`` times ``∂θ/∂λ`` to the pathwise term.
``sf``
  Score function (REINFORCE) [williams1992]: ``∇_λ log q_λ(θ_s) · w_s`` with
  the bracket ``w_s = log h(θ_s) − log q_λ(θ_s)`` held fixed
  (``"sampled"``), or ``w_s = log h(θ_s)`` plus ``∇_λ H[q]`` exactly
  (``"analytic"``).
``sf_loo``
  ``sf`` with a leave-one-out baseline [kool2019]: each bracket minus the mean
  of the other ``S − 1`` brackets, which keeps it unbiased. Needs ``S ≥ 2``.
``sf_cv``
  ``sf`` with the score itself as a control variate, one coefficient per
  component, fitted on the other ``S − 1`` draws (see
  :func:`score_function_cv`). Needs ``S ≥ 3``.
``sf_ma``
  ``sf`` with a moving-average baseline carried in the estimator state from
  one optimization step to the next (see :func:`score_function_ma`); it is
  stateful, so it belongs to the convergence experiment only.

Estimators are pure functions of the parameters and one :class:`Evaluation`
(the noise, and ``log h`` and its gradient at the draws), so that many
estimators can share one set of draws and one set of model evaluations, as in
a common-random-numbers comparison. They carry an optional state (the
``init``/``estimate`` pair, as in optax) for estimators that need one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from harness import variational
from harness.variational import MeanFieldParams

ENTROPY_MODES = ("analytic", "sampled")
LogJoint = Callable[[Array], Array]
EstimatorState = Any


class Evaluation(NamedTuple):
    """What the estimators need from one set of ``S`` draws.

    Attributes:
      noise: ``ε``, shape ``(S, d)``.
      log_joint: ``log h(θ_s)``, shape ``(S,)``, or ``None`` when not needed.
      log_joint_grad: ``∇ log h(θ_s)``, shape ``(S, d)``, or ``None``.
    """

    noise: Array
    log_joint: Array | None
    log_joint_grad: Array | None


class GradientEstimator(NamedTuple):
    """A configured ELBO-gradient estimator.

    Attributes:
      name: registry name, for example ``"rp"``.
      parameterization: ``"log_scale"`` or ``"scale"``.
      entropy: ``"analytic"`` or ``"sampled"``.
      needs_value: whether :attr:`estimate` reads ``log h(θ_s)``.
      needs_gradient: whether it reads ``∇ log h(θ_s)``.
      min_samples: the smallest ``S`` it is defined for.
      stateless: whether its state is empty, so that the variance of one step
        is well defined without an optimization history.
      init: ``params -> state``.
      estimate: ``(params, evaluation, state) -> (gradient, state)``.
    """

    name: str
    parameterization: str
    entropy: str
    needs_value: bool
    needs_gradient: bool
    min_samples: int
    stateless: bool
    init: Callable[[MeanFieldParams], EstimatorState]
    estimate: Callable[
        [MeanFieldParams, Evaluation, EstimatorState],
        tuple[MeanFieldParams, EstimatorState],
    ]


def draw_noise(rng_key: Array, num_samples: int, dim: int, dtype=jnp.float32) -> Array:
    """Standard normal ``ε`` of shape ``(num_samples, dim)``."""
    return jax.random.normal(rng_key, (num_samples, dim), dtype=dtype)


def evaluate(
    log_joint: LogJoint,
    params: MeanFieldParams,
    noise: Array,
    parameterization: str,
    *,
    value: bool = True,
    gradient: bool = True,
) -> Evaluation:
    """Evaluates ``log h`` (and its gradient) once at every draw."""
    theta = variational.sample(params, noise, parameterization)
    if gradient:
        values, grads = jax.vmap(jax.value_and_grad(log_joint))(theta)
        return Evaluation(noise, values if value else None, grads)
    if value:
        return Evaluation(noise, jax.vmap(log_joint)(theta), None)
    return Evaluation(noise, None, None)


def _pathwise(params, noise, direction, parameterization) -> MeanFieldParams:
    """Average of ``direction_s · ∂θ_s/∂λ`` over draws."""
    factor = variational.path_scale_factor(params, noise, parameterization)
    return MeanFieldParams(
        jnp.mean(direction, axis=0), jnp.mean(direction * factor, axis=0)
    )


def _score_weighted(params, noise, weights, parameterization) -> MeanFieldParams:
    """Average of ``∇_λ log q_λ(θ_s) · weights_s`` over draws."""
    score = variational.score(params, noise, parameterization)
    weights = weights[:, None]
    return MeanFieldParams(
        jnp.mean(score.mean * weights, axis=0), jnp.mean(score.scale * weights, axis=0)
    )


def _add(a: MeanFieldParams, b: MeanFieldParams) -> MeanFieldParams:
    return MeanFieldParams(a.mean + b.mean, a.scale + b.scale)


def sampled_entropy_path_gradient(
    params: MeanFieldParams, noise: Array, parameterization: str
) -> MeanFieldParams:
    """Pathwise gradient of ``−mean_s log q_λ(μ + σ ∘ ε_s)`` by autodiff."""

    def negative_log_q(p):
        theta = variational.sample(p, noise, parameterization)
        log_q = jax.vmap(variational.log_density, in_axes=(None, 0, None))
        return -jnp.mean(log_q(p, theta, parameterization))

    return jax.grad(negative_log_q)(params)


def _bracket(params, evaluation, parameterization, entropy) -> Array:
    """``log h(θ_s)``, minus ``log q_λ(θ_s)`` when the entropy is sampled."""
    if entropy == "analytic":
        return evaluation.log_joint
    std = variational.std_dev(params, parameterization)
    dim = evaluation.noise.shape[-1]
    log_q = (
        -0.5 * jnp.sum(evaluation.noise**2, axis=-1)
        - jnp.sum(jnp.log(std))
        - 0.5 * dim * variational.LOG_2PI
    )
    return evaluation.log_joint - log_q


def _exact_entropy_term(params, parameterization, entropy) -> MeanFieldParams:
    if entropy == "analytic":
        return variational.entropy_gradient(params, parameterization)
    zeros = jnp.zeros_like(params.mean)
    return MeanFieldParams(zeros, jnp.zeros_like(params.scale))


def _no_state(params):
    del params
    return ()


def reparameterization(parameterization: str, entropy: str) -> GradientEstimator:
    """The pathwise estimator ``rp``."""

    def estimate(params, evaluation, state):
        grad = _pathwise(
            params, evaluation.noise, evaluation.log_joint_grad, parameterization
        )
        if entropy == "analytic":
            entropy_term = variational.entropy_gradient(params, parameterization)
        else:
            entropy_term = sampled_entropy_path_gradient(
                params, evaluation.noise, parameterization
            )
        return _add(grad, entropy_term), state

    return GradientEstimator(
        "rp", parameterization, entropy, False, True, 1, True, _no_state, estimate
    )


def sticking_the_landing(parameterization: str, entropy: str) -> GradientEstimator:
    """The pathwise estimator with the score term dropped, ``stl``."""

    def estimate(params, evaluation, state):
        std = variational.std_dev(params, parameterization)
        # ∇_θ [log h(θ) − log q_λ̄(θ)] = ∇ log h(θ) + (θ − μ)/σ² = ∇ log h + ε/σ.
        direction = evaluation.log_joint_grad + evaluation.noise / std
        return _pathwise(params, evaluation.noise, direction, parameterization), state

    return GradientEstimator(
        "stl", parameterization, entropy, False, True, 1, True, _no_state, estimate
    )


def score_function(parameterization: str, entropy: str) -> GradientEstimator:
    """The score-function estimator ``sf``."""

    def estimate(params, evaluation, state):
        weights = _bracket(params, evaluation, parameterization, entropy)
        grad = _score_weighted(params, evaluation.noise, weights, parameterization)
        return _add(grad, _exact_entropy_term(params, parameterization, entropy)), state

    return GradientEstimator(
        "sf", parameterization, entropy, True, False, 1, True, _no_state, estimate
    )


def leave_one_out_baseline(brackets: Array) -> Array:
    """For each draw, the mean of the other ``S − 1`` brackets."""
    num_samples = brackets.shape[0]
    return (jnp.sum(brackets) - brackets) / (num_samples - 1)


def score_function_loo(parameterization: str, entropy: str) -> GradientEstimator:
    """The score-function estimator with a leave-one-out baseline, ``sf_loo``."""

    def estimate(params, evaluation, state):
        brackets = _bracket(params, evaluation, parameterization, entropy)
        weights = brackets - leave_one_out_baseline(brackets)
        grad = _score_weighted(params, evaluation.noise, weights, parameterization)
        return _add(grad, _exact_entropy_term(params, parameterization, entropy)), state

    return GradientEstimator(
        "sf_loo", parameterization, entropy, True, False, 2, True, _no_state, estimate
    )


def leave_one_out_coefficient(scores: Array, brackets: Array) -> Array:
    """Per draw and component, ``Σ_{t≠s} w_t u_t² / Σ_{t≠s} u_t²``.

    ``scores`` has shape ``(S, d)`` and ``brackets`` shape ``(S,)``. The
    coefficient for draw ``s`` reads only the other draws; it is set to zero
    where their scores all vanish.
    """
    squares = scores**2
    weighted = brackets[:, None] * squares
    numerator = jnp.sum(weighted, axis=0) - weighted
    denominator = jnp.sum(squares, axis=0) - squares
    safe = jnp.where(denominator > 0, denominator, 1.0)
    return jnp.where(denominator > 0, numerator / safe, 0.0)


def _score_with_control_variate(score_block, brackets):
    coefficient = leave_one_out_coefficient(score_block, brackets)
    return jnp.mean(score_block * (brackets[:, None] - coefficient), axis=0)


def score_function_cv(parameterization: str, entropy: str) -> GradientEstimator:
    """The score-function estimator with a fitted control variate, ``sf_cv``.

    Per component ``j`` with score ``u_sj = ∂_j log q_λ(θ_s)`` and bracket
    ``w_s``, the estimate is

        ĝ_j = 1/S Σ_s u_sj (w_s − c_j^{(−s)}),
        c_j^{(−s)} = Σ_{t≠s} w_t u_tj² / Σ_{t≠s} u_tj²,

    plus the exact entropy term when the entropy is analytic. The control
    variate is the score itself, whose mean is zero, and ``c_j^{(−s)}`` is the
    least-squares coefficient of ``u_j w`` on ``u_j`` (through the origin,
    since ``E[u_j] = 0`` is known), fitted on the other ``S − 1`` draws. Being
    independent of draw ``s``, it leaves the estimate unbiased:
    ``E[u_sj c_j^{(−s)}] = E[u_sj] E[c_j^{(−s)}] = 0`` [mohamed2020, sec. 7].
    The coefficient is a per-component baseline, an average of the other
    brackets weighted by ``u_tj²``. With ``S = 2`` it is the other draw's
    bracket and the estimator is ``sf_loo``, so ``sf_cv`` asks for ``S ≥ 3``.
    """

    def estimate(params, evaluation, state):
        brackets = _bracket(params, evaluation, parameterization, entropy)
        score = variational.score(params, evaluation.noise, parameterization)
        grad = MeanFieldParams(
            _score_with_control_variate(score.mean, brackets),
            _score_with_control_variate(score.scale, brackets),
        )
        return _add(grad, _exact_entropy_term(params, parameterization, entropy)), state

    return GradientEstimator(
        "sf_cv", parameterization, entropy, True, False, 3, True, _no_state, estimate
    )


class MovingAverageState(NamedTuple):
    """State of ``sf_ma``: an exponential moving average and its total weight.

    Attributes:
      average: ``m_t = β m_{t−1} + (1 − β) w̄_t``, with ``m_0 = 0``.
      weight: ``v_t = β v_{t−1} + (1 − β) = 1 − β^t``, with ``v_0 = 0``.
    """

    average: Array
    weight: Array


def moving_average_baseline(state: MovingAverageState) -> Array:
    """``b = m / v``, the bias-corrected average of past brackets; 0 before any."""
    safe = jnp.where(state.weight > 0, state.weight, 1.0)
    return jnp.where(state.weight > 0, state.average / safe, 0.0)


def score_function_ma(
    parameterization: str, entropy: str, baseline_decay: float = 0.9
) -> GradientEstimator:
    """The score-function estimator with a moving-average baseline, ``sf_ma``.

    At step ``t`` the estimate is ``1/S Σ_s ∇_λ log q_λ(θ_s) (w_s − b_{t−1})``
    (plus the exact entropy term when the entropy is analytic), where
    ``b_{t−1} = m_{t−1}/v_{t−1}`` is the bias-corrected exponential moving
    average of the mean brackets ``w̄`` of the earlier steps, with decay
    ``β = baseline_decay`` (0 at the first step); see
    :class:`MovingAverageState`. The baseline depends only on earlier draws,
    so each step is unbiased given the past [williams1992]. The state then
    absorbs this step's ``w̄_t``. Because the estimate depends on the
    optimization history, its one-step variance is not defined by ``λ``
    alone: the estimator is not ``stateless``.
    """
    if not 0.0 <= baseline_decay < 1.0:
        raise ValueError(
            f"baseline_decay={baseline_decay!r} is not allowed: expected a number "
            "in [0, 1)"
        )

    def init(params):
        zero = jnp.zeros((), dtype=params.mean.dtype)
        return MovingAverageState(zero, zero)

    def estimate(params, evaluation, state):
        brackets = _bracket(params, evaluation, parameterization, entropy)
        weights = brackets - moving_average_baseline(state)
        grad = _score_weighted(params, evaluation.noise, weights, parameterization)
        grad = _add(grad, _exact_entropy_term(params, parameterization, entropy))
        decay = jnp.asarray(baseline_decay, dtype=state.average.dtype)
        new_state = MovingAverageState(
            decay * state.average + (1.0 - decay) * jnp.mean(brackets),
            decay * state.weight + (1.0 - decay),
        )
        return grad, new_state

    return GradientEstimator(
        "sf_ma", parameterization, entropy, True, False, 1, False, init, estimate
    )


ESTIMATORS: dict[str, Callable[..., GradientEstimator]] = {
    "rp": reparameterization,
    "stl": sticking_the_landing,
    "sf": score_function,
    "sf_loo": score_function_loo,
    "sf_cv": score_function_cv,
    "sf_ma": score_function_ma,
}


def make_estimator(
    name: str, parameterization: str = "log_scale", entropy: str = "analytic", **options
) -> GradientEstimator:
    """Builds a registered estimator, validating its static settings."""
    if name not in ESTIMATORS:
        raise ValueError(
            f"estimators: {name!r} is not a known estimator; "
            f"allowed: {', '.join(ESTIMATORS)}"
        )
    if parameterization not in variational.PARAMETERIZATIONS:
        raise ValueError(
            f"variational.parameterization={parameterization!r} is not allowed; "
            f"allowed: {', '.join(variational.PARAMETERIZATIONS)}"
        )
    if entropy not in ENTROPY_MODES:
        raise ValueError(
            f"variational.entropy={entropy!r} is not allowed; "
            f"allowed: {', '.join(ENTROPY_MODES)}"
        )
    return ESTIMATORS[name](parameterization, entropy, **options)


def estimate_gradient(
    rng_key: Array,
    log_joint: LogJoint,
    params: MeanFieldParams,
    estimator: GradientEstimator,
    num_samples: int,
    state: EstimatorState = None,
) -> tuple[MeanFieldParams, EstimatorState]:
    """Draws ``num_samples`` normals and returns one estimate and the new state.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from harness import estimators, variational
      >>> params = variational.from_mean_and_std(jnp.zeros(3), jnp.ones(3), "log_scale")
      >>> rp = estimators.make_estimator("rp")
      >>> log_joint = lambda theta: -0.5 * jnp.sum(theta**2)
      >>> grad, _ = estimators.estimate_gradient(
      ...     jax.random.key(0), log_joint, params, rp, num_samples=8)
      >>> grad.mean.shape
      (3,)
    """
    if num_samples < estimator.min_samples:
        raise ValueError(
            f"num_samples={num_samples} is not allowed for {estimator.name}: "
            f"it needs at least {estimator.min_samples}"
        )
    if state is None:
        state = estimator.init(params)
    noise = draw_noise(rng_key, num_samples, params.mean.shape[-1], params.mean.dtype)
    evaluation = evaluate(
        log_joint,
        params,
        noise,
        estimator.parameterization,
        value=estimator.needs_value,
        gradient=estimator.needs_gradient,
    )
    return estimator.estimate(params, evaluation, state)
