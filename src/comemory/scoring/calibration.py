"""Training statistics that turn score parts into a score, and the alert threshold.

Every score of ``comemory.scoring.formulas`` is "training-calibrated": it reads these
statistics of the training frames only, never the test video's own, so it can run live.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from comemory.scoring.errors import LOG_FLOOR, VideoErrors
from comemory.scoring.motion_model import MotionModel

# Spread floor of a pixel's log error (the ``location`` formula): a pixel whose training
# error hardly varied (a wall, the frame's border) would otherwise turn any change into an
# alarm; a tenth of a natural-log unit is about a 10 % change of the error.
PIXEL_SPREAD_FLOOR = 0.1
MOTION_COMPONENTS = 5  # of the motion model's mixture, as the benchmarks measured it


@dataclass
class ErrorStatistics:
    """What the co-memory network's scorer reads of its training frames.

    flow_weight, frame_weight: w_F and w_I of eq. 3.20 (inverse means; the ``thesis``
    formula). flow_mean/std, frame_mean/std: of S_F(P~) and S_I(P~) (``zscore``).
    motion_mean/std: of the most moving patch's flow magnitude (the motion prior; None
    where not measured). pixel_statistics: (4, S, S) float32, the ``location`` formula's
    per-pixel mean and spread of the log flow-error map, then of the log frame-error map
    (None: not kept). motion_row_speeds: (S,) float32, the speed of each image row's
    fastest normal motion (as the floor's ``FloorStatistics``), and per_row_speed: these
    statistics again for the parts divided by it (``per_row_speed``), which
    ``score.perspective`` reads (both None where the row parts were not measured).
    motion_model: the Gaussian mixture of the training objects' motion that
    ``score.motion_model`` reads (None: not objects, or too few of them), fitted once by
    ``fit_motion_model`` for every patch size's statistics, since it reads no patch.
    """

    flow_weight: float
    frame_weight: float
    flow_mean: float | None = None
    flow_std: float | None = None
    frame_mean: float | None = None
    frame_std: float | None = None
    motion_mean: float | None = None
    motion_std: float | None = None
    pixel_statistics: np.ndarray | None = None
    motion_row_speeds: np.ndarray | None = None
    per_row_speed: ErrorStatistics | None = None
    motion_model: MotionModel | None = None

    @classmethod
    def fit(cls, errors: list[VideoErrors]) -> ErrorStatistics:
        """From the training frames' errors: eq. 3.20, the z-score statistics, the motion's
        where every video has it, the per-pixel ones where every video kept its maps, the
        row speeds and the statistics per row speed where every video has its row parts."""
        motion = (np.concatenate([e.motion for e in errors])
                  if all(e.motion is not None for e in errors) else None)
        statistics = calibrate(np.concatenate([e.flow_error for e in errors]),
                               np.concatenate([e.frame_error for e in errors]), motion)
        if all(e.flow_maps is not None and e.frame_maps is not None for e in errors):
            statistics.pixel_statistics = pixel_statistics(errors)
        if all(e.motion_rows is not None and e.flow_error_rows is not None for e in errors):
            speeds = fit_row_speeds(np.concatenate([e.motion_rows for e in errors]))
            divided = [per_row_speed(e, speeds) for e in errors]
            statistics.motion_row_speeds = speeds
            statistics.per_row_speed = calibrate(
                np.concatenate([e.flow_error for e in divided]),
                np.concatenate([e.frame_error for e in divided]),
                np.concatenate([e.motion for e in divided]))
        return statistics


def fit_motion_model(errors: list[VideoErrors]) -> MotionModel | None:
    """The motion model of the training objects in ``errors``; None where they carry no
    object motion (whole frames) or too few objects to fit it."""
    if not errors or any(e.motion_vectors is None for e in errors):
        return None
    vectors = np.concatenate([e.motion_vectors for e in errors]).astype(np.float64)
    if len(vectors) <= MOTION_COMPONENTS * 2:
        return None
    counts = np.concatenate([e.objects_per_frame() for e in errors])
    return MotionModel(MOTION_COMPONENTS).fit(vectors, counts)


def per_row_speed(errors: VideoErrors, speeds: np.ndarray) -> VideoErrors:
    """``errors`` with S_F and the motion counted against each row's speed (S,): the
    motion is the largest of each row's fastest patch divided by that row's speed, S_F
    the largest of each row's worst flow error divided by its square (a squared end-point
    error grows with the square of the image speed). S_I stays at the worst flow patch."""
    if errors.motion_rows is None or errors.flow_error_rows is None:
        raise ValueError(f"{errors.name}: score.perspective needs each row's motion and flow "
                         "error, which only the co-memory network on whole frames measures")
    if len(speeds) != errors.motion_rows.shape[1]:
        raise ValueError(f"the row speeds cover {len(speeds)} rows, {errors.name}'s frames "
                         f"{errors.motion_rows.shape[1]}: calibrate again at this image size")
    rows = speeds[None, :]
    return replace(errors, motion=(errors.motion_rows / rows).max(1),
                   flow_error=(errors.flow_error_rows / np.square(rows)).max(1))


@dataclass
class MNADStatistics:
    """What MNAD's scorer reads of its training frames: the mean and spread of the PSNR
    and of the feature distance, which standardise its two terms."""

    psnr_mean: float
    psnr_std: float
    distance_mean: float
    distance_std: float

    @classmethod
    def fit(cls, errors: list[VideoErrors]) -> MNADStatistics:
        psnr = np.concatenate([e.psnr for e in errors])
        distance = np.concatenate([e.distance for e in errors])
        return cls(float(psnr.mean()), _spread(psnr), float(distance.mean()),
                   _spread(distance))


# The row speed is this quantile, over training frames, of the fastest patch in that row:
# how fast the quickest normal thing there moves (a walker near the camera, not a crowd)
ROW_SPEED_QUANTILE = 0.99
# Rows whose quantile is below this share of the rows' (sky, walls, the lawn nobody
# crosses) do not set the line: nothing normal moves there to measure
STILL_ROWS = 0.25


@dataclass
class FloorStatistics:
    """What the floor reads of its training frames where ``score.perspective`` is set:
    row_speeds (S,) float32, the speed the fastest normal motion has at each image row of
    the S x S grid, so that a flow magnitude counts against what that row usually shows
    (far from the camera a cyclist moves fewer pixels than a walker near it).

    On a camera looking down at a ground plane, an object's image size, and so its image
    speed at a given real speed, grows linearly with its row's distance from the horizon:
    the rows' ``ROW_SPEED_QUANTILE`` speeds are fitted with a straight line over the rows
    where something moves, floored at the slowest of those rows."""

    row_speeds: np.ndarray

    @classmethod
    def fit(cls, errors: list[VideoErrors]) -> FloorStatistics | None:
        """From the floor's training errors with their maps (the patch-mean flow magnitude
        of every pixel); None where the maps were not kept (``score.perspective`` off)."""
        if not errors or any(e.flow_maps is None for e in errors):
            return None
        return cls(fit_row_speeds(np.concatenate([e.flow_maps.astype(np.float32).max(2)
                                                  for e in errors])))


def fit_row_speeds(fastest: np.ndarray) -> np.ndarray:
    """(n, S) each training frame's fastest patch-mean flow magnitude per row -> (S,) the
    speed of each row's fastest normal motion (``row_speeds`` of its quantile)."""
    if not len(fastest):
        raise ValueError("no training frames to learn the row speeds from")
    return row_speeds(np.quantile(fastest.astype(np.float32), ROW_SPEED_QUANTILE, axis=0))


