"""From model outputs to anomaly scores, in three steps, one module each:

errors       patch errors of one frame: S_F(P~), S_I(P~), PSNR, maps (eq. 3.19)
offline      whole videos through the model (or the floor), in batches
calibration  each scorer's own training statistics (ErrorStatistics: eq. 3.20, z-scores,
             per-pixel; MNADStatistics) and the threshold set on them
formulas     one scorer per architecture: eq. 3.18 ("thesis"), "zscore", "location", MNAD,
             the floor
smoothing    causal (live) and centred (offline) temporal filters
"""
from comemory.lazy import lazy_exports
from comemory.scoring.calibration import (
    Calibration,
    ErrorStatistics,
    MNADStatistics,
    calibrate,
)
from comemory.scoring.errors import FrameErrors, FrameScorer, VideoErrors, frame_errors
from comemory.scoring.formulas import (
    FORMULAS,
    FloorScorer,
    Scorer,
    mnad_scores_video_minmax,
    score_statistics,
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

# imported on first use: live detection needs none of the offline loops (nor their
# DataLoader)
__getattr__ = lazy_exports(__name__, {
    name: "comemory.scoring.offline"
    for name in ("flow_floor_errors", "video_errors", "video_errors_per_patch")})
__all__ = ["FORMULAS", "SMOOTHINGS", "Calibration", "CausalMean", "ErrorStatistics",
           "FloorScorer", "MNADStatistics", "FrameErrors", "FrameScorer",
           "Scorer", "VideoErrors", "calibrate", "causal_mean", "centred_gaussian",
           "flow_floor_errors", "frame_errors", "mnad_scores_video_minmax", "score_statistics",
           "scorer_for", "smooth", "thesis_score", "video_errors", "video_errors_per_patch",
           "zscore_score"]
