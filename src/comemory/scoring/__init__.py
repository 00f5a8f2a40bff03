"""From model outputs to anomaly scores, in three steps, one module each:

errors       patch errors and inference: S_F(P~), S_I(P~), PSNR, maps (eq. 3.19)
calibration  training statistics (eq. 3.20, z-scores, per-pixel, MNAD's) and the alert
             threshold
formulas     one scorer per architecture: eq. 3.18 ("thesis"), "zscore", "location", MNAD,
             the floor
smoothing    causal (live) and centred (offline) temporal filters
"""
from comemory.scoring.calibration import Calibration, calibrate, score_statistics
from comemory.scoring.errors import (
    FrameErrors,
    FrameScorer,
    VideoErrors,
    flow_floor_errors,
    frame_errors,
    video_errors,
    video_errors_per_patch,
)
from comemory.scoring.formulas import (
    FORMULAS,
    Scorer,
    mnad_scores_video_minmax,
    scorer_for,
    thesis_score,
    zscore_score,
)
from comemory.scoring.smoothing import (
    SMOOTHINGS,
    CausalMean,
    causal_mean,
    centred_gaussian,
    smooth,
)

__all__ = ["FORMULAS", "SMOOTHINGS", "Calibration", "CausalMean", "FrameErrors", "FrameScorer",
           "Scorer", "VideoErrors", "calibrate", "causal_mean", "centred_gaussian",
           "flow_floor_errors", "frame_errors", "mnad_scores_video_minmax", "score_statistics",
           "scorer_for", "smooth", "thesis_score", "video_errors", "video_errors_per_patch",
           "zscore_score"]
