"""Seeds sharded across local devices give the numbers of one device.

Each seed keeps its key (``fold_in(root, i)``) and the float64 reductions run
in one order whatever the device count. The quadratic model's pathwise estimate is
then the same bit for bit. Other per-seed reductions (``log h``'s dot
products, logistic regression's sums over rows) may be vectorized differently
by XLA's CPU backend inside a partitioned program, which moves the last bits
of a float32 estimate; in float64 they agree to 1e-12.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from harness import estimators, variance
    from harness.config import VariationalSettings
    from harness.models import build_model

    name, names, precision = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    dtype = jnp.float32 if precision == "float32" else jnp.float64
    if name == "quadratic":
        cfg = dict(name="quadratic", dim=7, curvature=2.0, condition_number=5.0,
                   rotate=True, seed=0, log_density_offset=0.0)
    else:
        cfg = dict(name="logistic", dataset="breast_cancer", num_data=60,
                   prior_scale=1.0, seed=0)
    model = build_model(cfg, dtype)
    point = VariationalSettings("log_scale", "analytic", 0.3, 0.5)
    params = variance.evaluation_point(model, point)
    built = [estimators.make_estimator(n) for n in names]
    moments = variance.simulate(model, built, params, num_samples=3,
                                num_seeds=203, chunk_size=40, seed=11)
    print(json.dumps({"devices": jax.local_device_count(),
                      "moments": [jnp.asarray(m).tolist() for m in moments]}))
    """
)


def _run(name: str, devices: int, names: str, precision: str) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, name, names, precision],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_four_devices_match_one_bit_for_bit():
    one = _run("quadratic", 1, "rp", "float32")
    four = _run("quadratic", 4, "rp", "float32")
    assert (one["devices"], four["devices"]) == (1, 4)
    # count, mean, m2, m3, m4: bit for bit.
    for single, sharded in zip(one["moments"], four["moments"], strict=True):
        np.testing.assert_array_equal(np.asarray(sharded), np.asarray(single))
    # 203 seeds in chunks of 40 (a multiple of 4): every seed counted once.
    assert np.all(np.asarray(four["moments"][0]) == 203)


def test_four_devices_match_one_every_estimator():
    names = "rp,stl,sf,sf_loo"
    one = _run("logistic", 1, names, "float64")
    four = _run("logistic", 4, names, "float64")
    for single, sharded in zip(one["moments"], four["moments"], strict=True):
        np.testing.assert_allclose(
            np.asarray(sharded), np.asarray(single), rtol=1e-12, atol=1e-12
        )
