"""Validation AUC per training minute on Ped2: how many epochs the `cpu` preset should train.

    python benchmarks/ped2_budget.py --row comemory --stages 3 6 9 12
    python benchmarks/ped2_budget.py --row comemory --stages 3 --set model.image_size=160

Trains the row of benchmarks/ped2.py in stages within one run folder: to the first stage's
epoch count, then on to the next (with a constant learning rate, a run continued from
epoch 3 to 6 is the same as one trained to 6 straight). Every stage ends as training ends:
score settings chosen on validation, the threshold set; its checkpoint is kept as
runs/ped2/<row>-budget/checkpoint-<epochs>.pt and its validation AUC (pooled, causal) and training minutes are
written to benchmarks/results/ped2-budget.json, with a plot beside it. No test label is
read: the stage to keep is chosen from this curve, copied to runs/ped2/<row>/checkpoint.pt
and only that checkpoint is scored on the test split (by benchmarks/ped2.py, whose
FULL_EPOCHS names the stage). ``--set section.key=value`` (repeatable) trains the row with
other settings (a width, an image size) as a curve of its own, named
``<row> model.image_size=160`` in the results, its run folder beside the row's.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ped2_rows import DEFAULT_DATA, PROJECT, ROWS, ped2_missing, row_config

from comemory.checkpoint import load_checkpoint
from comemory.config import apply_overrides
from comemory.cpu import use_threads
from comemory.train.loop import train
from rows import write_results  # beside this script

RESULTS = PROJECT / "benchmarks" / "results" / "ped2-budget.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--row", default="comemory", choices=[r for r in ROWS if ROWS[r][2]])
    parser.add_argument("--stages", type=int, nargs="+", default=[3, 6, 9, 12])
    parser.add_argument("--runs", type=Path, default=PROJECT / "runs" / "ped2")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a setting other than the row's (a curve of its own)")
    args = parser.parse_args()
    if ped2_missing(args.data, "training"):
        return 0
    use_threads(args.threads)
    name = " ".join([args.row, *args.set])
    folder = args.runs / "-".join([f"{args.row}-budget", *args.set]).replace("=", "")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    curve = results.setdefault(name, {})
    for epochs in sorted(args.stages):
        config = apply_overrides(row_config(args.row, 0, args.threads), args.set).check()
        if config.train.lr_schedule != "constant":
            raise SystemExit("stages continue one run: they need train.lr_schedule constant")
        config.train.epochs = epochs
        kept = folder / f"checkpoint-{epochs}.pt"
        if not kept.exists():
            shutil.copyfile(train(config, args.data, folder, args.runs / "cache", resume=True),
                            kept)
        state = load_checkpoint(kept)
        validation = state["validation"]
        curve[str(epochs)] = {"epochs": epochs, "train_minutes": state["train_seconds"] / 60,
                              "validation_causal": validation["auc"]["causal"],
                              "validation_raw": validation["auc"]["raw"],
                              "chosen": validation["chosen"]}
        write_results(RESULTS, results)
        print(f"{name}: {epochs} epochs, {curve[str(epochs)]['train_minutes']:.0f} min, "
              f"validation AUC {validation['auc']['causal']['pooled']:.3f}", flush=True)
    budget_plot(RESULTS.with_suffix(".png"), results)
    return 0


def budget_plot(path: Path, results: dict) -> None:
    """Validation AUC (pooled and per kind, causal) against training minutes, per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4))
    for row, curve in results.items():
        stages = sorted(curve.values(), key=lambda s: s["epochs"])
        minutes = [s["train_minutes"] for s in stages]
        # markers on every kind: a curve of one stage is a point, not a line
        for kind, style in (("pooled", "-o"), ("speed", ":^"), ("foreign_object", "--s"),
                            ("dropped_object", "-.v")):
            axis.plot(minutes, [s["validation_causal"][kind] for s in stages], style,
                      markersize=4, label=f"{row}: {kind}")
        for stage in stages:
            axis.annotate(f"{stage['epochs']} ep", (stage["train_minutes"],
                          stage["validation_causal"]["pooled"]), fontsize=7)
    axis.set(xlabel="training minutes (2 CPU cores)", ylabel="validation AUC (causal)",
             title="Ped2: validation AUC per training minute")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # off the points
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
