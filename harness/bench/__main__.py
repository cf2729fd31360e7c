"""``python -m harness.bench [--only floor,loop] [--quick] [--out results]``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from pathlib import Path

import jax

from harness.bench import FAMILIES, common

MODULES = {
    "floor": "floor",
    "loop": "loop",
    "numpyro": "library",
    "convergence": "convergence",
    "sweep": "sweep",
    "memory": "memory",
}
log = logging.getLogger("harness.bench")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench")
    parser.add_argument(
        "--only",
        default=",".join(FAMILIES),
        help=f"comma-separated families, from {', '.join(FAMILIES)}",
    )
    parser.add_argument("--quick", action="store_true", help="fewer seeds and steps")
    parser.add_argument("--out", default="results", help="directory of the report")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in FAMILIES]
    if unknown or not chosen:
        parser.error(
            f"--only={args.only!r} is not allowed: expected names from "
            f"{', '.join(FAMILIES)}"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    jax.config.update("jax_enable_x64", True)
    info = common.machine()
    log.info("benchmarks %s on %s", ",".join(chosen), info)
    rows = []
    for name in chosen:
        started = time.perf_counter()
        module = importlib.import_module(f"harness.bench.{MODULES[name]}")
        family_rows = module.run(args.quick)
        rows += family_rows
        log.info(
            "%s: %d figures in %.0f s",
            name,
            len(family_rows),
            time.perf_counter() - started,
        )
        for row in family_rows:
            log.info(
                "  %s: %.3g %s (target %s, met %s)",
                row.case,
                row.value,
                row.unit,
                row.target,
                row.met,
            )
    common.write_report(rows, Path(args.out), info, args.quick)
    log.info(
        "wrote %s and %s", Path(args.out) / "bench.csv", Path(args.out) / "bench.md"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
