"""comemory: video anomaly detection with the Appearance-Motion Co-memory Network.

Train on footage of normal activity, then score every new frame by how badly the model
predicts its motion and appearance. Commands: demo, synth, prepare, train, evaluate, floor,
detect, serve, finetune, export, bench. `comemory COMMAND --help` describes each.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from comemory import __version__, storage
from comemory.alerts import EVENT_GAP, MIN_EVENT_FRAMES
from comemory.config import PRESETS, Config, apply_overrides, load_yaml, preset
from comemory.cpu import DETECT_THREADS, use_threads
from comemory.data.layouts import dataset_names, layouts_help
from comemory.errors import CheckpointError, ComemoryError, Interrupted
from comemory.progress import counted

if TYPE_CHECKING:
    from comemory.data.prepared import PreparedVideo

# Each command imports what it runs (PyTorch, OpenCV, scikit-learn) when it starts, inside
# main's handlers: `--version` and `--help` answer at once, and a Ctrl-C while those load
# is one line and exit status 130 like any other.


def main(argv: list[str] | None = None) -> int:
    on_interrupt = "nothing partial was kept"
    try:
        args = _parser().parse_args(argv)
        on_interrupt = args.on_interrupt
        logging.basicConfig(format="comemory: %(message)s", level=logging.WARNING)
        if getattr(args, "threads", None) is not None:
            use_threads(args.threads)
        args.run(args)
    except Interrupted as stopped:
        print(f"comemory: {stopped}", file=sys.stderr)
        return 130
    except ComemoryError as error:
        print(f"comemory: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"comemory: interrupted; {on_interrupt}", file=sys.stderr)
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comemory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"comemory {__version__}",
                        help="print the version and exit")
    parser.set_defaults(on_interrupt="nothing partial was kept")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="synthesise a scene, train the tiny preset on it, "
                               "evaluate (about two minutes on 2 cores)")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"),
                      help="folder for the data, the run and the results (default runs/demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene")
    demo.add_argument("--threads", type=_non_negative_int, metavar="N",
                      help="CPU threads for PyTorch and OpenCV (default: the tiny preset's 1, "
                      "faster than two for a model this small)")
    demo.set_defaults(run=_demo, on_interrupt="run the same command again: it continues "
                      "the training where it stopped")

    synth = commands.add_parser("synth", help="write a synthetic dataset with labels")
    synth.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    synth.add_argument("--seed", type=int, default=0,
                       help="seed: the same seed writes the same scene")
    synth.set_defaults(run=_synth)

    prepare = commands.add_parser(
        "prepare", help="read and check a dataset, cache its frames and flows",
        description="Read both splits of a dataset in its shipped layout, check frames, labels "
        "and masks, and cache resized frames and flows for the chosen preset. Layouts: "
        + _layouts_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_data_arguments(prepare)
    _add_config_arguments(prepare)
    prepare.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                         help="videos prepared at once (default: all cores)")
    _add_threads_argument(prepare)
    prepare.set_defaults(run=_prepare, on_interrupt="run it again: videos already prepared "
                         "are kept in the cache")

    train = commands.add_parser("train", help="train on the training split and calibrate")
    _add_data_arguments(train, labels=False)
    train.add_argument("--out", required=True, type=Path, help="run folder for checkpoint and logs")
    _add_config_arguments(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    _add_threads_argument(train, "train.threads")
    train.set_defaults(run=_train, on_interrupt="`comemory train --resume` with the same "
                       "options continues the run from its last checkpoint")

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
    _add_data_arguments(validate, labels=False)
    validate.add_argument("--out", type=Path, help="folder for validation.json (default: the "
                          "checkpoint's folder)")
    validate.add_argument("--choose", action="store_true", help="choose the score settings "
                          "(patch, formula, lambda, smoothing) and the threshold again on "
                          "validation, and store them in the checkpoint")
    validate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="score.KEY=VALUE", help="with --choose: change a score "
                          "setting first, e.g. score.zscore_motion_weight=1 (repeatable)")
    validate.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                          "(default $COMEMORY_CACHE or ~/.cache/comemory)")
    _add_threads_argument(validate)
    _add_device_argument(validate)
    validate.set_defaults(run=_validate, on_interrupt="run it again: the checkpoint is only "
                          "rewritten (atomically) once validation ends")

    evaluate = commands.add_parser("evaluate", help="score the test split and measure AUC")
    evaluate.add_argument("--checkpoint", required=True, type=Path,
                          help="a finished run's checkpoint.pt")
    _add_data_arguments(evaluate)
    evaluate.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    evaluate.add_argument("--flow", choices=["dis", "farneback", "flo"],
                          help="flow extractor (must match the checkpoint's)")
    evaluate.add_argument("--flow-preset", default="medium", help="with --flow dis: its preset")
    evaluate.add_argument("--flo-dir", type=Path,
                          help="with --flow flo: <dir>/testing/<video>/*.flo")
    evaluate.add_argument("--fps", type=float, help="the test footage's frames per second: "
                          "the alert report then counts false events per hour")
    evaluate.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                          "(default $COMEMORY_CACHE or ~/.cache/comemory)")
    _add_threads_argument(evaluate)
    _add_device_argument(evaluate)
    evaluate.set_defaults(run=_evaluate, on_interrupt="run it again: prepared videos are "
                          "kept in the cache")

    floor = commands.add_parser("floor", help="measure the training-free flow-magnitude floor")
    _add_data_arguments(floor)
    floor.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    _add_config_arguments(floor)
    _add_threads_argument(floor)
    floor.set_defaults(run=_floor, on_interrupt="run it again: prepared videos are kept in "
                       "the cache")

    detect = commands.add_parser(
        "detect", help="score a video, folder, camera or stream; write alerts and pictures",
        description="Score SOURCE frame by frame as it is read (causal; training-calibrated "
        "scores), group anomalous frames into events, and write per video: scores.csv and "
        "scores.jsonl (as frames come), events.json, annotated.mp4 and scores.png.")
    detect.add_argument("source", help="a video file, a folder of frames, a folder of videos, "
                        "a camera index (0) or a stream URL (rtsp://, http://)")
    detect.add_argument("--checkpoint", required=True, type=Path,
                        help="a finished run's checkpoint.pt")
    detect.add_argument("--out", type=Path, help="output folder (default runs/detect)",
                        default=Path("runs/detect"))
    alarm = detect.add_mutually_exclusive_group()
    alarm.add_argument("--threshold", type=float, help="alert above this score (default: "
                       "the checkpoint's, set on held-out normal frames)")
    alarm.add_argument("--false-alarm-rate", type=float, help="set the threshold for this "
                       "rate on the checkpoint's held-out normal frames, e.g. 0.001")
    detect.add_argument("--min-event-frames", type=int, default=MIN_EVENT_FRAMES,
                        help=f"drop events shorter than this (default {MIN_EVENT_FRAMES})")
    detect.add_argument("--event-gap", type=int, default=EVENT_GAP, help="join events "
                        f"separated by up to this many normal frames (default {EVENT_GAP})")
    detect.add_argument("--no-video", dest="video", action="store_false",
                        help="skip annotated.mp4")
    detect.add_argument("--engine", choices=["torch", "onnx"], default="torch",
                        help="run the network in PyTorch (default) or ONNX Runtime")
    detect.add_argument("--onnx", type=Path, help="with --engine onnx: the exported model")
    detect.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                        help="torch engine: bf16 autocast for the network (faster on CPUs "
                        "with native bf16, far slower without), auto (bf16 where native); "
                        "default fp32")
    detect.add_argument("--channels-last", action="store_true",
                        help="torch engine: NHWC convolutions")
    detect.add_argument("--reconnect-seconds", type=float, default=30.0,
                        help="how long to keep reopening a dropped camera or stream")
    _add_threads_argument(detect, default=DETECT_THREADS)
    detect.set_defaults(run=_detect)

    export = commands.add_parser("export", help="write the model as ONNX or TorchScript")
    export.add_argument("--checkpoint", required=True, type=Path,
                        help="a finished run's checkpoint.pt")
    export.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                        help="file format (default onnx)")
    export.add_argument("--out", type=Path, help="file to write (default: beside the "
                        "checkpoint, model.onnx or model.pt)")
    export.set_defaults(run=_export)

    serve = commands.add_parser(
        "serve", help="watch several cameras in one process; events in a database; a page "
        "to review them", description="Read every camera, score their frames with one model "
        "per checkpoint (cameras batched together), keep events, thumbnails and clips in "
        "the data folder, and serve the page (docs/serve.md). Ctrl-C stops it cleanly.")
    serve.add_argument("--config", type=Path, help="cameras YAML (docs/serve.md)")
    serve.add_argument("--source", action="append", default=[], metavar="[NAME=]SOURCE",
                       help="a camera without a YAML file (repeatable): file, folder, "
                       "camera index or URL; needs --checkpoint")
    serve.add_argument("--checkpoint", type=Path, help="the checkpoint for --source cameras")
    serve.add_argument("--data", type=Path, help="where events.db, clips and thumbnails go "
                       "(default runs/serve, or the YAML's)")
    serve.add_argument("--database", help="events database: a postgresql:// URL a team "
                       "shares (pip install 'comemory[postgres]') or a SQLite file "
                       "(default DATA/events.db)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; another needs a "
                       "token: token_file in the YAML or COMEMORY_TOKEN)")
    serve.add_argument("--port", type=int, help="port of the page (default 8765)")
    serve.add_argument("--false-alarm-rate", type=float,
                       help="for --source cameras: threshold at this rate on held-out normal "
                       "frames (default: the checkpoint's own threshold)")
    _add_threads_argument(serve)  # one process scores every camera: all cores by default
    serve.set_defaults(run=_serve, on_interrupt="stopped")

    finetune = commands.add_parser(
        "finetune", help="fine-tune on clips reviewed as false alarms in `serve`, calibrate "
        "again", description="Train a checkpoint further on its training videos plus the "
        "clips marked 'false alarm' in a serve events database, set the score and threshold "
        "again, and report how many of those false alarms still alarm. Writes a new run "
        "folder; the old checkpoint is kept.")
    finetune.add_argument("--checkpoint", required=True, type=Path,
                          help="the checkpoint `serve` used")
    _add_data_arguments(finetune, labels=False)  # its training data
    finetune.add_argument("--reviews", required=True,
                          help="serve's events database: its events.db (clips in "
                          "media/clips beside it) or a postgresql:// URL (with --clips)")
    finetune.add_argument("--clips", type=Path, help="the folder of the reviewed clips "
                          "(default: media/clips beside events.db; needed with a URL)")
    finetune.add_argument("--out", required=True, type=Path, help="new run folder")
    finetune.add_argument("--epochs", type=int, default=1, help="epochs (default 1)")
    finetune.add_argument("--lr", type=float, help="learning rate (default: a tenth of "
                          "the run's train.lr)")
    finetune.add_argument("--review-share", type=float, default=0.25, help="share of each "
                          "epoch's samples taken from the reviewed clips (default 0.25)")
    finetune.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                          "(default $COMEMORY_CACHE or ~/.cache/comemory)")
    _add_threads_argument(finetune)
    finetune.set_defaults(run=_finetune, on_interrupt="nothing was written; run it again")

    bench = commands.add_parser("bench", help="measure detection speed, stage by stage")
    bench.add_argument("--presets", nargs="+", choices=sorted(PRESETS),
                       default=["tiny", "cpu", "paper"], help="presets to measure "
                       "(default: all three)")
    bench.add_argument("--frames", type=int, default=150, help="frames per variant")
    bench.add_argument("--seconds", type=float, default=60.0,
                       help="at most this long per variant")
    bench.add_argument("--source", type=Path, help="a video to read (default: a synthetic "
                       "360x240 scene)")
    bench.add_argument("--out", type=Path, default=Path("runs/bench/detect_speed.json"),
                       help="JSON file for the figures (default runs/bench/detect_speed.json)")
    _add_threads_argument(bench, default=DETECT_THREADS)
    bench.set_defaults(run=_bench)
    return parser


def _add_threads_argument(parser: argparse.ArgumentParser, config_key: str = "",
                          default: int | None = None) -> None:
    also = f" (sets {config_key})" if config_key else ""
    if default is None:
        text = ("CPU threads for PyTorch and OpenCV; default one per core. On a machine "
                "shared with other heavy work, give each process its share" + also)
    else:  # detection: one frame at a time is too little work to share out between cores
        text = (f"CPU threads for PyTorch and OpenCV (default {default}: as fast as two for "
                "the tiny and cpu presets and fair to other processes; the paper preset "
                "runs twice as fast on 2)")
    parser.add_argument("--threads", type=_non_negative_int, metavar="N", default=default,
                        help=text)


def _add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="where the network runs: auto (a GPU if PyTorch sees one, else "
                        "the CPU; default), cpu, cuda or cuda:N")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _add_data_arguments(parser: argparse.ArgumentParser, labels: bool = True) -> None:
    parser.add_argument("--root", "--data", dest="root", required=True, type=Path,
                        help="dataset root folder")
    parser.add_argument("--dataset", default="frames", choices=dataset_names(), metavar="LAYOUT",
                        help="layout of --root: " + ", ".join(dataset_names()) + " (default: "
                        "frames, the MNAD layout); see `comemory prepare --help`")
    if labels:
        parser.add_argument("--labels", type=Path, help="test labels replacing the layout's "
                            "own: .npy (frames), .m (ucsd), .csv (videos), a folder of .npy "
                            "(shanghaitech)")


def _layouts_help() -> str:
    return "\n\n" + layouts_help()


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="starting configuration (default: cpu)")
    parser.add_argument("--config", type=Path, help="YAML file applied over the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one setting, e.g. "
                        "train.epochs=5 (repeatable)")
    parser.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                        "(default $COMEMORY_CACHE or ~/.cache/comemory)")


def build_config(preset_name: str, config_file: Path | None, overrides: list[str]) -> Config:
    """The preset, then the YAML file, then the overrides; checked before any work."""
    config = preset(preset_name)
    if config_file is not None:
        config = load_yaml(config_file, base=config)
    return apply_overrides(config, overrides).check()


def _synth(args: argparse.Namespace) -> None:
    from comemory.data.synth import SynthSpec, synthesize

    summary = synthesize(args.out, SynthSpec(seed=args.seed))
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


def _prepare(args: argparse.Namespace) -> None:
    from comemory.data.prepared import prepare_split, read_split

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
    from comemory.training import train

    checkpoint = train(config, args.root, args.out, args.cache_dir, resume=args.resume,
                       dataset=args.dataset)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, the main process speaks
        print(f"trained and calibrated: {checkpoint}")


def _validate(args: argparse.Namespace) -> None:
    from comemory.validation import validate_checkpoint

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


def _evaluate(args: argparse.Namespace) -> None:
    from comemory.config import FlowConfig
    from comemory.evaluation import evaluate
    from comemory.metrics import metrics_text

    flow = None
    if args.flow:
        flow = FlowConfig(method=args.flow, preset=args.flow_preset,
                          flo_dir=str(args.flo_dir or ""))
    metrics = evaluate(args.checkpoint, args.root, args.out, args.cache_dir, args.labels, flow,
                       args.dataset, args.device, args.fps)
    print(metrics_text(metrics))
    print(f"results in {args.out}: metrics.json, scores.csv and plots")


def _floor(args: argparse.Namespace) -> None:
    from comemory.evaluation import evaluate_floor
    from comemory.metrics import metrics_text

    config = build_config(args.preset, args.config, args.overrides)
    metrics = evaluate_floor(config, args.root, args.out, args.cache_dir, args.labels,
                             args.dataset)
    print(metrics_text(metrics))


def _detect(args: argparse.Namespace) -> None:
    from comemory.detection import (
        detect,  # imports OpenCV's video writer only when needed
    )

    summaries = detect(args.source, args.checkpoint, args.out, args.threshold,
                       args.false_alarm_rate, args.min_event_frames, args.event_gap,
                       args.video, args.engine, args.onnx, args.reconnect_seconds,
                       precision=args.precision, channels_last=args.channels_last)
    for s in summaries:
        fps = f"{s['fps']:.1f} frames/s" if s["fps"] else "n/a"
        print(f"{s['video']}: {counted(s['frames'], 'frame')}, {s['scored']} scored, "
              f"{s['anomalous']} above the threshold, {counted(s['events'], 'event')} "
              f"({fps}) -> {s['folder']}")


def _serve(args: argparse.Namespace) -> None:
    from comemory.serve import Service
    from comemory.serve.config import build_serve_config

    config = build_serve_config(args.config, args.source, args.checkpoint,
                                args.false_alarm_rate,
                                {"data": args.data, "database": args.database,
                                 "host": args.host, "port": args.port})
    logging.getLogger("comemory").setLevel(logging.INFO)
    service = Service(config)
    service.start()
    print(f"comemory serve: {counted(len(service.cameras), 'camera')}; events in "
          f"{service.store.location}; page at {service.web.address} (Ctrl-C stops)",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()


def _finetune(args: argparse.Namespace) -> None:
    from comemory.feedback import finetune

    report = finetune(args.checkpoint, args.root, args.reviews, args.out, args.epochs,
                      args.lr, args.review_share, args.cache_dir, args.dataset, args.clips)
    print(f"{len(report['false_alarm_events'])} false alarms: "
          f"{report['still_alarming_before']} alarmed before, "
          f"{report['still_alarming_after']} still alarm after fine-tuning; held-out "
          f"false-alarm rate {report['held_out_false_alarm_rate']:.4f}; validation AUC "
          f"{report['validation_auc_before']} -> {report['validation_auc_after']}")
    if report["false_alarm_events_without_clip_here"]:
        print(f"{len(report['false_alarm_events_without_clip_here'])} more false alarms have "
              "no clip in the clips folder (pruned, or on another service's disk): not used")
    print(f"new checkpoint: {args.out / 'checkpoint.pt'} (report: finetune.json)")


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
    from comemory.evaluation import evaluate
    from comemory.metrics import metrics_text
    from comemory.training import train

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


if __name__ == "__main__":
    sys.exit(main())
