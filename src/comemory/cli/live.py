"""The commands that watch footage: detect, serve, and finetune on what serve's reviewers
marked. Each has ``add_<command>`` (its arguments) and the function it runs."""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from comemory.alerts import EVENT_GAP, MIN_EVENT_FRAMES
from comemory.cpu import DETECT_THREADS
from comemory.progress import counted

if TYPE_CHECKING:
    pass

from comemory.cli.arguments import (
    add_cache_argument,
    add_data_arguments,
    add_threads_argument,
)


def add_detect(commands: argparse._SubParsersAction) -> None:
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
    detect.add_argument("--adapt", type=float, metavar="SECONDS", help="per-camera "
                        "adaptation (opt-in): learn each source's own threshold from its "
                        "first SECONDS, taken as normal, and follow its recent normal scores "
                        "(README: Alerts that keep their promise)")
    detect.add_argument("--adapt-from", type=Path, metavar="FOOTAGE", help="per-camera "
                        "adaptation from footage you mark normal (a video, or a folder of "
                        "them), scored first; with --adapt, each source also learns that long")
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
    add_threads_argument(detect, default=DETECT_THREADS)
    detect.set_defaults(run=_detect)


def add_serve(commands: argparse._SubParsersAction) -> None:
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
    add_threads_argument(serve)  # one process scores every camera: all cores by default
    serve.set_defaults(run=_serve, on_interrupt="stopped")


def add_finetune(commands: argparse._SubParsersAction) -> None:
    finetune = commands.add_parser(
        "finetune", help="fine-tune on clips reviewed as false alarms in `serve`, calibrate "
        "again", description="Train a checkpoint further on its training videos plus the "
        "clips marked 'false alarm' in a serve events database, set the score and threshold "
        "again, and report how many of those false alarms still alarm. Writes a new run "
        "folder; the old checkpoint is kept.")
    finetune.add_argument("--checkpoint", required=True, type=Path,
                          help="the checkpoint `serve` used")
    add_data_arguments(finetune, labels=False)  # its training data
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
    add_cache_argument(finetune)
    add_threads_argument(finetune)
    finetune.set_defaults(run=_finetune, on_interrupt="nothing was written; run it again")


def _detect(args: argparse.Namespace) -> None:
    from comemory.detect import detect  # imports OpenCV's video writer only when needed

    logging.getLogger("comemory.alerts").setLevel(logging.INFO)  # what the threshold promises
    summaries = detect(args.source, args.checkpoint, args.out, args.threshold,
                       args.false_alarm_rate, args.min_event_frames, args.event_gap,
                       args.video, args.engine, args.onnx, args.reconnect_seconds,
                       precision=args.precision, channels_last=args.channels_last,
                       adapt_seconds=args.adapt, adapt_from=args.adapt_from)
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
    from comemory.train.finetune import finetune

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
