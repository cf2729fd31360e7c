"""Convergence: many seeds of stochastic optimization, against NumPyro's SVI.

NumPyro's side runs ``SVI.run`` (Adam, ``Trace_ELBO``) seed after seed, as a
user would, timed over a few seeds and scaled linearly to all of them. The
harness's side is :func:`harness_seconds`: the convergence experiment's runner
on every seed at once.
"""

from __future__ import annotations

import time

import jax
import numpyro.optim
from numpyro.infer import SVI, Trace_ELBO

from harness.bench import common, library
from harness.bench.common import Row

NUM_SEEDS = 256
NUM_STEPS = 1_000
NUM_SAMPLES = 1
LEARNING_RATE = 1e-2
TARGET = 20.0


def numpyro_seconds(model, num_seeds: int, num_steps: int) -> float:
    """Seconds of ``num_seeds`` runs of ``SVI.run``, one after another."""
    data = model.data
    args = (data["features"], data["targets"], data["prior_scale"])
    svi = SVI(
        library.numpyro_model,
        library.numpyro_guide,
        numpyro.optim.Adam(LEARNING_RATE),
        Trace_ELBO(num_particles=NUM_SAMPLES),
    )
    root = jax.random.key(0)
    started = time.perf_counter()
    for seed in range(num_seeds):
        result = svi.run(
            jax.random.fold_in(root, seed), num_steps, *args, progress_bar=False
        )
        jax.block_until_ready(result.params)
    return time.perf_counter() - started


def harness_seconds(model, num_seeds: int, num_steps: int):
    """Warm seconds of the harness's convergence runner on the same problem.

    ``rp`` with Adam and the same step count, draws per step and learning
    rate as NumPyro's side (the cost of a step does not depend on the start),
    recording the ELBO only at the start and the end, so that both sides do
    the optimization and little else. Returns
    ``(seconds, None)``, or ``(None, reason)`` when the runner is missing.
    """
    try:
        from harness import app, convergence, optimizers
    except ImportError as error:
        return None, f"convergence experiment unavailable ({error})"
    cfg = app.compose_config(
        [
            "experiment=convergence",
            "model=logistic",
            "estimators=[rp]",
            f"num_seeds={num_seeds}",
            f"chunk_size={num_seeds}",
            f"num_samples={NUM_SAMPLES}",
            f"optim.steps={num_steps}",
            f"optim.learning_rate={LEARNING_RATE}",
            f"eval_every={num_steps}",
            "precision=float32",
        ]
    )
    settings = optimizers.convergence_settings(cfg)
    convergence.run(model, settings)  # compiles
    started = time.perf_counter()
    convergence.run(model, settings)
    return time.perf_counter() - started, None


def run(quick: bool) -> list[Row]:
    model = common.logistic()
    timed = 2 if quick else 8
    numpyro_total = numpyro_seconds(model, timed, NUM_STEPS) * NUM_SEEDS / timed
    harness, reason = harness_seconds(model, NUM_SEEDS, NUM_STEPS)
    what = (
        f"logistic, {NUM_SEEDS} seeds × {NUM_STEPS} steps, Adam, S={NUM_SAMPLES}; "
        f"SVI.run timed over {timed} seeds and scaled linearly"
    )
    if harness is None:
        return [
            Row(
                "convergence",
                "NumPyro SVI seed after seed / harness",
                float("nan"),
                "×",
                f"≥ {TARGET:g}",
                "not run",
                f"not run: {reason}; NumPyro side "
                f"measured at {numpyro_total:.1f} s ({what})",
            ),
        ]
    ratio = numpyro_total / harness
    return [
        Row(
            "convergence",
            "NumPyro SVI seed after seed / harness",
            ratio,
            "×",
            f"≥ {TARGET:g}",
            common.check(ratio, at_least=TARGET),
            what,
        ),
    ]
