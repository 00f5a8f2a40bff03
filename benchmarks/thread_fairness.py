"""Do comemory processes share the cores fairly? Real `comemory` processes, side by side.

    python benchmarks/thread_fairness.py            # about 5 minutes on 2 cores

For each setting (OpenMP's wait policy and --threads), measures:
- a `comemory detect` of one 180-frame clip (tiny preset, 360 x 240 MP4, no video output)
  alone, then two of them at once: each one's frames/s against its solo figure;
- a `comemory train` (tiny preset, synthetic scene) alone, then beside a `comemory detect`
  that runs for the whole training: steps/s against the solo figure, and the detect's
  frames/s while they share.
Targets (issue 9): each of two detects keeps >= 40 % of its solo frames/s; a train beside
a detect keeps >= 40 % of its solo steps/s. Rates come from the processes' own clocks
(detect's frames/s, the checkpoint's training seconds), so start-up time is left out.

With --steps it times instead one training step alone (batch 8, fp32, channels_last;
benchmarks/train_speed.py's step) of the `tiny` and `cpu` models under the wait settings
and thread counts, into the same JSON under "steps": what sleeping threads cost alone.

The "spinning" setting is comemory before it chose a wait policy: torch is imported before
comemory, so OpenMP keeps its default of spinning a few milliseconds after each operator.
Writes benchmarks/results/thread_fairness.json; settings not measured in this run keep
their earlier figures there. Run nothing else heavy meanwhile.
"""
from __future__ import annotations

# ruff: noqa: I001  (comemory must be imported before torch)
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import comemory  # noqa: F401  sets the wait policy for this process, before torch loads
import cv2
import numpy as np
import torch
from comemory.bench import machine, synthetic_video
from comemory.checkpoint import load_checkpoint
from comemory.data.synth import SynthSpec, synthesize
from comemory.detect.video_writer import write_video
from rows import write_results  # beside this script

PROJECT = Path(__file__).resolve().parents[1]
CLIP_FRAMES = 180
TRAIN_EPOCHS = 6
SOLO_REPEATS = 3  # the solo detect is short: its median over a few runs
UNSET = {"OMP_WAIT_POLICY": None}  # comemory then sets its default
TWO = ["--threads", "2"]  # one per core on this 2-core machine: detect's default until then
# name -> (environment changes, extra command-line arguments, launch torch before comemory)
SETTINGS = {
    "spinning (before)": (UNSET, TWO, True),
    "short spin, then sleep (GOMP_SPINCOUNT=20000)": (
        {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "20000"}, TWO, False),
    "sleep at once (PASSIVE), 2 threads each": (UNSET, TWO, False),
    "--threads 1 each": (UNSET, ["--threads", "1"], False),
    "defaults: sleep at once, detect 1 thread, tiny preset trains on 1": (UNSET, [], False),
}
TORCH_FIRST = ("import sys, torch; from comemory.cli import main; "
               "sys.exit(main(sys.argv[1:]))")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path,
                        default=PROJECT / "benchmarks" / "results" / "thread_fairness.json")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--steps", action="store_true",
                        help="time one training step alone per setting instead")
    args = parser.parse_args()
    record = json.loads(args.out.read_text()) if args.out.exists() else {"settings": {}}
    record.update(machine=machine(), clip_frames=CLIP_FRAMES, train_epochs=TRAIN_EPOCHS)
    if args.steps:
        record["steps"] = step_times()
        write_results(args.out, record)
        print(json.dumps(record["steps"], indent=1))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        inputs = _inputs(work)
        for name in args.settings:
            print(f"== {name}", flush=True)
            row = measure(name, inputs, work / re.sub(r"\W+", "_", name))
            record["settings"][name] = {**row, "measured": time.strftime("%Y-%m-%d %H:%M")}
            write_results(args.out, record)
            print(json.dumps(row, indent=1), flush=True)
    print(markdown_table(record))
    print(f"written to {args.out}")
    return 0


def _inputs(work: Path) -> dict[str, Path]:
    """The clip, a long video for the detect beside training, the scene and a checkpoint."""
    scene = work / "scene"
    synthesize(scene, SynthSpec(seed=0))
    clip = synthetic_video(work / "clip", CLIP_FRAMES)
    long_clip = _looped(clip, work / "long.mp4", times=40)  # outlasts any training here
    _run(_command("train", [], False) + ["--root", str(scene), "--preset", "tiny", "--set",
                                         "train.epochs=2", "--out", str(work / "model"),
                                         "--cache-dir", str(work / "cache")], {})
    return {"scene": scene, "clip": clip, "long_clip": long_clip,
            "checkpoint": work / "model" / "checkpoint.pt", "cache": work / "cache"}


