"""Does the alert threshold keep its promise on Ped2? Tried as a new user would: each Ped2
test video written as an MP4, then `comemory detect` on it with a trained checkpoint.

    python benchmarks/ped2_alerts.py --row comemory     # the checkpoint of runs/ped2/comemory

Counts, over the test videos, the share of normal frames flagged (the promise:
alert.false_alarm_rate of held-out normal training frames, 0.01 by default) and the share
of anomalous frames flagged, and the events. Writes benchmarks/results/ped2-alerts.json
(one entry per row). Skips with a message where the dataset is absent.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ped2_rows import DEFAULT_DATA, PROJECT, ped2_missing, write_mp4s  # beside this script
from rows import alerts_through_detect, save_alerts

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-alerts.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--row", default="comemory", help="run folder under --runs")
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "ped2")
    args = parser.parse_args()
    if ped2_missing(args.data, "testing"):
        return 0
    checkpoint = args.runs / args.row / "checkpoint.pt"
    videos = write_mp4s(args.data, args.runs / "ped2-mp4")
    result = alerts_through_detect(checkpoint, videos, args.runs / args.row / "detect")
    save_alerts(RESULTS, args.row, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
