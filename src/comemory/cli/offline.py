"""The commands that work on datasets and checkpoints: demo, synth, prepare, train,
validate, calibrate, evaluate, floor, export, bench. Each has ``add_<command>`` (its arguments)
and the function it runs, which imports its work when it starts."""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from comemory import storage
from comemory.config import PRESETS, preset
from comemory.cpu import DETECT_THREADS
from comemory.errors import CheckpointError

if TYPE_CHECKING:
    from comemory.data.model_input import PreparedVideo

from comemory.cli.arguments import (
    add_cache_argument,
    add_config_arguments,
    add_data_arguments,
    add_device_argument,
    add_threads_argument,
    build_config,
    layouts_description,
    non_negative_int,
)


def add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="synthesise a scene, train the tiny preset on it, "
                               "evaluate (about two minutes on 2 cores)")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"),
                      help="folder for the data, the run and the results (default runs/demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene")
    demo.add_argument("--threads", type=non_negative_int, metavar="N",
                      help="CPU threads for PyTorch and OpenCV (default: the tiny preset's 1, "
                      "faster than two for a model this small)")
    demo.set_defaults(run=_demo, on_interrupt="run the same command again: it continues "
                      "the training where it stopped")


def add_synth(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="write a synthetic dataset with labels")
    synth.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    synth.add_argument("--seed", type=int, default=0,
                       help="seed: the same seed writes the same scene")
    synth.set_defaults(run=_synth)


def add_prepare(commands: argparse._SubParsersAction) -> None:
    prepare = commands.add_parser(
        "prepare", help="read and check a dataset, cache its frames and flows",
        description="Read both splits of a dataset in its shipped layout, check frames, labels "
        "and masks, and cache resized frames and flows for the chosen preset. Layouts: "
        + layouts_description(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(prepare)
    add_config_arguments(prepare)
    prepare.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                         help="videos prepared at once (default: all cores)")
    add_threads_argument(prepare)
    prepare.set_defaults(run=_prepare, on_interrupt="run it again: videos already prepared "
                         "are kept in the cache")


def add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train on the training split and calibrate")
    add_data_arguments(train, labels=False)
    train.add_argument("--out", required=True, type=Path, help="run folder for checkpoint and logs")
    add_config_arguments(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_threads_argument(train, "train.threads")
    train.set_defaults(run=_train, on_interrupt="`comemory train --resume` with the same "
                       "options continues the run from its last checkpoint")


def add_validate(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser(
        "validate", help="validation AUC on held-out training frames and pseudo-anomalies",
        description="Measure a trained checkpoint without test labels: the held-out training "
        "frames (train.holdout: each video's tail or whole videos; train.holdout_fraction) and "
        "pseudo-anomalies made from them "
        "(speed x2, a foreign object at a cyclist's pace, a dropped object), run through the whole "
        "pipeline. Writes validation.json (AUC per kind, pooled; training-calibrated, micro) "
        "and stores it in the checkpoint. `train` already does this once it ends.")
    validate.add_argument("--checkpoint", required=True, type=Path,
                          help="a finished run's checkpoint.pt")
    add_data_arguments(validate, labels=False)
    validate.add_argument("--out", type=Path, help="folder for validation.json (default: the "
                          "checkpoint's folder)")
    validate.add_argument("--choose", action="store_true", help="choose the score settings "
                          "(patch, formula, lambda, smoothing) and the threshold again on "
                          "validation, and store them in the checkpoint")
    validate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="score.KEY=VALUE", help="with --choose: change a score "
                          "setting first, e.g. score.zscore_motion_weight=1 (repeatable)")
    add_cache_argument(validate)
    add_threads_argument(validate)
    add_device_argument(validate)
    validate.set_defaults(run=_validate, on_interrupt="run it again: the checkpoint is only "
                          "rewritten (atomically) once validation ends")


def add_calibrate(commands: argparse._SubParsersAction) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="set a checkpoint's alert threshold again from every training "
        "video, by cross-fitting",
        description="Train --folds models, each on all training videos but one fold, score "
        "each fold's videos with the model that did not train on them, and set the "
        "checkpoint's threshold from those videos: the one that keeps alert.false_alarm_rate "
        "on a new video with alert.confidence (9 videos back 90 %%). Costs --folds trainings; "
        "the fold runs go to folds/ beside the checkpoint, and a killed run resumes.")
    calibrate.add_argument("--checkpoint", required=True, type=Path,
                           help="a finished run's checkpoint.pt (rewritten atomically)")
    add_data_arguments(calibrate, labels=False)
    calibrate.add_argument("--folds", type=int, default=4,
                           help="folds, so models to train (default 4; at least 2)")
    calibrate.add_argument("--false-alarm-rate", type=float,
                           help="the rate to back (default: the run's alert.false_alarm_rate)")
    calibrate.add_argument("--confidence", type=float, help="how sure the promise on a new "
                           "video must be (default: the run's alert.confidence, 0.9)")
    add_cache_argument(calibrate)
    add_threads_argument(calibrate, "train.threads of the fold runs")
    calibrate.set_defaults(run=_calibrate, on_interrupt="run the same command again: the "
                           "fold runs continue where they stopped")


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="score the test split and measure AUC")
    evaluate.add_argument("--checkpoint", required=True, type=Path,
                          help="a finished run's checkpoint.pt")
    add_data_arguments(evaluate)
    evaluate.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    evaluate.add_argument("--flow", choices=["dis", "farneback", "flo"],
                          help="flow extractor (must match the checkpoint's)")
    evaluate.add_argument("--flow-preset", default="medium", help="with --flow dis: its preset")
    evaluate.add_argument("--flo-dir", type=Path,
                          help="with --flow flo: <dir>/testing/<video>/*.flo")
    evaluate.add_argument("--fps", type=float, help="the test footage's frames per second: "
                          "the alert report then counts false events per hour")
    add_cache_argument(evaluate)
    add_threads_argument(evaluate)
    add_device_argument(evaluate)
    evaluate.set_defaults(run=_evaluate, on_interrupt="run it again: prepared videos are "
                          "kept in the cache")


