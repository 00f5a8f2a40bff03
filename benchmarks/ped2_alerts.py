"""Does the alert threshold keep its promise on Ped2? Tried as a new user would: each Ped2
test video written as an MP4, then `comemory detect` on it with a trained checkpoint.

    python benchmarks/ped2_alerts.py --row comemory     # the checkpoint of runs/ped2/comemory
    python benchmarks/ped2_alerts.py --row comemory --adapt-from-held-out   # adaptation on
    python benchmarks/ped2_alerts.py --row comemory --cross-fit 4   # threshold cross-fitted

Counts, over the test videos, the share of normal frames flagged (the promise:
alert.false_alarm_rate of held-out normal training frames, 0.01 by default) and the share
of anomalous frames flagged, and the events. Writes benchmarks/results/ped2-alerts.json
(one entry per row). Skips with a message where the dataset is absent.

With --adapt-from-held-out, per-camera adaptation is on (detect --adapt-from): the row's
held-out training videos, never trained on, written as MP4s as the test videos are, are
the footage an operator marks normal; the entry is ROW_adapted. With --cross-fit K, a copy
of the row's run (ROW_crossfit) gets its threshold from every training video by
`comemory calibrate --folds K` (K trainings) first; the entry is ROW_crossfit. A row
trained on Ped2 as MP4 files (``MP4_ROWS``: as a camera's user has footage) cross-fits on
those files too, so its threshold never comes from frame files that `detect` does not read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ped2_rows import (  # beside this script
    DEFAULT_DATA,
    MP4_ROWS,
    PROJECT,
    SAME_TRAINING,
    mp4_dataset,
    ped2_missing,
    write_mp4s,
)
from rows import alert_variant, alerts_through_detect, save_alerts, trained_by_row

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-alerts.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--row", default="comemory", help="run folder under --runs")
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "ped2")
    parser.add_argument("--adapt-from-held-out", action="store_true",
                        help="per-camera adaptation from the row's held-out training videos")
    parser.add_argument("--cross-fit", type=int, metavar="K",
                        help="first set the threshold of a copy of the row by K-fold "
                        "cross-fitting (comemory calibrate)")
    args = parser.parse_args()
    if ped2_missing(args.data, "testing", "training"):
        return 0
    videos = write_mp4s(args.data, args.runs / "ped2-mp4")
    training = ({video: path for video, (path, _) in
                 write_mp4s(args.data, args.runs / "ped2-mp4-training", "training").items()}
                if args.adapt_from_held_out else None)
    data, dataset = args.data, "frames"
    if (trained_by_row(args.row, SAME_TRAINING) or args.row).split("_seed")[0] in MP4_ROWS:
        data, dataset = mp4_dataset(args.data, args.runs / "ped2-mp4-dataset"), "videos"
    checkpoint, adapt_from, name = alert_variant(args.runs, args.row, data, dataset,
                                                 args.cross_fit, training, SAME_TRAINING)
    result = alerts_through_detect(checkpoint, videos, args.runs / name / "detect", adapt_from)
    save_alerts(RESULTS, name, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