def row_speeds(by_row: np.ndarray) -> np.ndarray:
    """(S,) each row's measured speed -> (S,) float32 the straight line through the rows
    where something moves, never below the slowest of them (nor 0)."""
    rows = np.arange(len(by_row))
    moving = by_row >= np.quantile(by_row, STILL_ROWS)
    slope, intercept = np.polyfit(rows[moving], by_row[moving], 1)
    lowest = max(float(by_row[moving].min()), 1e-3)
    return np.maximum(slope * rows + intercept, lowest).astype(np.float32)


Statistics = ErrorStatistics | MNADStatistics | FloorStatistics
_KINDS: tuple[type, ...] = (ErrorStatistics, MNADStatistics, FloorStatistics)
# the statistics a checkpoint's record holds as tensors (read back as float32 arrays)
ARRAYS = ("pixel_statistics", "motion_row_speeds", "row_speeds")


@dataclass
class Calibration:
    """A checkpoint's training statistics and alert threshold.

    statistics: the scorer's own (ErrorStatistics for co-memory, MNADStatistics for MNAD,
    FloorStatistics for the floor with ``score.perspective``; None for the plain floor,
    which reads none). threshold: the alert threshold,
    the score exceeded by ``false_alarm_rate`` of the held-out normal frames
    (``extra["normal_scores"]`` keeps their distribution; comemory.alerts sets it).
    """

    statistics: Statistics | None = None
    threshold: float | None = None
    false_alarm_rate: float | None = None
    extra: dict = field(default_factory=dict)  # score distribution, frames, date

    def median_score(self) -> float | None:
        """The held-out normal frames' median score, where calibration kept it: where the
        pictures start colouring a score map."""
        return self.extra.get("score_quantiles", {}).get("0.5")

    def to_dict(self) -> dict:
        """A flat record a checkpoint can hold (loaded with weights_only: arrays as
        tensors), every statistic of every kind named (None where another kind's), as
        checkpoints have always stored it."""
        record = {name: None for kind in _KINDS for name in kind.__dataclass_fields__}
        if self.statistics is not None:
            record.update(asdict(self.statistics))
        for name in ARRAYS:
            if record[name] is not None:
                record[name] = torch.from_numpy(record[name])
        if record["motion_model"] is not None:
            record["motion_model"] = self.statistics.motion_model.state()
        return {**self.extra, **record, "threshold": self.threshold,
                "false_alarm_rate": self.false_alarm_rate}

    @classmethod
    def from_dict(cls, record: dict) -> Calibration:
        """From ``to_dict``'s record: the statistics are of the kind whose values are set."""
        statistics = None
        for kind in _KINDS:
            names = list(kind.__dataclass_fields__)
            if record.get(names[0]) is not None:
                statistics = kind(**{name: record.get(name) for name in names})
        for name in ARRAYS:
            if getattr(statistics, name, None) is not None:
                setattr(statistics, name, np.asarray(getattr(statistics, name),
                                                      dtype=np.float32))
        if isinstance(statistics, ErrorStatistics) and statistics.per_row_speed is not None:
            statistics.per_row_speed = ErrorStatistics(**statistics.per_row_speed)
        if isinstance(statistics, ErrorStatistics) and statistics.motion_model is not None:
            statistics.motion_model = MotionModel.from_state(statistics.motion_model)
        known = {name for kind in _KINDS for name in kind.__dataclass_fields__}
        known |= {"threshold", "false_alarm_rate"}
        return cls(statistics, record.get("threshold"), record.get("false_alarm_rate"),
                   {k: v for k, v in record.items() if k not in known})