def add_floor(commands: argparse._SubParsersAction) -> None:
    floor = commands.add_parser("floor", help="measure the training-free flow-magnitude floor")
    add_data_arguments(floor)
    floor.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    add_config_arguments(floor)
    add_threads_argument(floor)
    floor.set_defaults(run=_floor, on_interrupt="run it again: prepared videos are kept in "
                       "the cache")


def add_export(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="write the model as ONNX or TorchScript")
    export.add_argument("--checkpoint", required=True, type=Path,
                        help="a finished run's checkpoint.pt")
    export.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                        help="file format (default onnx)")
    export.add_argument("--out", type=Path, help="file to write (default: beside the "
                        "checkpoint, model.onnx or model.pt)")
    export.set_defaults(run=_export)


def add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="measure detection speed, stage by stage")
    bench.add_argument("--presets", nargs="+", choices=sorted(PRESETS),
                       default=["tiny", "cpu", "objects", "paper"], help="presets to measure "
                       "(default: all four)")
    bench.add_argument("--frames", type=int, default=150, help="frames per variant")
    bench.add_argument("--seconds", type=float, default=60.0,
                       help="at most this long per variant")
    bench.add_argument("--source", type=Path, help="a video to read (default: a synthetic "
                       "360x240 scene)")
    bench.add_argument("--out", type=Path, default=Path("runs/bench/detect_speed.json"),
                       help="JSON file for the figures (default runs/bench/detect_speed.json)")
    add_threads_argument(bench, default=DETECT_THREADS)
    bench.set_defaults(run=_bench)


def _synth(args: argparse.Namespace) -> None:
    from comemory.data.synth import SynthSpec, synthesize

    summary = synthesize(args.out, SynthSpec(seed=args.seed))
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


def _prepare(args: argparse.Namespace) -> None:
    from comemory.data.cache import prepare_split, read_split

    config = build_config(args.preset, args.config, args.overrides)
    splits = {split: read_split(args.root, split, args.labels, args.dataset)  # checks all
              for split in ("training", "testing")}                          # inputs first
    for split, videos in splits.items():
        prepared = prepare_split(videos, split, config, args.cache_dir, workers=args.workers)
        print(_describe_split(split, prepared))


def _describe_split(split: str, videos: list[PreparedVideo]) -> str:
    """One line: videos, frames, anomalous frames, masks and original resolutions."""
    frames = sum(len(v.frames) for v in videos)
    line = f"{split}: {len(videos)} videos, {frames} frames"
    if split == "testing":
        labelled = [v for v in videos if v.labels is not None]
        anomalous = sum(int(v.labels.sum()) for v in labelled)
        line += (f", {anomalous} anomalous" if labelled else ", no labels")
        line += f", pixel masks for {sum(v.masks is not None for v in videos)} videos"
    sizes = sorted({v.resolution for v in videos})
    return line + ", resolution " + ", ".join(f"{w}x{h}" for h, w in sizes)


