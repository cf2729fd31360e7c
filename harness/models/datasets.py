"""Real data sets that ship inside installed packages; nothing is downloaded.

Each loader returns float64 features and targets. Features are standardized to
zero mean and unit variance over the whole data set.
"""

from __future__ import annotations

import numpy as np

from harness.errors import ConfigError, check_choice


def _breast_cancer():
    """Wisconsin diagnostic breast cancer: 569 rows, 30 features, binary target.

    Bundled with scikit-learn (``sklearn.datasets.load_breast_cancer``); from
    the UCI Machine Learning Repository [street1993].
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data, data.target.astype(np.float64)


def _diabetes():
    """Diabetes progression: 442 rows, 10 features, real-valued target.

    Bundled with scikit-learn (``sklearn.datasets.load_diabetes``) [efron2004].
    """
    from sklearn.datasets import load_diabetes

    data = load_diabetes()
    return data.data, data.target.astype(np.float64)


DATASETS = {"breast_cancer": _breast_cancer, "diabetes": _diabetes}
CLASSIFICATION = ("breast_cancer",)


def load(name: str, num_data, seed: int, *, key: str = "model.dataset"):
    """Loads ``name``, standardizes features, and takes a seeded subsample.

    Args:
      name: a key of :data:`DATASETS`.
      num_data: rows to keep (``None`` keeps all), drawn without replacement.
      seed: seed of the subsample.
      key: the config key, for error messages.

    Returns:
      ``(features, targets)`` as float64 arrays.
    """
    check_choice(name, key, tuple(DATASETS))
    features, targets = DATASETS[name]()
    total = features.shape[0]
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    if num_data is None:
        return features, targets
    if isinstance(num_data, bool) or not isinstance(num_data, int) or num_data < 1:
        raise ConfigError(
            f"model.num_data={num_data!r} is not allowed: expected null (all rows) "
            f"or an integer from 1 to {total}"
        )
    if num_data > total:
        raise ConfigError(
            f"model.num_data={num_data} is not allowed: the {name} data set has "
            f"{total} rows; expected null (all rows) or an integer from 1 to {total}"
        )
    rows = np.sort(np.random.default_rng(seed).choice(total, num_data, replace=False))
    return features[rows], targets[rows]
