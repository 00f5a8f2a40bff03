"""Configuration as plain dataclasses: named presets, YAML files, command-line overrides.

Precedence, lowest first: preset -> YAML file -> ``--set section.key=value``.
A YAML file mirrors the sections below::

    model: {image_size: 128, width: 0.5}
    train: {epochs: 20}
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from comemory.config.checks import (  # re-exported: the values settings may take
    ARCHITECTURES,
    BACKGROUND_MODELS,
    CHOOSE_RULES,
    COMPACTNESS_LOSSES,
    DEVICE_PATTERN,
    DIS_PRESET_NAMES,
    FLOW_METHODS,
    FLOW_PLACES,
    HOLDOUT_MODES,
    LR_SCHEDULES,
    MEMORY_INITS,
    MEMORY_READS,
    MODEL_INPUTS,
    MOTION_MODEL_USES,
    RESIZE_MODES,
    SCORE_FORMULAS,
    flow_problems,
    problems,
)
from comemory.errors import ConfigError


@dataclass
class ModelConfig:
    # comemory | mnad (the baseline: frames only, one memory) | flow_floor (no network: the
    # flow magnitude, calibrated and chosen on validation like a network; comemory.train.floor)
    architecture: str = "comemory"
    image_size: int = 256  # frames are resized to image_size x image_size
    channels: int = 3  # 1 = grey, 3 = colour input frames
    resize: str = "squash"  # squash (stretch to S x S) | letterbox (keep the aspect, pad)
    width: float = 1.0  # multiplies the 64-128-256-512 stage widths (C = 512 * width)
    appearance_memory: int = 10  # items in the appearance memory (0 = no memory)
    motion_memory: int = 10  # items in the motion memory (0 = "w/o motion memory")
    # Where the thesis is silent, MNAD's code decides these; the defaults are this
    # project's first reading (docs/design.md lists each difference and its effect).
    read: str = "attached"  # attached | detached (MNAD: no gradient through the read weights)
    compactness: str = "l2"  # l2 (mean distance, eq. 3.13) | mse (MNAD: squared distance / C)
    memory_init: str = "normal"  # normal (Gaussian) | uniform (MNAD), each row unit norm
    motion_skips: int = 3  # encoder skips the motion decoder gets (3 = U-Net, 0 = memory only)
    # frames: the network sees the whole image_size x image_size frame (the thesis);
    # objects: it sees each object's crop (boxes found from motion on the image_size grid,
    # settings in "objects"), resized to crop_size x crop_size, and a frame scores as its
    # most unusual object (comemory.data.crops)
    input: str = "frames"
    crop_size: int = 32  # with input objects: the side of each crop (HF2-VAD: 32)
    # with input objects: a crop's flow vectors in "grid" pixels (HF2-VAD) or in "crop"
    # pixels (scaled with the box, so near and far objects at one pace move alike; but a
    # small fragment of a walker then seems fast: docs/benchmarks.md, "Objects")
    crop_flow: str = "grid"

    @property
    def network_size(self) -> int:
        """The side of the images the network takes: the frame grid, or a crop."""
        return self.crop_size if self.input == "objects" else self.image_size


@dataclass
class FlowConfig:
    method: str = "dis"  # dis | farneback | flo (precomputed Middlebury files)
    preset: str = "medium"  # DIS preset: ultrafast | fast | medium
    flo_dir: str = ""  # with method "flo": <flo_dir>/<split>/<video>/*.flo
    # where the flow is estimated: "model" (on the model's S x S frames) or "native" (on
    # the frames at their own resolution, then resized to the grid with u, v scaled)
    at: str = "model"
    longest_side: int = 0  # with at "native": scale frames down to this first (0: no limit)


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0
    lambda_flow: float = 1.0
    lambda_pred: float = 1.0
    lambda_app_compact: float = 0.1
    lambda_app_separate: float = 0.1
    lambda_motion_compact: float = 0.1
    lambda_motion_separate: float = 0.1
    margin: float = 1.0  # alpha of the separateness (triplet) loss
    threads: int = 0  # CPU threads for torch and OpenCV; 0 = one per core
    # fp32 | bf16 (autocast: about 2x faster with native bf16, ~50x slower without) | auto
    # (bf16 where the device has it natively, else fp32)
    precision: str = "fp32"
    channels_last: bool = False  # NHWC memory layout: faster convolutions on CPU
    device: str = "auto"  # auto (a GPU if there is one) | cpu | cuda
    compile: bool = False  # torch.compile the model for training
    checkpoint_every: int = 100  # steps between mid-epoch checkpoints (0: epoch ends only)
    # frames not trained on: their scores set the alert threshold (comemory detect) at
    # alert.false_alarm_rate, and the validation set is made from them. tail: the last
    # holdout_fraction of each training video; videos: that fraction of the videos, whole
    # (unseen people and moments, as test footage is)
    holdout: str = "tail"
    holdout_fraction: float = 0.1
    # cross-fitting (set by `comemory calibrate --folds`): with folds > 0 the videos whose
    # index modulo folds is fold are held out whole instead
    fold: int = 0
    folds: int = 0
    lr_schedule: str = "constant"  # constant | cosine (MNAD: annealed to 0 over the run)


@dataclass
class ScoreConfig:
    patch_size: int = 16  # |P| = patch_size^2 pixels (eq. 3.19)
    patch_stride: int = 1  # the thesis slides the patch one pixel at a time
    # thesis (eq. 3.18) | zscore (HF2-VAD's z-scored sum, no log) | location (each pixel's
    # log errors z-scored with that pixel's own training statistics; the largest)
    formula: str = "thesis"
    lambda_s: float = 1.0  # weight of the appearance term (eq. 3.18, and of location)
    zscore_frame_weight: float = 0.1  # weight of the frame term in "zscore" (HF2-VAD: 0.1)
    # weight of a motion prior in "zscore": the z-scored flow magnitude of the most moving
    # patch (the training-free floor's score) added to the network's terms; 0: none. Not
    # chosen on validation: set it, and the formula is then always zscore
    zscore_motion_weight: float = 0.0
    # count motion against the speed the training frames show at each image row (a
    # perspective learned from motion), so that a far cyclist counts as much as a near one:
    # the floor divides each pixel's flow magnitude by it; the co-memory network (whole
    # frames, thesis or zscore) its S_F by its square and its motion prior by it. Fitted
    # wherever the training statistics are
    perspective: bool = False
    # with model.input objects, a learned model of how objects move (a Gaussian mixture
    # over each object's flow magnitude in 8 direction bins, fitted on training objects;
    # comemory.scoring.motion_model): off | alone (a frame scores its least likely
    # object's negative log-likelihood, no network) | added (z-scored on training frames
    # and added to the zscore formula's score)
    motion_model: str = "off"
    causal_window: int = 1  # mean over the last k frames; detect applies it live (1: none)
    centred_sigma: float = 0.0  # Gaussian over past and future frames, offline only (0: none)
    # MNAD's test-time memory update (evaluate and validate only): after a frame whose
    # weighted frame error (MNAD's point score, images in [0, 1]) is below this, every
    # memory absorbs that frame's queries; frames then go one at a time, in order. 0: off;
    # MNAD's code uses 0.01
    test_time_update: float = 0.0


@dataclass
class ChooseConfig:
    """How the score settings are chosen once training ends (and by ``comemory validate
    --choose``): by validation AUC on held-out frames and pseudo-anomalies, never by test
    labels. The checkpoint keeps the settings asked for beside the ones chosen."""

    # pick formula, lambda, patch size and both smoothings on validation (False: keep the
    # score section as asked)
    on_validation: bool = True
    # whether the choice may pick the location formula (it keeps every frame's error maps
    # while choosing, and stores 4 maps of image_size^2 numbers in the checkpoint); also
    # when score.formula is location. Off by default: docs/benchmarks.md, "Decisions"
    offer_location: bool = False
    # with model.input objects, whether the choice may pick score.motion_model alone or
    # added to the network's score (the network's own score is preferred within one
    # standard error). Off by default: docs/benchmarks.md, "Decisions"
    offer_motion_model: bool = False
    # one_se = the simplest setting (frame-wide formulas before location, the network's
    # own score before the motion model's, then least appearance weight, then shortest
    # causal window) within one bootstrap standard error of the best, since differences
    # inside it are the validation set's noise; best = the best AUC
    rule: str = "one_se"


@dataclass
class AlertConfig:
    false_alarm_rate: float = 0.01  # of held-out normal frames above the alert threshold
    # videos: the threshold keeps false_alarm_rate on a new normal video with probability
    # `confidence`, from the spread between held-out videos (comemory.alerts.promise);
    # frames: the pooled held-out frames' quantile (before 2026-12; promises nothing per video)
    threshold_by: str = "videos"
    confidence: float = 0.9


@dataclass
class ObjectsConfig:
    """Objects found from motion, with no learned weights (comemory.data.objects)."""

    background: str = "mog2"  # mog2 | knn: OpenCV's model of the recent background
    # frames the background model remembers: a thing that stops becomes background in
    # about a tenth of them
    history: int = 200
    # a second background learns this many times slower, so that a thing that arrives and
    # stays is still an object after the recent background has taken it in, for about
    # history x long_term / 10 frames (0: none)
    long_term: int = 50
    difference: int = 15  # grey levels of change to the previous frame that count as motion
    merge: int = 5  # pixels: gaps this small are closed, boxes this close joined
    min_area: float = 0.0005  # share of the frame's area: smaller boxes are noise
    max_area: float = 0.5  # larger ones are a lighting change or a camera that moved
    max_aspect: float = 6.0  # longer side over shorter side
    max_objects: int = 10  # the largest boxes are kept
    # with model.input objects: each box grows by this share of its size on every side
    # before it is cropped, so that the past frames' crops hold the object too
    margin: float = 0.1


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    choose: ChooseConfig = field(default_factory=ChooseConfig)
    alert: AlertConfig = field(default_factory=AlertConfig)
    objects: ObjectsConfig = field(default_factory=ObjectsConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return asdict(self)

    def check(self) -> Config:
        """Raise ConfigError naming the first setting no run could use; return self.

        Called before any data is read or any file written, so that a typo costs a
        one-line error, not an hour of preparation followed by a traceback.
        """
        for problem in problems(self):
            raise ConfigError(problem)
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        return merge(cls(), data, source)


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The thesis's setup (section 4.1.2): 256x256, C = 512, memory 10, Adam 1e-4.
    "paper": {},
    # A Ped2-sized run in minutes on 2 CPU cores: a quarter of the pixels and of the width,
    # bf16 autocast where the CPU has it natively, channels_last; flow at the frames' own
    # resolution, where small far objects still move; 3 epochs, where the validation AUC
    # had stopped rising. The measurements behind each: docs/benchmarks.md, "Decisions".
    "cpu": {
        "model": {"image_size": 128, "channels": 1, "width": 0.25},
        "flow": {"at": "native"},
        "train": {"epochs": 3, "batch_size": 8, "lr": 2e-4, "precision": "auto",
                  "channels_last": True},
        "score": {"patch_size": 8},
    },
    # The cpu preset on objects: boxes found on a 256 x 256 grid (a person far away is
    # still a dozen pixels tall), each cropped to 32 x 32 for the network.
    "objects": {
        "model": {"image_size": 256, "channels": 1, "width": 0.25, "input": "objects",
                  "crop_size": 32},
        "flow": {"at": "native"},
        "train": {"epochs": 3, "batch_size": 32, "lr": 2e-4, "precision": "auto",
                  "channels_last": True},
        "score": {"patch_size": 8},
    },
    # Seconds per epoch on the synthetic data: the demo and the tests. One thread: a model
    # this small trains faster on one than on two (benchmarks/thread_fairness.py).
    "tiny": {
        "model": {"image_size": 64, "channels": 1, "width": 0.125},
        "train": {"epochs": 20, "batch_size": 8, "lr": 1e-3, "threads": 1},
        "score": {"patch_size": 8},
    },
}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return Config.from_dict(PRESETS[name], source=f"preset {name!r}")


def merge(config: Config, data: dict[str, Any], source: str) -> Config:
    """Return a copy of ``config`` with the nested dict ``data`` applied; unknown keys raise."""
    merged = copy.deepcopy(config)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    for section_name, values in _with_moved_keys(data).items():
        if section_name not in _section_names():
            raise ConfigError(f"{source}: unknown section {section_name!r}; "
                              f"known sections are {_section_names()}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section_name!r} must be a mapping")
        section = getattr(merged, section_name)
        for key, value in values.items():
            _set_field(section, section_name, key, value, source)
    return merged


# Settings that left the score section when it split into score, choose and alert: files,
# --set lines and checkpoints that name them the old way still work.
MOVED_KEYS = {("score", "choose_on_validation"): ("choose", "on_validation"),
              ("score", "offer_location"): ("choose", "offer_location"),
              ("score", "choose_rule"): ("choose", "rule"),
              ("score", "false_alarm_rate"): ("alert", "false_alarm_rate")}


def _with_moved_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each key of MOVED_KEYS under its new section and name (a value given
    both ways: the new name's wins)."""
    if not isinstance(data, dict):
        return data
    moved: dict[str, Any] = {}
    for section, values in data.items():
        for key, value in (values.items() if isinstance(values, dict) else ()):
            if (section, key) in MOVED_KEYS:
                new_section, new_key = MOVED_KEYS[section, key]
                moved.setdefault(new_section, {})[new_key] = value
    if not moved:
        return data
    result = {section: ({k: v for k, v in values.items() if (section, k) not in MOVED_KEYS}
                        if isinstance(values, dict) else values)
              for section, values in data.items()}
    for section, values in moved.items():
        given = result.get(section)
        if given is None or isinstance(given, dict):  # anything else: merge names the error
            result[section] = {**values, **(given or {})}
    return result


