"""Models defined outside the harness: ``model=custom model.target=pkg.mod:build``.

``model.target`` names a builder ``(cfg, dtype) -> Model`` in any importable
module (the working directory is importable when the harness runs as
``python -m harness``). The whole ``model`` group is passed as ``cfg``, so a
custom model can read settings of its own from the command line, such as
``+model.curvature=3``. The builder validates them and raises
:class:`harness.errors.ConfigError` for bad values.
"""

from __future__ import annotations

from harness.errors import ConfigError
from harness.models.base import Model
from harness.models.numpyro_adapter import import_target


def build(cfg, dtype) -> Model:
    """Imports ``model.target`` and builds the model with it."""
    target = cfg.get("target")
    builder = import_target(target)
    try:
        model = builder(cfg, dtype)
    except TypeError as error:
        raise ConfigError(
            f"model.target={target!r} is not allowed: calling it as "
            f"builder(cfg, dtype) failed ({error}); expected a builder "
            "(cfg, dtype) -> harness.models.Model"
        ) from None
    if not isinstance(model, Model):
        raise ConfigError(
            f"model.target={cfg.get('target')!r} is not allowed: it returned "
            f"{type(model).__name__}; expected a builder (cfg, dtype) -> "
            "harness.models.Model"
        )
    return model.astype(dtype)