def _train(args: argparse.Namespace) -> None:
    if args.resume and not (args.out / "checkpoint.pt").is_file():
        # a typo in --out would otherwise start afresh and leave the run meant to go on
        raise CheckpointError(f"{args.out / 'checkpoint.pt'}: no run to resume here; check "
                              "--out, or leave out --resume to start a new run")
    overrides = args.overrides + ([f"train.threads={args.threads}"]
                                  if args.threads is not None else [])
    config = build_config(args.preset, args.config, overrides)
    from comemory.train.loop import train

    checkpoint = train(config, args.root, args.out, args.cache_dir, resume=args.resume,
                       dataset=args.dataset)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, the main process speaks
        print(f"trained and calibrated: {checkpoint}")


def _validate(args: argparse.Namespace) -> None:
    from comemory.train.validate import validate_checkpoint

    report = validate_checkpoint(args.checkpoint, args.root, args.out, args.cache_dir,
                                 args.dataset, choose=args.choose, overrides=args.overrides,
                                 device=args.device)
    print(format_validation(report))


def format_validation(report: dict) -> str:
    """Validation AUC per kind: raw, causal and centred, and the settings they used."""
    kinds = list(report["auc"]["raw"])
    lines = [f"{'smoothing':<9} " + " ".join(f"{k:>15}" for k in kinds)]
    for smoothing, aucs in report["auc"].items():
        lines.append(f"{smoothing:<9} " + " ".join(f"{aucs[k]:>15.3f}" for k in kinds))
    settings = ", ".join(f"{k} {v}" for k, v in report["chosen"].items())
    return "\n".join(lines + [f"settings: {settings} ({report['chosen_by']})",
                              f"frames: {report['frames']}"])


def _calibrate(args: argparse.Namespace) -> None:
    from comemory.train.crossfit import cross_fit

    result = cross_fit(args.checkpoint, args.root, args.folds, args.dataset, args.cache_dir,
                       args.false_alarm_rate, args.confidence, args.threads)
    print(f"{args.checkpoint}: {result['statement']} (fold runs in {result['folds']})")


def _evaluate(args: argparse.Namespace) -> None:
    from comemory.config import FlowConfig
    from comemory.evaluate.evaluation import evaluate
    from comemory.evaluate.metrics import metrics_text

    flow = None
    if args.flow:
        flow = FlowConfig(method=args.flow, preset=args.flow_preset,
                          flo_dir=str(args.flo_dir or ""))
    metrics = evaluate(args.checkpoint, args.root, args.out, args.cache_dir, args.labels, flow,
                       args.dataset, args.device, args.fps)
    print(metrics_text(metrics))
    print(f"results in {args.out}: metrics.json, scores.csv and plots")


def _floor(args: argparse.Namespace) -> None:
    from comemory.evaluate.evaluation import evaluate_floor
    from comemory.evaluate.metrics import metrics_text

    config = build_config(args.preset, args.config, args.overrides)
    metrics = evaluate_floor(config, args.root, args.out, args.cache_dir, args.labels,
                             args.dataset)
    print(metrics_text(metrics))


def _export(args: argparse.Namespace) -> None:
    from comemory.export import export_model

    default = "model.onnx" if args.format == "onnx" else "model.pt"
    out = export_model(args.checkpoint, args.out or args.checkpoint.parent / default,
                       args.format)
    print(f"wrote {out}")


def _bench(args: argparse.Namespace) -> None:
    from comemory.bench import bench, markdown_table

    results = bench(args.presets, args.frames, args.source, args.seconds)
    storage.write_text(args.out, json.dumps(results, indent=2))
    print(markdown_table(results))
    print(f"written to {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from comemory.data.synth import SynthSpec, synthesize
    from comemory.evaluate.evaluation import evaluate
    from comemory.evaluate.metrics import metrics_text
    from comemory.train.loop import train

    started = time.perf_counter()
    data, run, cache = args.out / "data", args.out / "run", args.out / "cache"
    if not (data / "frame_labels_synth.npy").exists():
        synthesize(data, SynthSpec(seed=args.seed))
    config = preset("tiny")
    if args.threads is not None:
        config.train.threads = args.threads
    checkpoint = train(config, data, run, cache, resume=True)
    metrics = evaluate(checkpoint, data, args.out / "eval", cache)
    print(metrics_text(metrics))
    print(f"demo finished in {time.perf_counter() - started:.0f} s; plots and scores in "
          f"{args.out / 'eval'}")
