"""The command-line app: ``python -m harness`` (also the ``harness`` script).

Each Hydra job validates its whole config first, then runs one experiment and
writes one record (``record.parquet``) into its output directory.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
import jax
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from harness import convergence, optimizers, records, theory_check, variance
from harness.config import EXPERIMENTS, run_settings
from harness.errors import ConfigError, check_choice
from harness.models import build_model

log = logging.getLogger("harness")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def _variance_job(container: dict):
    settings = run_settings(container, variance.VARIANCE_ESTIMATORS)
    model = build_model(container["model"], settings.dtype)
    return settings, model, lambda: variance.run(model, settings, progress=True)


def _convergence_job(container: dict):
    settings = optimizers.convergence_settings(container)
    model = build_model(container["model"], settings.run.dtype)
    optim = settings.optim
    log.info(
        "optimizer %s (learning rate %g, %s schedule), %d steps, ELBO every %d",
        optim.name,
        optim.learning_rate,
        optim.schedule,
        optim.steps,
        settings.eval_every,
    )
    work = lambda: convergence.run(model, settings, progress=True).table  # noqa: E731
    return settings.run, model, work


def compose_config(overrides=()) -> dict:
    """The config of ``python -m harness *overrides`` as a plain dict.

    For callers without the command line, e.g. a benchmark::

        cfg = compose_config(["experiment=convergence", "model=logistic"])
        settings = optimizers.convergence_settings(cfg)
        model = build_model(cfg["model"], settings.run.dtype)
        convergence.run(model, settings)
    """
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def _theory_check_job(container: dict):
    settings = run_settings(container, variance.VARIANCE_ESTIMATORS)
    path = theory_check.path_settings(container.get("theory_check"))
    model = build_model(container["model"], settings.dtype)
    return (
        settings,
        model,
        lambda: theory_check.run(model, settings, path, progress=True),
    )


JOBS = {
    "variance": _variance_job,
    "convergence": _convergence_job,
    "theory_check": _theory_check_job,
}


MEMORY_ENV = {
    "preallocate": "XLA_PYTHON_CLIENT_PREALLOCATE",
    "fraction": "XLA_PYTHON_CLIENT_MEM_FRACTION",
}


def configure_device_memory(cfg: dict) -> None:
    """Sets JAX's accelerator-memory variables from ``device_memory``.

    They take effect only if JAX has not yet started a backend in this process,
    which is the case at the start of every job a launcher runs in a fresh
    process (joblib, submitit). Variables already in the environment win, so a
    launcher's ``env`` or ``setup`` can override them. They do nothing on CPU.
    """
    settings = cfg or {}
    preallocate = settings.get("preallocate")
    if preallocate is not None:
        if not isinstance(preallocate, bool):
            raise ConfigError(
                f"device_memory.preallocate={preallocate!r} is not allowed: "
                "expected true, false or null"
            )
        os.environ.setdefault(MEMORY_ENV["preallocate"], str(preallocate).lower())
    fraction = settings.get("fraction")
    if fraction is not None:
        if isinstance(fraction, bool) or not (
            isinstance(fraction, (int, float)) and 0 < fraction <= 1
        ):
            raise ConfigError(
                f"device_memory.fraction={fraction!r} is not allowed: expected "
                "null or a number in (0, 1]"
            )
        os.environ.setdefault(MEMORY_ENV["fraction"], f"{float(fraction):g}")


def configure_compilation_cache(cache_dir) -> str | None:
    """Turns on JAX's persistent compilation cache in ``cache_dir`` (``None``: off).

    Every program is cached, however small or quick to compile, so that jobs in
    later processes (a launcher's workers, the next sweep) skip XLA's compile.
    """
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, str) or not cache_dir.strip():
        raise ConfigError(
            f"compilation_cache_dir={cache_dir!r} is not allowed: expected a "
            "directory path or null (no persistent cache)"
        )
    path = str(Path(cache_dir).expanduser().resolve())
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise ConfigError(
            f"compilation_cache_dir={cache_dir!r} is not allowed: {path} cannot be "
            "created or written; expected a writable directory path or null"
        )
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def run_job(cfg: DictConfig, output_dir: str | Path) -> Path:
    """Validates ``cfg``, runs its experiment and writes the record.

    Returns the record's path.
    """
    # JAX reports each accelerator plugin it does not find at INFO level.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    container = OmegaConf.to_container(cfg, resolve=True)
    configure_device_memory(container.get("device_memory"))
    jax.config.update("jax_enable_x64", True)
    experiment = check_choice(container.get("experiment"), "experiment", EXPERIMENTS)
    configure_compilation_cache(container.get("compilation_cache_dir"))
    settings, model, work = JOBS[experiment](container)

    device = jax.devices()[0]
    log.info(
        "start %s: model=%s d=%d estimators=%s S=%d seeds=%d precision=%s on %s "
        "(jax %s)",
        experiment,
        model.name,
        model.dim,
        ",".join(settings.estimators),
        settings.num_samples,
        settings.num_seeds,
        settings.precision,
        device.platform,
        jax.__version__,
    )
    started = time.perf_counter()
    table = work()
    wall = time.perf_counter() - started

    meta = records.provenance(settings.seed)
    flat = records.flatten(container)
    # The model's own name (a custom builder's, a NumPyro model's label)
    # rather than the config group that built it.
    flat["model.name"] = model.name
    for key, value in {**flat, **meta}.items():
        if key not in table.columns:
            table[key] = value
    table["experiment"] = experiment
    table["wall_seconds"] = wall
    path = Path(output_dir) / records.RECORD_NAME
    records.write_record(
        path,
        table,
        {"config": container, "provenance": meta, "experiment": experiment},
    )
    log.info("done in %.1f s: %s", wall, path)
    return path


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    run_job(cfg, HydraConfig.get().runtime.output_dir)


def main() -> None:
    """Entry point of ``python -m harness`` and the ``harness`` script.

    A bad setting ends the run with exit status 2 and one line on stderr that
    names the setting, the value given and what is allowed.
    """
    # Let exceptions reach this frame instead of Hydra's own report, so that a
    # bad setting prints one line rather than a trimmed traceback.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _hydra_main()
    except (ConfigError, HydraException) as error:
        print(f"harness: error: {error}", file=sys.stderr)
        sys.exit(2)
