"""What each setting may be: the values it may take, and every section's own check.
``Config.check`` runs them all before any data is read or any file written."""
from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import TYPE_CHECKING

from comemory.cpu import PRECISIONS

if TYPE_CHECKING:
    from comemory.config import (
        AlertConfig,
        ChooseConfig,
        Config,
        FlowConfig,
        ModelConfig,
        ObjectsConfig,
        ScoreConfig,
        TrainConfig,
    )

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
# The values a setting may take live here, where they are checked; the modules that act
# on them import them from here (config imports nothing of comemory's but errors and cpu).
# comemory.model.network.NETWORKS, and the floor: no network (comemory.train.floor)
ARCHITECTURES = ("comemory", "mnad", "flow_floor")
RESIZE_MODES = ("squash", "letterbox")  # comemory.data.frames.resize_frame
FLOW_METHODS = ("dis", "farneback", "flo")  # comemory.data.flow
DIS_PRESET_NAMES = ("ultrafast", "fast", "medium")  # comemory.data.flow.DIS_PRESETS
FLOW_PLACES = ("model", "native")
HOLDOUT_MODES = ("tail", "videos")  # comemory.data.holdout.holdout_starts
THRESHOLD_BY = ("videos", "frames")  # comemory.alerts.calibrate_threshold
SCORE_FORMULAS = ("thesis", "zscore", "location")  # comemory.scoring.formulas
MEMORY_READS = ("attached", "detached")
COMPACTNESS_LOSSES = ("l2", "mse")
MEMORY_INITS = ("normal", "uniform")
LR_SCHEDULES = ("constant", "cosine")
CHOOSE_RULES = ("one_se", "best")
BACKGROUND_MODELS = ("mog2", "knn")  # comemory.data.objects
MODEL_INPUTS = ("frames", "objects")  # comemory.data.windows.model_windows
CROP_FLOW_UNITS = ("crop", "grid")  # comemory.data.crops.crop_flow
MOTION_MODEL_USES = ("off", "alone", "added")  # comemory.scoring.formulas.CoMemoryScorer


def problems(config: Config) -> list[str]:
    """Every setting of ``config`` that is out of range, as messages naming the key: each
    section's own, then those that need two sections."""
    model, score = config.model, config.score
    name = "model.crop_size" if model.input == "objects" else "model.image_size"
    across = [
        (1 <= score.patch_size <= model.network_size, f"score.patch_size must be between 1 "
         f"and {name} ({model.network_size}), got {score.patch_size}"),
        (model.input != "objects" or not score.perspective,
         "score.perspective needs whole frames (it divides by each image row's speed): "
         "set model.input frames, or leave score.perspective off"),
        (model.architecture != "mnad" or not score.perspective,
         "score.perspective divides flow by each row's speed, and MNAD scores no flow: "
         "leave it off for model.architecture mnad"),
        (model.input == "objects" or (score.motion_model == "off"
                                      and not config.choose.offer_motion_model),
         "score.motion_model and choose.offer_motion_model model how objects move: set "
         "model.input objects, or leave them off"),
    ]
    return (flow_problems(config.flow) + model_problems(model) + train_problems(config.train)
            + [message for ok, message in across if not ok] + score_problems(score)
            + choose_problems(config.choose) + alert_problems(config.alert)
            + objects_problems(config.objects))


def flow_problems(flow: FlowConfig) -> list[str]:
    checks = [
        (flow.at in FLOW_PLACES, f"flow.at must be one of {list(FLOW_PLACES)}, got {flow.at!r}"),
        (flow.longest_side >= 0, f"flow.longest_side must be >= 0 (0: no limit), "
         f"got {flow.longest_side}"),
        (flow.method != "dis" or flow.preset in DIS_PRESET_NAMES,
         f"flow.preset {flow.preset!r} unknown; choose one of {sorted(DIS_PRESET_NAMES)}"),
        (flow.method in FLOW_METHODS,
         f"flow.method {flow.method!r} unknown; choose dis, farneback or flo"),
        (flow.method != "flo" or bool(flow.flo_dir),
         "flow.method flo needs flow.flo_dir, the folder of precomputed .flo files"),
    ]
    return [message for ok, message in checks if not ok]


