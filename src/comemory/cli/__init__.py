"""comemory: video anomaly detection with the Appearance-Motion Co-memory Network.

Train on footage of normal activity, then score every new frame by how badly the model
predicts its motion and appearance. Commands: demo, synth, prepare, train, evaluate, floor,
detect, serve, finetune, export, bench. `comemory COMMAND --help` describes each.
"""
from __future__ import annotations

import argparse
import logging
import sys

from comemory import __version__
from comemory.cli import live, offline
from comemory.cpu import use_threads
from comemory.errors import ComemoryError, Interrupted

# Each command imports what it runs (PyTorch, OpenCV, scikit-learn) when it starts, inside
# main's handlers: `--version` and `--help` answer at once, and a Ctrl-C while those load
# is one line and exit status 130 like any other. Each command registers itself with one
# function, add_<command> in cli.offline or cli.live.
COMMANDS = (
    offline.add_demo,
    offline.add_synth,
    offline.add_prepare,
    offline.add_train,
    offline.add_validate,
    offline.add_calibrate,
    offline.add_evaluate,
    offline.add_floor,
    live.add_detect,
    offline.add_export,
    live.add_serve,
    live.add_finetune,
    offline.add_bench,
)  # in the order --help lists them


def main(argv: list[str] | None = None) -> int:
    on_interrupt = "nothing partial was kept"
    try:
        args = build_parser().parse_args(argv)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="comemory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"comemory {__version__}",
                        help="print the version and exit")
    parser.set_defaults(on_interrupt="nothing partial was kept")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser

