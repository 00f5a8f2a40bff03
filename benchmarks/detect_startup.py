"""How long `comemory detect` takes from the command to its first scored frame, and to
`comemory --version`: what a user waits for before anything happens.

    python benchmarks/detect_startup.py --checkpoint runs/demo/run/checkpoint.pt \\
        --source runs/demo/data/testing/frames/01

Runs each command as a new process (as a user types it), REPEATS times, alternating, and
takes the time until scores.jsonl holds its first scored row (detect) or the process
ends (--version). Writes benchmarks/results/detect-startup.json with the machine. Run it
alone: another heavy job on the cores lengthens every start-up.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from comemory.bench import machine
from rows import write_results  # beside this script

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results" / "detect-startup.json"
REPEATS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--source", type=Path, required=True, help="a video or frame folder")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = [sys.executable, "-m", "comemory.cli"]
    version, first_frame = [], []
    for _ in range(args.repeats):
        version.append(_until_exit([*command, "--version"]))
        first_frame.append(_until_first_score(command, args.checkpoint, args.source))
    result = {"machine": machine(), "checkpoint": str(args.checkpoint),
              "source": str(args.source), "repeats": args.repeats,
              "version_seconds": version, "first_scored_frame_seconds": first_frame,
              "version_median": statistics.median(version),
              "first_scored_frame_median": statistics.median(first_frame)}
    write_results(args.out, result)
    print(f"--version {result['version_median']:.2f} s, detect to its first scored frame "
          f"{result['first_scored_frame_median']:.2f} s (medians of {args.repeats}); "
          f"written to {args.out}")
    return 0


def _until_exit(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def _until_first_score(command: list[str], checkpoint: Path, source: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        process = subprocess.Popen([*command, "detect", str(source), "--checkpoint",
                                    str(checkpoint), "--out", out, "--no-video"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = Path(out) / source.stem / "scores.jsonl"
        try:
            while True:
                lines = rows.read_text().splitlines(keepends=True) if rows.exists() else []
                if any(json.loads(line)["score"] is not None
                       for line in lines if line.endswith("\n")):  # whole rows only
                    return time.perf_counter() - started
                if process.poll() is not None:
                    raise SystemExit(f"detect ended (status {process.returncode}) before "
                                     "scoring a frame")
                time.sleep(0.01)
        finally:
            process.kill()
            process.wait()


if __name__ == "__main__":
    sys.exit(main())