def load_yaml(path: str | Path, base: Config | None = None) -> Config:
    path = Path(path)
    return merge(base or Config(), read_yaml_mapping(path, "config file"), source=str(path))


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping at the top of a YAML file (empty for an empty file); a ConfigError
    naming the file, and ``what`` it should be, when it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} must be a YAML mapping (key: value lines)")
    return data


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings; values are parsed as YAML scalars."""
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        section, dot, key = dotted.partition(".")
        if not sep or not dot:
            raise ConfigError(f"override {item!r}: expected section.key=value, e.g. train.epochs=5")
        config = merge(config, {section: {key: yaml.safe_load(raw)}}, source=f"override {item!r}")
    return config


def _section_names() -> list[str]:
    return [f.name for f in fields(Config)]


def _set_field(section: Any, section_name: str, key: str, value: Any, source: str) -> None:
    known = {f.name: f for f in fields(section)}
    if key not in known:
        raise ConfigError(f"{source}: unknown key {section_name}.{key}; "
                          f"known keys in {section_name!r} are {sorted(known)}")
    expected = type(getattr(section, key))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {section_name}.{key} must be {expected.__name__}, "
                          f"got {value!r}")
    setattr(section, key, value)

__all__ = ["ARCHITECTURES", "AlertConfig", "BACKGROUND_MODELS", "CHOOSE_RULES",
           "COMPACTNESS_LOSSES", "ChooseConfig", "Config", "DEVICE_PATTERN",
           "DIS_PRESET_NAMES", "FLOW_METHODS", "FLOW_PLACES", "FlowConfig",
           "HOLDOUT_MODES", "LR_SCHEDULES", "MEMORY_INITS", "MEMORY_READS", "MODEL_INPUTS",
           "MOTION_MODEL_USES", "MOVED_KEYS",
           "ModelConfig", "ObjectsConfig", "PRESETS", "RESIZE_MODES", "SCORE_FORMULAS",
           "ScoreConfig", "TrainConfig", "apply_overrides", "flow_problems", "load_yaml",
           "merge", "preset", "read_yaml_mapping"]