def model_problems(model: ModelConfig) -> list[str]:
    checks = [
        (model.architecture in ARCHITECTURES,
         f"model.architecture must be one of {sorted(ARCHITECTURES)}, "
         f"got {model.architecture!r}"),
        (model.image_size >= 16 and model.image_size % 8 == 0,
         f"model.image_size must be a multiple of 8 and at least 16 (the U-Net halves it "
         f"three times), got {model.image_size}"),
        (model.channels in (1, 3), f"model.channels must be 1 (grey) or 3 (colour), "
         f"got {model.channels}"),
        (model.resize in RESIZE_MODES, f"model.resize must be one of {list(RESIZE_MODES)}, "
         f"got {model.resize!r}"),
        (math.isfinite(model.width) and model.width > 0,
         f"model.width must be > 0, got {model.width}"),
        (model.appearance_memory >= 0 and model.motion_memory >= 0,
         "model.appearance_memory and model.motion_memory must be >= 0 (0 = no memory)"),
        (model.read in MEMORY_READS, f"model.read must be one of {list(MEMORY_READS)}, "
         f"got {model.read!r}"),
        (model.compactness in COMPACTNESS_LOSSES, f"model.compactness must be one of "
         f"{list(COMPACTNESS_LOSSES)}, got {model.compactness!r}"),
        (model.memory_init in MEMORY_INITS, f"model.memory_init must be one of "
         f"{list(MEMORY_INITS)}, got {model.memory_init!r}"),
        (0 <= model.motion_skips <= 3, f"model.motion_skips must be 0-3, "
         f"got {model.motion_skips}"),
        (model.architecture != "mnad" or model.appearance_memory > 0,
         "model.architecture mnad needs model.appearance_memory >= 1 (its score reads it)"),
        (model.input in MODEL_INPUTS, f"model.input must be one of {list(MODEL_INPUTS)}, "
         f"got {model.input!r}"),
        (model.input != "objects" or model.architecture == "comemory",
         "model.input objects needs model.architecture comemory (a frame takes its object "
         "with the largest flow error, and MNAD predicts no flow)"),
        (model.crop_flow in CROP_FLOW_UNITS, f"model.crop_flow must be one of "
         f"{list(CROP_FLOW_UNITS)}, got {model.crop_flow!r}"),
        (model.crop_size >= 16 and model.crop_size % 8 == 0,
         f"model.crop_size must be a multiple of 8 and at least 16 (the U-Net halves it "
         f"three times), got {model.crop_size}"),
    ]
    return [message for ok, message in checks if not ok]


def train_problems(train: TrainConfig) -> list[str]:
    finite = math.isfinite
    checks = [
        (train.lr_schedule in LR_SCHEDULES, f"train.lr_schedule must be one of "
         f"{list(LR_SCHEDULES)}, got {train.lr_schedule!r}"),
        (train.epochs >= 1, f"train.epochs must be at least 1, got {train.epochs}"),
        (train.batch_size >= 1, f"train.batch_size must be at least 1, got {train.batch_size}"),
        (finite(train.lr) and train.lr > 0, f"train.lr must be a number > 0, got {train.lr}"),
        (finite(train.weight_decay) and train.weight_decay >= 0,
         f"train.weight_decay must be >= 0, got {train.weight_decay}"),
        (all(finite(v) and v >= 0 for v in _loss_weights(train)),
         "train.lambda_* loss weights must be numbers >= 0"),
        (finite(train.margin) and train.margin >= 0,
         f"train.margin must be >= 0, got {train.margin}"),
        (train.threads >= 0, f"train.threads must be >= 0 (0 = one per core), "
         f"got {train.threads}"),
        (train.precision in PRECISIONS,
         f"train.precision must be auto, fp32 or bf16, got {train.precision!r}"),
        (DEVICE_PATTERN.fullmatch(train.device) is not None,
         f"train.device must be auto, cpu, cuda or cuda:N, got {train.device!r}"),
        (train.checkpoint_every >= 0,
         f"train.checkpoint_every must be >= 0 (0 = at epoch ends only), "
         f"got {train.checkpoint_every}"),
        (train.holdout in HOLDOUT_MODES,
         f"train.holdout must be tail or videos, got {train.holdout!r}"),
        (0.0 <= train.holdout_fraction < 1.0,
         f"train.holdout_fraction must be in [0, 1), got {train.holdout_fraction}"),
    ]
    return [message for ok, message in checks if not ok]


