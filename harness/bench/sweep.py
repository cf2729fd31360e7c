"""A 27-job sweep (curvature × S × dimension) through the app, in one process.

Jobs that differ only in curvature share shapes, so the sweep needs one
compilation of the chunk program per (S, d): nine. The sweep runs twice, each
time in a fresh process with the same persistent compilation cache directory:
first with the cache empty, then with it filled.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
from jax import monitoring

from harness import app, records, variance
from harness.bench.common import Row

CURVATURES = (0.1, 1.0, 10.0)
NUM_SAMPLES = (1, 10, 100)
DIMS = (10, 100, 1000)


_seen = []


def _chunk_compilations() -> int:
    """Compilations of every chunk function the sweep used."""
    return sum(fn._cache_size() for fn in _seen)


def sweep_in_process(cache_dir: str, out_dir: str, num_seeds: int) -> dict:
    """Runs the 27 jobs through :func:`harness.app.run_job`; returns counts."""
    from hydra import compose, initialize_config_dir

    compiles = []
    hits = []
    monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: (
            compiles.append(secs)
            if event == "/jax/core/compile/backend_compile_duration"
            else None
        )
    )
    monitoring.register_event_listener(
        lambda event, **kw: (
            hits.append(1) if event == "/jax/compilation_cache/cache_hits" else None
        )
    )
    original = variance._cached_chunk_fn

    def tracking(*args):
        fn = original(*args)
        if fn not in _seen:
            _seen.append(fn)
        return fn

    variance._cached_chunk_fn = tracking
    started = time.perf_counter()
    with initialize_config_dir(config_dir=app.CONF_DIR, version_base=None):
        for job, (c, s, d) in enumerate(
            itertools.product(CURVATURES, NUM_SAMPLES, DIMS)
        ):
            cfg = compose(
                "config",
                overrides=[
                    f"model.curvature={c}",
                    f"num_samples={s}",
                    f"model.dim={d}",
                    f"num_seeds={num_seeds}",
                    "model.rotate=true",
                    f"compilation_cache_dir={cache_dir}",
                ],
            )
            app.run_job(cfg, Path(out_dir) / str(job))
    wall = time.perf_counter() - started
    tables = [records.read_record(p)[0] for p in records.find_records(out_dir)]
    return {
        "jobs": len(tables),
        "wall": wall,
        "compute": float(sum(t["compute_seconds"].iloc[0] for t in tables)),
        "chunk_compilations": _chunk_compilations(),
        "distinct_shapes": len(NUM_SAMPLES) * len(DIMS),
        "backend_compiles": len(compiles),
        "backend_compile_seconds": float(sum(compiles)),
        "persistent_cache_hits": len(hits),
    }


def _child(num_seeds: int, cache_dir: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.bench.sweep",
                cache_dir,
                out,
                str(num_seeds),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Row]:
    num_seeds = 100 if quick else 500
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = _child(num_seeds, cache_dir)
        warm = _child(num_seeds, cache_dir)
    what = f"27 jobs, {num_seeds} seeds each, 4 estimators, one process"
    rows = []
    for label, result in (("empty cache", cold), ("filled cache", warm)):
        overhead = result["wall"] / result["compute"]
        rows += [
            Row(
                "sweep",
                f"{label}: wall / sum of jobs' compute",
                overhead,
                "ratio",
                "n/a",
                "n/a",
                f"{what}; wall {result['wall']:.1f} s, compute "
                f"{result['compute']:.1f} s (compute includes each shape's first "
                "compile)",
            ),
            Row(
                "sweep",
                f"{label}: chunk-program compilations",
                result["chunk_compilations"],
                "count",
                f"≤ {result['distinct_shapes']} (one per shape)",
                "yes"
                if result["chunk_compilations"] <= result["distinct_shapes"]
                else "no",
                f"all XLA compiles: {result['backend_compiles']} taking "
                f"{result['backend_compile_seconds']:.1f} s; persistent-cache "
                f"hits: {result['persistent_cache_hits']}",
            ),
        ]
    rows.append(
        Row(
            "sweep",
            "empty / filled cache, sweep wall",
            cold["wall"] / warm["wall"],
            "×",
            "n/a",
            "n/a",
            "what the persistent cache saves a later process",
        )
    )
    return rows


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    cache, out, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(sweep_in_process(cache, out, seeds)))
