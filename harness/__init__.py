"""Monte Carlo gradient estimators for variational inference, and a harness
that measures their variance and convergence.

See the README for the command line; the modules are:

- :mod:`harness.variational`: the mean-field Gaussian family;
- :mod:`harness.estimators`: the ELBO-gradient estimators;
- :mod:`harness.theory`: closed-form variances under a quadratic expansion;
- :mod:`harness.stats`: numerically stable moments with standard errors;
- :mod:`harness.models`: targets and their registry;
- :mod:`harness.variance`: the vectorized variance experiment;
- :mod:`harness.convergence`: the vectorized convergence experiment, with its
  settings and optimizers (:mod:`harness.optimizers`) and the ELBO and
  distances it records (:mod:`harness.elbo`);
- :mod:`harness.reduce`: tables and figures from the records of many jobs
  (:mod:`harness.convergence_report` for the convergence experiment).
- :mod:`harness.theory_check`: closed forms against measurement along an
  optimization path;
- :mod:`harness.reduce`: tables and figures from the records of many jobs.
"""

__version__ = "0.1.0"