def measure(name: str, inputs: dict[str, Path], work: Path) -> dict:
    env_changes, extra, torch_first = SETTINGS[name]

    def detect(clip: Path, out: str) -> list[str]:
        return _command("detect", extra, torch_first) + [
            str(clip), "--checkpoint", str(inputs["checkpoint"]), "--no-video",
            "--out", str(work / out)]

    def train(out: str) -> list[str]:
        return _command("train", extra, torch_first) + [
            "--root", str(inputs["scene"]), "--preset", "tiny", "--set",
            f"train.epochs={TRAIN_EPOCHS}", "--out", str(work / out),
            "--cache-dir", str(inputs["cache"])]

    solo_fps = float(np.median([_detect_fps(_run(detect(inputs["clip"], f"solo{i}"),
                                                 env_changes))
                                for i in range(SOLO_REPEATS)]))
    pair = [_start(detect(inputs["clip"], f"pair{i}"), env_changes) for i in range(2)]
    pair_fps = [_detect_fps(_finish(p)) for p in pair]
    _run(train("train_solo"), env_changes)
    solo_steps = _steps_per_second(work / "train_solo")
    beside = _start(detect(inputs["long_clip"], "beside"), env_changes)
    time.sleep(5)  # past its start-up: the detect is scoring when training starts
    rows_before, started = _scored_rows(work / "beside"), time.monotonic()
    _run(train("train_beside"), env_changes)
    detect_fps_beside = (_scored_rows(work / "beside") - rows_before) / (time.monotonic()
                                                                        - started)
    still_running = beside.poll() is None
    beside.terminate()  # SIGTERM: a SIGINT may be ignored by a job started in the background
    beside.communicate()
    shared_steps = _steps_per_second(work / "train_beside")
    return {
        "detect_solo_fps": solo_fps,
        "detect_pair_fps": pair_fps,
        "detect_pair_kept": [fps / solo_fps for fps in pair_fps],
        "train_solo_steps_per_s": solo_steps,
        "train_beside_detect_steps_per_s": shared_steps,
        "train_beside_detect_kept": shared_steps / solo_steps,
        "detect_fps_beside_train": detect_fps_beside,
        "detect_ran_through_training": still_running,
    }


# model name -> (input size, width) as in the presets
STEP_MODELS = {"tiny": (64, 0.125), "cpu": (128, 0.25)}
STEP_SETTINGS = {
    "spinning, 2 threads": (UNSET, 2, True),
    "sleep at once, 2 threads": (UNSET, 2, False),
    "sleep at once, 1 thread": (UNSET, 1, False),
}
STEP_CODE = ("import sys, runpy; {first}import comemory, torch; torch.set_num_threads({threads});"
             " step = runpy.run_path('benchmarks/train_speed.py')['step_seconds'];"
             " print(step({size}, {width}, False, True))")


def step_times() -> dict:
    """Milliseconds per training step, alone, for each model and setting."""
    result = {}
    for model, (size, width) in STEP_MODELS.items():
        for name, (env_changes, threads, torch_first) in STEP_SETTINGS.items():
            code = STEP_CODE.format(first="import torch; " if torch_first else "",
                                    threads=threads, size=size, width=width)
            seconds = float(_run([sys.executable, "-c", code], env_changes).strip())
            result[f"{model}, {name}"] = round(seconds * 1e3, 1)
            print(f"{model}, {name}: {seconds * 1e3:.1f} ms", flush=True)
    return result


def markdown_table(record: dict) -> str:
    lines = ["| setting | detect alone | two detects, each (kept) | train alone | train beside "
             "a detect (kept) | that detect |", "|---|---|---|---|---|---|"]
    for name, row in record["settings"].items():
        pair = " / ".join(f"{fps:.0f} ({kept:.0%})" for fps, kept in
                          zip(row["detect_pair_fps"], row["detect_pair_kept"], strict=True))
        lines.append(f"| {name} | {row['detect_solo_fps']:.0f} frames/s | {pair} | "
                     f"{row['train_solo_steps_per_s']:.2f} steps/s | "
                     f"{row['train_beside_detect_steps_per_s']:.2f} "
                     f"({row['train_beside_detect_kept']:.0%}) | "
                     f"{row['detect_fps_beside_train']:.0f} frames/s |")
    return "\n".join(lines)


def _looped(clip: Path, path: Path, times: int) -> Path:
    """``clip`` played ``times`` times over, as one MP4."""
    capture = cv2.VideoCapture(str(clip))
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    write_video(images * times, path, fps=25.0)
    return path


def _command(subcommand: str, extra: list[str], torch_first: bool) -> list[str]:
    """`comemory SUBCOMMAND EXTRA...`, started with torch imported first if asked."""
    launcher = [sys.executable, "-c", TORCH_FIRST] if torch_first else \
        [sys.executable, "-m", "comemory.cli"]
    return launcher + [subcommand, *extra]


def _environment(changes: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _start(command: list[str], env_changes: dict) -> subprocess.Popen:
    return subprocess.Popen(command, env=_environment(env_changes), cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{process.args} failed ({process.returncode}):\n{err[-2000:]}")
    return out


def _run(command: list[str], env_changes: dict) -> str:
    return _finish(_start(command, env_changes))


def _detect_fps(output: str) -> float:
    match = re.search(r"\(([\d.]+) frames/s\)", output)
    if match is None:
        raise RuntimeError(f"no frames/s in detect's output: {output!r}")
    return float(match.group(1))


def _steps_per_second(run: Path) -> float:
    state = load_checkpoint(run / "checkpoint.pt")
    return state["step"] / state["train_seconds"]


def _scored_rows(folder: Path) -> int:
    return sum(len(path.read_text().splitlines()) - 1 for path in folder.glob("*/scores.csv"))


if __name__ == "__main__":
    torch.set_num_threads(1)  # this process only waits for others
    sys.exit(main())
