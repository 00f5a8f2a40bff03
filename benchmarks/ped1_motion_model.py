"""The learned motion model on UCSD Ped1 (the evaluation set), measured as
ped2_motion_model.py measures it on Ped2 (development): the same object finder, motion
vectors, mixture and rows, frozen before the first Ped1 figure (docs/benchmarks.md says in
which commit). The H.264 files as shipped, flow at the frames' own 238 x 158.

    python benchmarks/ped1_motion_model.py      # minutes on 2 cores

Written to benchmarks/results/ped1-motion-model.json. Skips where Ped1 is absent.
"""
from __future__ import annotations

import sys

from ped1 import DATASET, DEFAULT_DATA  # beside this script
from ped2_motion_model import measure
from ped2_rows import object_benchmark_options
from rows import PROJECT, dataset_missing, write_results

RESULTS = PROJECT / "benchmarks" / "results" / "ped1-motion-model.json"


def main() -> int:
    args, settings = object_benchmark_options(__doc__, RESULTS)
    if dataset_missing(DEFAULT_DATA, "UCSD Ped1", "training", "testing"):
        return 0
    write_results(args.results, measure(DEFAULT_DATA, DATASET, "ped1", settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