def score_problems(score: ScoreConfig) -> list[str]:
    finite = math.isfinite
    checks = [
        (score.patch_stride >= 1, f"score.patch_stride must be >= 1, got {score.patch_stride}"),
        (finite(score.lambda_s), f"score.lambda_s must be a finite number, got {score.lambda_s}"),
        (score.formula in SCORE_FORMULAS,
         f"score.formula must be thesis, zscore or location, got {score.formula!r}"),
        (finite(score.zscore_frame_weight), "score.zscore_frame_weight must be a finite number"),
        (finite(score.zscore_motion_weight) and score.zscore_motion_weight >= 0,
         f"score.zscore_motion_weight must be >= 0 (0: none), got {score.zscore_motion_weight}"),
        (score.zscore_motion_weight == 0 or score.formula == "zscore",
         "score.zscore_motion_weight adds a term to the zscore formula only: set "
         "score.formula=zscore too"),
        (score.motion_model in MOTION_MODEL_USES, f"score.motion_model must be one of "
         f"{list(MOTION_MODEL_USES)}, got {score.motion_model!r}"),
        (score.motion_model != "added" or score.formula == "zscore",
         "score.motion_model added adds a z-scored term to the zscore formula only: set "
         "score.formula=zscore too"),
        (not score.perspective or score.formula != "location",
         "score.perspective does not apply to the location formula, which already weighs "
         "each pixel against its own training errors: set score.formula thesis or zscore"),
        (score.causal_window >= 1, f"score.causal_window must be >= 1 (1: no smoothing), "
         f"got {score.causal_window}"),
        (finite(score.centred_sigma) and score.centred_sigma >= 0,
         f"score.centred_sigma must be >= 0 (0: none), got {score.centred_sigma}"),
        (finite(score.test_time_update) and score.test_time_update >= 0,
         f"score.test_time_update must be >= 0 (0: off), got {score.test_time_update}"),
    ]
    return [message for ok, message in checks if not ok]


def choose_problems(choose: ChooseConfig) -> list[str]:
    if choose.rule in CHOOSE_RULES:
        return []
    return [f"choose.rule must be one_se or best, got {choose.rule!r}"]


def objects_problems(objects: ObjectsConfig) -> list[str]:
    finite = math.isfinite
    checks = [
        (objects.background in BACKGROUND_MODELS, f"objects.background must be one of "
         f"{list(BACKGROUND_MODELS)}, got {objects.background!r}"),
        (objects.history >= 1, f"objects.history must be >= 1, got {objects.history}"),
        (objects.long_term >= 0, f"objects.long_term must be >= 0 (0: none), "
         f"got {objects.long_term}"),
        (0 < objects.difference < 256, f"objects.difference must be 1-255 grey levels, "
         f"got {objects.difference}"),
        (objects.merge >= 0, f"objects.merge must be >= 0 pixels, got {objects.merge}"),
        (finite(objects.min_area) and finite(objects.max_area)
         and 0 <= objects.min_area < objects.max_area <= 1,
         f"objects.min_area and max_area must satisfy 0 <= min_area < max_area <= 1, got "
         f"{objects.min_area} and {objects.max_area}"),
        (finite(objects.max_aspect) and objects.max_aspect >= 1,
         f"objects.max_aspect must be >= 1, got {objects.max_aspect}"),
        (objects.max_objects >= 1, f"objects.max_objects must be >= 1, "
         f"got {objects.max_objects}"),
        (finite(objects.margin) and 0 <= objects.margin <= 1,
         f"objects.margin must be between 0 and 1, got {objects.margin}"),
    ]
    return [message for ok, message in checks if not ok]


def alert_problems(alert: AlertConfig) -> list[str]:
    checks = [(0.0 < alert.false_alarm_rate < 1.0,
               f"alert.false_alarm_rate must be between 0 and 1, got {alert.false_alarm_rate}"),
              (alert.threshold_by in THRESHOLD_BY,
               f"alert.threshold_by must be one of {THRESHOLD_BY}, got {alert.threshold_by!r}"),
              (0.0 < alert.confidence < 1.0,
               f"alert.confidence must be between 0 and 1, got {alert.confidence}")]
    return [message for ok, message in checks if not ok]


def _loss_weights(train: TrainConfig) -> list[float]:
    return [value for name, value in asdict(train).items() if name.startswith("lambda_")]
