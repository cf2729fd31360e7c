"""Benchmarks of the harness against what a user would otherwise write or use.

``python -m harness.bench`` (or ``make bench``) runs them and writes
``results/bench.csv`` and ``results/bench.md``. One module per family:

- :mod:`harness.bench.floor`: the least array work a variance job needs;
- :mod:`harness.bench.loop`: a jitted single-seed estimator in a Python loop;
- :mod:`harness.bench.library`: NumPyro's ``Trace_ELBO`` gradient;
- :mod:`harness.bench.convergence`: NumPyro's SVI, seed after seed;
- :mod:`harness.bench.sweep`: a 27-job sweep, compilations and overhead;
- :mod:`harness.bench.memory`: a million seeds within a memory budget.
"""

FAMILIES = ("floor", "loop", "numpyro", "convergence", "sweep", "memory")
