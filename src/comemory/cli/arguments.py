"""Arguments several commands share, and the configuration they build."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from comemory.config import PRESETS, Config, apply_overrides, load_yaml, preset
from comemory.data.layouts import dataset_names, layouts_help

if TYPE_CHECKING:
    pass


def add_threads_argument(parser: argparse.ArgumentParser, config_key: str = "",
                          default: int | None = None) -> None:
    also = f" (sets {config_key})" if config_key else ""
    if default is None:
        text = ("CPU threads for PyTorch and OpenCV; default one per core. On a machine "
                "shared with other heavy work, give each process its share" + also)
    else:  # detection: one frame at a time is too little work to share out between cores
        text = (f"CPU threads for PyTorch and OpenCV (default {default}: as fast as two for "
                "the tiny and cpu presets and fair to other processes; the paper preset "
                "runs twice as fast on 2)")
    parser.add_argument("--threads", type=non_negative_int, metavar="N", default=default,
                        help=text)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="where the network runs: auto (a GPU if PyTorch sees one, else "
                        "the CPU; default), cpu, cuda or cuda:N")


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_data_arguments(parser: argparse.ArgumentParser, labels: bool = True) -> None:
    parser.add_argument("--root", "--data", dest="root", required=True, type=Path,
                        help="dataset root folder")
    parser.add_argument("--dataset", default="frames", choices=dataset_names(), metavar="LAYOUT",
                        help="layout of --root: " + ", ".join(dataset_names()) + " (default: "
                        "frames, the MNAD layout); see `comemory prepare --help`")
    if labels:
        parser.add_argument("--labels", type=Path, help="test labels replacing the layout's "
                            "own: .npy (frames), .m (ucsd), .csv (videos), a folder of .npy "
                            "(shanghaitech)")


def layouts_description() -> str:
    return "\n\n" + layouts_help()


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="starting configuration (default: cpu)")
    parser.add_argument("--config", type=Path, help="YAML file applied over the preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one setting, e.g. "
                        "train.epochs=5 (repeatable)")
    add_cache_argument(parser)


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, help="prepared-video cache "
                        "(default $COMEMORY_CACHE or ~/.cache/comemory)")


def build_config(preset_name: str, config_file: Path | None, overrides: list[str]) -> Config:
    """The preset, then the YAML file, then the overrides; checked before any work."""
    config = preset(preset_name)
    if config_file is not None:
        config = load_yaml(config_file, base=config)
    return apply_overrides(config, overrides).check()
