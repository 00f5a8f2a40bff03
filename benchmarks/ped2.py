"""The UCSD Ped2 benchmark: training-free floors, the co-memory network, the thesis's
ablations, MNAD as its code trains it, and the short runs that made the choices.

    python benchmarks/ped2.py --rows floor_squash floor_native    # seconds
    python benchmarks/ped2.py --rows comemory --seed 1            # one training run
    python benchmarks/ped2.py --table                             # every row
    python benchmarks/ped2.py --readme-table                      # the README's table

Every row trains on ../shared/data/ped2/training (as MP4 files for ``MP4_ROWS``) with part
of it held out: three whole videos (the ``*_videos`` rows) or the last tenth of each video,
resuming a killed run. Training ends by choosing the score settings on the validation set
made from those held-out frames (``comemory.train.choice``); the floors choose theirs on the
same set. Only then is the test split scored, once, by ``evaluate``. Each row is
written into benchmarks/results/ped2.json as it finishes: config, seed, git commit,
machine, training time, the validation report, and every test AUC (micro and macro; raw,
causal- and centred-smoothed; per-video max, min-max and training-calibrated) plus pixel
AUROC. Skips with a message where the dataset is absent.
"""
from __future__ import annotations

import json
import sys

from comemory.cpu import use_threads
from ped2_rows import (  # beside this script
    ALERTS,
    DEFAULT_DATA,
    README_ROWS,
    RESULTS,
    ROWS,
    ped2_missing,
    ped2_row,
)
from rows import PROJECT, markdown_tables, print_table, row_parser, save_row, summary_line

def main() -> int:
    parser = row_parser(__doc__, list(ROWS), DEFAULT_DATA, PROJECT / "runs" / "ped2",
                        list(ROWS))
    parser.add_argument("--validate-only", action="store_true", help="train and validate, "
                        "but do not score the test split yet: for choices that must be made "
                        "before any test figure of the rows compared is seen")
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of the "
                        "row's (recorded in the row): what fits a GPU lease")
    args = parser.parse_args()
    use_threads(args.threads)
    if args.table or args.readme_table:
        if args.readme_table:
            print_table(RESULTS, ALERTS, README_ROWS)
        else:  # the tables of docs/benchmarks.md
            print(markdown_tables(json.loads(RESULTS.read_text())))
        return 0
    # either split alone will do for some work: training and validating needs only the
    # training split, scoring a trained row only the test split (benchmarks/ped2_device.py)
    if ped2_missing(args.data, "training", "testing"):
        return 0
    for name in args.rows:
        key = name if args.seed == 0 else f"{name}_seed{args.seed}"
        print(f"== {key}: {ROWS[name][0]}", flush=True)
        row = ped2_row(name, args.seed, args.data, args.runs / key, args.runs / "cache",
                       args.threads, args.validate_only, args.epochs)
        save_row(RESULTS, key, row)
        print(summary_line(key, row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
