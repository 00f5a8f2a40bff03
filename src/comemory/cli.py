"""The ``comemory`` command: synth, prepare, train, evaluate, floor, demo."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from comemory.config import PRESETS, Config, FlowConfig, apply_overrides, load_yaml, preset
from comemory.data import datasets
from comemory.data.datasets import dataset_names
from comemory.data.prepared import PreparedVideo, load_split
from comemory.data.synth import SynthSpec, synthesize
from comemory.errors import ComemoryError
from comemory.evaluation import evaluate, evaluate_floor
from comemory.training import train


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except ComemoryError as error:
        print(f"comemory: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("comemory: interrupted; `comemory train --resume` continues a run", file=sys.stderr)
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comemory", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write a synthetic dataset with labels")
    synth.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    synth.add_argument("--seed", type=int, default=0)
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
    prepare.set_defaults(run=_prepare)

    train = commands.add_parser("train", help="train on the training split and calibrate")
    _add_data_arguments(train, labels=False)
    train.add_argument("--out", required=True, type=Path, help="run folder for checkpoint and logs")
    _add_config_arguments(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="score the test split and measure AUC")
    evaluate.add_argument("--checkpoint", required=True, type=Path)
    _add_data_arguments(evaluate)
    evaluate.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    evaluate.add_argument("--flow", choices=["dis", "farneback", "flo"],
                          help="flow extractor (must match the checkpoint's)")
    evaluate.add_argument("--flow-preset", default="medium", help="with --flow dis: its preset")
    evaluate.add_argument("--flo-dir", type=Path,
                          help="with --flow flo: <dir>/testing/<video>/*.flo")
    evaluate.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                          "(default $COMEMORY_CACHE or ~/.cache/comemory)")
    evaluate.set_defaults(run=_evaluate)

    floor = commands.add_parser("floor", help="measure the training-free flow-magnitude floor")
    _add_data_arguments(floor)
    floor.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    _add_config_arguments(floor)
    floor.set_defaults(run=_floor)

    demo = commands.add_parser("demo", help="synthesise, train the tiny preset, evaluate")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def _add_data_arguments(parser: argparse.ArgumentParser, labels: bool = True) -> None:
    parser.add_argument("--root", "--data", dest="root", required=True, type=Path,
                        help="dataset root folder")
    parser.add_argument("--dataset", default="frames", choices=dataset_names(),
                        help="layout of --root (default: frames, the MNAD layout); see "
                        "`comemory prepare --help`")
    if labels:
        parser.add_argument("--labels", type=Path, help="test labels replacing the layout's "
                            "own: .npy (frames), .m (ucsd), .csv (videos), a folder of .npy "
                            "(shanghaitech)")


def _layouts_help() -> str:
    doc = datasets.__doc__
    return "\n\n" + doc[doc.index("  frames"):doc.index("An explicit")].rstrip()


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
    config = preset(preset_name)
    if config_file is not None:
        config = load_yaml(config_file, base=config)
    return apply_overrides(config, overrides)


def _synth(args: argparse.Namespace) -> None:
    summary = synthesize(args.out, SynthSpec(seed=args.seed))
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))


def _prepare(args: argparse.Namespace) -> None:
    config = build_config(args.preset, args.config, args.overrides)
    for split in ("training", "testing"):
        videos = load_split(args.root, split, config, args.cache_dir, args.labels, args.dataset,
                            workers=args.workers)
        print(_describe_split(split, videos))


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
    config = build_config(args.preset, args.config, args.overrides)
    checkpoint = train(config, args.root, args.out, args.cache_dir, resume=args.resume,
                       dataset=args.dataset)
    print(f"trained and calibrated: {checkpoint}")


def _evaluate(args: argparse.Namespace) -> None:
    flow = None
    if args.flow:
        flow = FlowConfig(method=args.flow, preset=args.flow_preset,
                          flo_dir=str(args.flo_dir or ""))
    metrics = evaluate(args.checkpoint, args.root, args.out, args.cache_dir, args.labels, flow,
                       args.dataset)
    print(format_metrics(metrics))
    print(f"results in {args.out}: metrics.json, scores.csv and plots")


def _floor(args: argparse.Namespace) -> None:
    config = build_config(args.preset, args.config, args.overrides)
    metrics = evaluate_floor(config, args.root, args.out, args.cache_dir, args.labels,
                             args.dataset)
    print(format_metrics(metrics))


def _demo(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    data, run, cache = args.out / "data", args.out / "run", args.out / "cache"
    if not (data / "frame_labels_synth.npy").exists():
        synthesize(data, SynthSpec(seed=args.seed))
    config = preset("tiny")
    checkpoint = train(config, data, run, cache, resume=True)
    metrics = evaluate(checkpoint, data, args.out / "eval", cache)
    print(format_metrics(metrics))
    print(f"demo finished in {time.perf_counter() - started:.0f} s; plots and scores in "
          f"{args.out / 'eval'}")


def format_metrics(metrics: dict) -> str:
    """A small text table: one row per score and normalisation."""
    lines = [f"{'score':<10} {'normalisation':<13} {'micro AUC':>9} {'macro AUC':>9} "
             f"{'EER':>6} {'AP':>6}"]
    for kind, by_mode in metrics["scores"].items():
        for mode, m in by_mode.items():
            macro = f"{m['macro_auc']:.3f}" if m["macro_auc"] is not None else "n/a"
            lines.append(f"{kind:<10} {mode:<13} {m['micro_auc']:>9.3f} {macro:>9} "
                         f"{m['eer']:>6.3f} {m['ap']:>6.3f}")
    if metrics.get("pixel_auroc") is not None:
        lines.append(f"pixel AUROC (training-calibrated): {metrics['pixel_auroc']:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
