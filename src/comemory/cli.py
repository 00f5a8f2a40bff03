"""The ``comemory`` command: synth, train, evaluate, demo."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from comemory.config import PRESETS, Config, FlowConfig, apply_overrides, load_yaml, preset
from comemory.data.synth import SynthSpec, synthesize
from comemory.errors import ComemoryError
from comemory.evaluation import evaluate
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

    train = commands.add_parser("train", help="train on <data>/training and calibrate")
    train.add_argument("--data", required=True, type=Path, help="dataset root folder")
    train.add_argument("--out", required=True, type=Path, help="run folder for checkpoint and logs")
    _add_config_arguments(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="score <data>/testing and measure AUC")
    evaluate.add_argument("--checkpoint", required=True, type=Path)
    evaluate.add_argument("--data", required=True, type=Path, help="dataset root folder")
    evaluate.add_argument("--out", required=True, type=Path, help="folder for metrics and plots")
    evaluate.add_argument("--labels", type=Path, help="flat .npy of test labels "
                          "(default: the one frame_labels_*.npy in --data)")
    evaluate.add_argument("--flow", choices=["dis", "farneback", "flo"],
                          help="flow extractor (must match the checkpoint's)")
    evaluate.add_argument("--flow-preset", default="medium", help="with --flow dis: its preset")
    evaluate.add_argument("--flo-dir", type=Path,
                          help="with --flow flo: <dir>/testing/<video>/*.flo")
    evaluate.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                          "(default $COMEMORY_CACHE or ~/.cache/comemory)")
    evaluate.set_defaults(run=_evaluate)

    demo = commands.add_parser("demo", help="synthesise, train the tiny preset, evaluate")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


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


def _train(args: argparse.Namespace) -> None:
    config = build_config(args.preset, args.config, args.overrides)
    checkpoint = train(config, args.data, args.out, args.cache_dir, resume=args.resume)
    print(f"trained and calibrated: {checkpoint}")


def _evaluate(args: argparse.Namespace) -> None:
    flow = None
    if args.flow:
        flow = FlowConfig(method=args.flow, preset=args.flow_preset,
                          flo_dir=str(args.flo_dir or ""))
    metrics = evaluate(args.checkpoint, args.data, args.out, args.cache_dir, args.labels, flow)
    print(format_metrics(metrics))
    print(f"results in {args.out}: metrics.json, scores.csv, roc.png, score_curves.png")


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
    lines = [f"{'score':<9} {'normalisation':<13} {'micro AUC':>9} {'macro AUC':>9} "
             f"{'EER':>6} {'AP':>6}"]
    for kind, by_mode in metrics["scores"].items():
        for mode, m in by_mode.items():
            macro = f"{m['macro_auc']:.3f}" if m["macro_auc"] is not None else "n/a"
            lines.append(f"{kind:<9} {mode:<13} {m['micro_auc']:>9.3f} {macro:>9} "
                         f"{m['eer']:>6.3f} {m['ap']:>6.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