def calibrate(flow_errors: np.ndarray, frame_errors: np.ndarray,
              motion: np.ndarray | None = None) -> ErrorStatistics:
    """Eq. 3.20 (w_F, w_I: inverse means) and the z-score statistics, from the training
    frames' S_F(P~), S_I(P~) and (where given) most moving patch's flow magnitude."""
    flow_mean, frame_mean = float(np.mean(flow_errors)), float(np.mean(frame_errors))
    if not (flow_mean > 0 and frame_mean > 0):
        raise ValueError("training errors are all zero: cannot calibrate w_F, w_I")
    statistics = ErrorStatistics(1.0 / flow_mean, 1.0 / frame_mean, flow_mean,
                                 _spread(flow_errors), frame_mean, _spread(frame_errors))
    if motion is not None:
        statistics.motion_mean, statistics.motion_std = float(np.mean(motion)), _spread(motion)
    return statistics


def pixel_statistics(errors: list[VideoErrors]) -> np.ndarray:
    """(4, S, S): each pixel's mean and spread of log(flow-error map), then of
    log(frame-error map), over the frames of ``errors`` (which must keep their maps).

    Far from the camera a cyclist moves few pixels, and where people walk the network
    errs more than on the lawn: one mean and spread per pixel let the ``location``
    formula weigh an error against what that place usually shows.
    """
    statistics = []
    for field_name in ("flow_maps", "frame_maps"):
        total = total_squares = None
        count = 0
        for video in errors:  # video by video: all frames at once would be a copy in float64
            logs = np.log(getattr(video, field_name).astype(np.float64) + LOG_FLOOR)
            sums, squares = logs.sum(0), np.square(logs).sum(0)
            total = sums if total is None else total + sums
            total_squares = squares if total_squares is None else total_squares + squares
            count += len(logs)
        if not count:
            raise ValueError("no training frames to take per-pixel statistics from")
        mean = total / count
        spread = np.sqrt(np.maximum(total_squares / count - np.square(mean), 0.0))
        statistics += [mean, np.maximum(spread, PIXEL_SPREAD_FLOOR)]
    return np.stack(statistics).astype(np.float32)


def _spread(values: np.ndarray) -> float:
    """The standard deviation, never 0 (a constant part would divide by zero)."""
    return max(float(np.std(values)), 1e-12)
