"""Training statistics that turn score parts into a score, and the alert threshold.

Every score of ``comemory.scoring.formulas`` is "training-calibrated": it reads these
statistics of the training frames only, never the test video's own, so it can run live.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from comemory.scoring.errors import VideoErrors


@dataclass
class Calibration:
    """Statistics of the training frames, stored in the checkpoint.

    flow_weight, frame_weight: w_F and w_I of eq. 3.20 (co-memory).
    flow_mean/std, frame_mean/std, motion_mean/std: of S_F(P~), S_I(P~) and the most
    moving patch's flow magnitude, for the ``zscore`` formula.
    psnr_mean/std, distance_mean/std: standardise MNAD's two score terms.
    threshold: the alert threshold, the score exceeded by ``false_alarm_rate`` of the
    held-out normal frames (``extra["normal_scores"]`` keeps their distribution).
    """

    flow_weight: float | None = None
    frame_weight: float | None = None
    flow_mean: float | None = None
    flow_std: float | None = None
    frame_mean: float | None = None
    frame_std: float | None = None
    motion_mean: float | None = None
    motion_std: float | None = None
    psnr_mean: float | None = None
    psnr_std: float | None = None
    distance_mean: float | None = None
    distance_std: float | None = None
    threshold: float | None = None
    false_alarm_rate: float | None = None
    extra: dict = field(default_factory=dict)  # score distribution, frames, date

    def to_dict(self) -> dict:
        record = asdict(self)
        return {**record.pop("extra"), **record}

    @classmethod
    def from_dict(cls, record: dict) -> Calibration:
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(**{k: v for k, v in record.items() if k in names},
                   extra={k: v for k, v in record.items() if k not in names})


def calibrate(flow_errors: np.ndarray, frame_errors: np.ndarray,
              motion: np.ndarray | None = None) -> Calibration:
    """Eq. 3.20 (w_F, w_I: inverse means) and the z-score statistics, from the training
    frames' S_F(P~), S_I(P~) and (where given) most moving patch's flow magnitude."""
    flow_mean, frame_mean = float(np.mean(flow_errors)), float(np.mean(frame_errors))
    if not (flow_mean > 0 and frame_mean > 0):
        raise ValueError("training errors are all zero: cannot calibrate w_F, w_I")
    calibration = Calibration(1.0 / flow_mean, 1.0 / frame_mean, flow_mean,
                              _spread(flow_errors), frame_mean, _spread(frame_errors))
    if motion is not None:
        calibration.motion_mean, calibration.motion_std = float(np.mean(motion)), _spread(motion)
    return calibration


def score_statistics(errors: list[VideoErrors], architecture: str) -> Calibration:
    """The statistics the architecture's scores read, from its training frames' errors:
    eq. 3.20 and z-score statistics (co-memory), PSNR and distance mean and spread (MNAD),
    nothing for the training-free floor."""
    if architecture == "flow_floor":
        return Calibration()
    if architecture == "mnad":
        psnr = np.concatenate([e.psnr for e in errors])
        distance = np.concatenate([e.distance for e in errors])
        return Calibration(psnr_mean=float(psnr.mean()), psnr_std=_spread(psnr),
                           distance_mean=float(distance.mean()),
                           distance_std=_spread(distance))
    motion = (np.concatenate([e.motion for e in errors])
              if all(e.motion is not None for e in errors) else None)
    return calibrate(np.concatenate([e.flow_error for e in errors]),
                     np.concatenate([e.frame_error for e in errors]), motion)


def _spread(values: np.ndarray) -> float:
    """The standard deviation, never 0 (a constant part would divide by zero)."""
    return max(float(np.std(values)), 1e-12)
