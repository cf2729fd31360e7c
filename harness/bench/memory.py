"""A million seeds at d = 1000 within a memory budget, in a child process.

The job runs through the app (``python -m harness``) with ``memory_budget``
set and a chunk size cap above the seed count, so that the budget alone sets
the chunk. Peak resident memory is read from the kernel's accounting of that
child (``wait4``). A second child runs two seeds of the same job, to measure
what the process holds before any chunk (JAX, XLA, the libraries, the model).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from harness import records
from harness.bench.common import Row
from harness.config import parse_bytes

BUDGET = "2GiB"


def _child(num_seeds: int, out: str, cache: str) -> tuple[int, float, dict]:
    """Peak RSS in bytes, wall seconds and the record's first row."""
    command = [
        sys.executable,
        "-m",
        "harness",
        f"num_seeds={num_seeds}",
        "model.dim=1000",
        "num_samples=1",
        "estimators=[rp]",
        f"memory_budget={BUDGET}",
        f"chunk_size={max(num_seeds, 2)}",
        f"compilation_cache_dir={cache}",
        f"hydra.run.dir={out}",
    ]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {child.returncode}")
    table, _ = records.read_record(os.path.join(out, records.RECORD_NAME))
    return usage.ru_maxrss * 1024, wall, table.iloc[0].to_dict()


def run(quick: bool) -> list[Row]:
    num_seeds = 100_000 if quick else 1_000_000
    budget = parse_bytes(BUDGET, "memory_budget")
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        base_rss, _, _ = _child(2, os.path.join(tmp, "base"), cache)
        peak_rss, wall, row = _child(num_seeds, os.path.join(tmp, "full"), cache)
    chunk = int(row["chunk_size_used"])
    grown = peak_rss - base_rss
    what = (
        f"{num_seeds:,} seeds, d=1000, S=1, rp, float32; budget {BUDGET}; chunk "
        f"{chunk:,} seeds set by the budget; {row['compute_seconds']:.0f} s compute, "
        f"{wall:.0f} s wall"
    )
    gib = 2**30
    return [
        Row(
            "memory",
            "peak RSS growth over a 2-seed run / budget",
            grown / budget,
            "ratio",
            "≤ 1",
            "yes" if grown <= budget else "no",
            f"{what}; peak RSS {peak_rss / gib:.2f} GiB, of which "
            f"{base_rss / gib:.2f} GiB held by the 2-seed run",
        ),
        Row(
            "memory",
            "peak RSS / budget",
            peak_rss / budget,
            "ratio",
            "n/a",
            "n/a",
            "the whole process, libraries included",
        ),
    ]
