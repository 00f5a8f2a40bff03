"""Score formulas: score parts (``VideoErrors``) + training statistics -> one score per frame.

One scorer per architecture, each with ``frame_scores`` (T,) and ``pixel_maps`` (T, S, S):

  CoMemoryScorer  ``score.formula`` "thesis": eq. 3.18,
                      S = log(w_F S_F(P~)) + lambda_S w_I S_I(P~);
                  "zscore": HF2-VAD's released combination, no log,
                      S = (S_F - mean_F) / std_F + w (S_I - mean_I) / std_I
                          [+ m (M - mean_M) / std_M],
                  with w = ``score.zscore_frame_weight`` (0.1 in HF2-VAD's code) and,
                  where ``score.zscore_motion_weight`` m > 0, a motion prior: M is the
                  flow magnitude of the most moving patch (the floor's score) of the
                  flow S_F is measured on. Frame scores only: maps show the errors;
                  with ``score.perspective`` (thesis and zscore) S_F and M are counted
                  against the speed training frames show at each image row
                  (``calibration.per_row_speed``): a far cyclist moves and errs in
                  fewer pixels than a near one;
                  "location": each pixel's patch-mean errors (log) z-scored with that
                  pixel's own training mean and spread,
                      z(x) = z_F(x) + lambda_S z_I(x),   S = max over pixels x of z(x),
                  so that an error counts against what that place usually shows (a
                  cyclist far away moves fewer pixels than one near; the network errs
                  more where people walk than on the lawn). Its maps are z(x).
                  With ``score.motion_model`` (objects only) a learned model of how
                  objects move (``motion_model``): "alone", a frame scores the negative
                  log-likelihood of its least likely object (no network term);
                  "added", that score z-scored on the training frames is added to the
                  zscore formula's. Maps stay the network's errors.
  MNADScorer      MNAD's mix of low PSNR and feature distance, each standardised on the
                  training frames: 0.6 x PSNR term + 0.4 x distance term.
  FloorScorer     the training-free floor: the flow magnitude of the most moving patch;
                  with ``score.perspective``, each pixel's divided by the speed training
                  frames show at its row (FloorStatistics), the largest ratio.

Each says in ``reads_maps`` whether its frame scores read the error maps, which are then
kept (``keep_maps``) wherever frames are scored. All are training-calibrated;
``comemory.evaluate.metrics.normalise`` adds the per-video normalisations of the papers and
``comemory.scoring.smoothing`` the temporal filters.
"""
from __future__ import annotations

import numpy as np

from comemory.config import SCORE_FORMULAS, ScoreConfig
from comemory.scoring.calibration import (
    Calibration,
    ErrorStatistics,
    FloorStatistics,
    MNADStatistics,
    per_row_speed,
)
from comemory.scoring.errors import LOG_FLOOR, VideoErrors
from comemory.scoring.motion_model import MotionModel

FORMULAS = SCORE_FORMULAS  # the names config checks
MNAD_PSNR_WEIGHT = 0.6  # MNAD mixes 0.6 x PSNR term + 0.4 x feature-distance term


def thesis_score(flow_error: np.ndarray, frame_error: np.ndarray, statistics: ErrorStatistics,
                 lambda_s: float) -> np.ndarray:
    """Eq. 3.18 from S_F(P~), S_I(P~) arrays (any shape)."""
    flow_term = np.log(np.maximum(statistics.flow_weight * flow_error, LOG_FLOOR))
    return flow_term + lambda_s * statistics.frame_weight * frame_error


def zscore_score(flow_error: np.ndarray, frame_error: np.ndarray, statistics: ErrorStatistics,
                 frame_weight: float, motion: np.ndarray | None = None,
                 motion_weight: float = 0.0) -> np.ndarray:
    """HF2-VAD: z-scored flow error + ``frame_weight`` x z-scored frame error (any shape),
    + ``motion_weight`` x z-scored ``motion`` where that weight is above 0."""
    flow_term = (flow_error - statistics.flow_mean) / statistics.flow_std
    frame_term = (frame_error - statistics.frame_mean) / statistics.frame_std
    score = flow_term + frame_weight * frame_term
    if motion_weight == 0:
        return score
    if motion is None or statistics.motion_mean is None:
        raise ValueError("score.zscore_motion_weight > 0 needs the motion part and its "
                         "training statistics; this checkpoint was calibrated without them: "
                         "run `comemory validate --choose` on it")
    return score + motion_weight * (motion - statistics.motion_mean) / statistics.motion_std


def location_maps(flow_maps: np.ndarray, frame_maps: np.ndarray, statistics: ErrorStatistics,
                  frame_weight: float) -> np.ndarray:
    """The ``location`` formula's z(x) from patch-mean error maps (n, S, S) -> (n, S, S)."""
    pixels = statistics.pixel_statistics
    if pixels is None:
        raise ValueError("score.formula location needs per-pixel training statistics; this "
                         "checkpoint was calibrated without them: run `comemory validate "
                         "--choose --set choose.offer_location=true` on it")
    if pixels.shape[1:] != flow_maps.shape[1:]:
        raise ValueError(f"per-pixel statistics are {pixels.shape[1]} x "
                         f"{pixels.shape[2]}, the error maps {flow_maps.shape[1]} x "
                         f"{flow_maps.shape[2]}: calibrate again at this image size")
    flow_mean, flow_spread, frame_mean, frame_spread = pixels
    flow_z = (np.log(flow_maps.astype(np.float32) + LOG_FLOOR) - flow_mean) / flow_spread
    if frame_weight == 0:
        return flow_z
    frame_z = (np.log(frame_maps.astype(np.float32) + LOG_FLOOR) - frame_mean) / frame_spread
    return flow_z + frame_weight * frame_z


class CoMemoryScorer:
    """Scores of the co-memory network by ``config.formula`` (see the module), from its
    ErrorStatistics."""

    Statistics = ErrorStatistics

    def __init__(self, config: ScoreConfig):
        if config.formula not in FORMULAS:
            raise ValueError(f"score.formula must be one of {FORMULAS}, got {config.formula!r}")
        self.config = config

    @property
    def reads_maps(self) -> bool:
        return self.config.formula == "location"

    def frame_scores(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        if self.config.motion_model == "alone":
            return self._least_likely_objects(errors, self._motion_model(calibration))
        if self.config.formula == "location":
            maps = self.pixel_maps(errors, calibration)
            return maps.reshape(len(maps), -1).max(1).astype(np.float64)
        parts, statistics = self._parts(errors, calibration)
        network = self._combine(parts.flow_error, parts.frame_error, statistics, parts.motion,
                                self.config.zscore_motion_weight)
        if self.config.motion_model == "off":
            return network
        model = self._motion_model(calibration)
        motion = self._least_likely_objects(errors, model)
        return network + (motion - model.frame_mean) / model.frame_spread

    @staticmethod
    def _least_likely_objects(errors: VideoErrors, model: MotionModel) -> np.ndarray:
        """(n,) each frame's least likely object under ``model`` (a frame with no object:
        the quietest training frames' score)."""
        return model.frame_scores(model.score(errors.motion_vectors.astype(np.float64)),
                                  errors.objects_per_frame())

    @staticmethod
    def _motion_model(calibration: Calibration) -> MotionModel:
        model = own_statistics(calibration, ErrorStatistics).motion_model
        if model is None:
            raise ValueError("score.motion_model needs a motion model fitted on training "
                             "objects; this checkpoint was calibrated without one (whole "
                             "frames, or too few objects): run `comemory validate --choose "
                             "--set choose.offer_motion_model=true` on an objects checkpoint")
        return model

    def aligned_scores(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        """Each term credited to the frame it describes: the flow (and motion) terms of the
        sample that predicts frame t+1 measure the motion from I_{t-1} to I_t, so frame t
        gets them, beside the frame term of frame t's own prediction (the last frame keeps
        its own flow term). Needs the next frame: offline only, an ablation. Not for the
        ``location`` formula, whose maximum over pixels does not split into the two terms."""
        if self.config.formula == "location":
            raise ValueError("the location formula's terms cannot be aligned apart")
        parts, statistics = self._parts(errors, calibration)
        flow_term = self._combine(parts.flow_error, np.zeros_like(parts.frame_error),
                                  statistics, parts.motion, self.config.zscore_motion_weight)
        frame_term = self.frame_scores(errors, calibration) - flow_term
        shifted = np.concatenate([flow_term[1:], flow_term[-1:]])
        return shifted + frame_term

    def pixel_maps(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        """The formula's error terms at every patch, (n, S, S): where the network was
        wrong (the motion prior, a frame-level term, is left out; with
        ``score.perspective`` each row's flow error counted against its speed)."""
        if errors.flow_maps is None or errors.frame_maps is None:
            raise ValueError(f"{errors.name}: no error maps kept; score it with "
                             "keep_maps=True")
        if self.config.formula == "location":
            return location_maps(errors.flow_maps, errors.frame_maps,
                                 own_statistics(calibration, ErrorStatistics),
                                 self.config.lambda_s)
        flow_maps = errors.flow_maps.astype(np.float32)
        statistics, speeds = self._statistics(calibration)
        if speeds is not None:  # each row's flow error against the square of its speed
            flow_maps = flow_maps / np.square(speeds)[None, :, None]
        return self._combine(flow_maps, errors.frame_maps.astype(np.float32), statistics,
                             None, 0.0)

    def _parts(self, errors: VideoErrors, calibration: Calibration
               ) -> tuple[VideoErrors, ErrorStatistics]:
        """The score parts and statistics the formula reads: as measured, or with
        ``score.perspective`` counted against each row's speed."""
        statistics, speeds = self._statistics(calibration)
        return (errors if speeds is None else per_row_speed(errors, speeds)), statistics

    def _statistics(self, calibration: Calibration
                    ) -> tuple[ErrorStatistics, np.ndarray | None]:
        """The statistics the formula reads and the row speeds (S,) it divides by: the
        plain ones and None, or with ``score.perspective`` those per row speed."""
        statistics = own_statistics(calibration, ErrorStatistics)
        if not self.config.perspective:
            return statistics, None
        if statistics.per_row_speed is None:
            raise ValueError("score.perspective needs the speed of each row on training "
                             "frames; this checkpoint was calibrated without them: run "
                             "`comemory validate --choose --set score.perspective=true` on it")
        return statistics.per_row_speed, statistics.motion_row_speeds

    def _combine(self, flow: np.ndarray, frame: np.ndarray, statistics: ErrorStatistics,
                 motion: np.ndarray | None, motion_weight: float) -> np.ndarray:
        if self.config.formula == "zscore":
            return zscore_score(flow, frame, statistics, self.config.zscore_frame_weight,
                                motion, motion_weight)
        return thesis_score(flow, frame, statistics, self.config.lambda_s)


class MNADScorer:
    """MNAD's score on terms standardised by its MNADStatistics; its maps are the frame
    error."""

    reads_maps = False
    Statistics = MNADStatistics

    def __init__(self, config: ScoreConfig):
        self.config = config

    def frame_scores(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        statistics = own_statistics(calibration, MNADStatistics)
        psnr_term = (statistics.psnr_mean - errors.psnr) / statistics.psnr_std
        distance_term = (errors.distance - statistics.distance_mean) / statistics.distance_std
        return MNAD_PSNR_WEIGHT * psnr_term + (1 - MNAD_PSNR_WEIGHT) * distance_term

    def pixel_maps(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        return errors.frame_maps.astype(np.float32)


class FloorScorer:
    """The training-free floor: flow magnitude; needs no statistics. With
    ``score.perspective`` each pixel's patch-mean magnitude is divided by the speed the
    training frames show at its row (FloorStatistics), and the frame scores its largest
    ratio: motion counted against what that distance from the camera usually shows."""

    Statistics = FloorStatistics
    # frame t+1 scores the flow from I_t to I_{t+1}; the first two frames of a video are
    # skipped, as a two-frame network skips them, so that both score the same frames
    PAST_FRAMES = 2

    def __init__(self, config: ScoreConfig):
        self.config = config

    @property
    def reads_maps(self) -> bool:
        return self.config.perspective

    def frame_scores(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        if not self.config.perspective:
            return np.asarray(errors.flow_error, dtype=np.float64)
        maps = self.pixel_maps(errors, calibration)
        return maps.reshape(len(maps), -1).max(1).astype(np.float64)

    def pixel_maps(self, errors: VideoErrors, calibration: Calibration) -> np.ndarray:
        if errors.flow_maps is None:
            raise ValueError(f"{errors.name}: no flow maps kept; score it with keep_maps=True")
        maps = errors.flow_maps.astype(np.float32)
        if not self.config.perspective:
            return maps
        if not isinstance(calibration.statistics, FloorStatistics):
            raise ValueError("score.perspective needs the speed of each row on training "
                             "frames: calibrate the floor on the training split first "
                             "(validate_floor, or evaluate_floor without a calibration)")
        speeds = calibration.statistics.row_speeds
        if len(speeds) != maps.shape[1]:
            raise ValueError(f"the row speeds cover {len(speeds)} rows, the maps "
                             f"{maps.shape[1]}: calibrate again at this image size")
        return maps / speeds[None, :, None]


Scorer = CoMemoryScorer | MNADScorer | FloorScorer
SCORERS = {"comemory": CoMemoryScorer, "mnad": MNADScorer, "flow_floor": FloorScorer}


def scorer_for(architecture: str, config: ScoreConfig) -> Scorer:
    """The scorer of ``architecture`` ("comemory", "mnad" or "flow_floor")."""
    return SCORERS[architecture](config)


def score_statistics(errors: list[VideoErrors], architecture: str) -> Calibration:
    """A calibration holding the statistics the architecture's scorer reads, fitted on its
    training frames' errors (for the floor: the row speeds where its maps were kept for
    ``score.perspective``, else none); no threshold yet."""
    return Calibration(SCORERS[architecture].Statistics.fit(errors))


def own_statistics(calibration: Calibration, kind: type) -> ErrorStatistics | MNADStatistics:
    """``calibration``'s statistics if they are of ``kind``, else a ValueError saying so."""
    if not isinstance(calibration.statistics, kind):
        found = type(calibration.statistics).__name__
        raise ValueError(f"this scorer reads {kind.__name__}, the calibration holds {found}: "
                         "a checkpoint of another architecture?")
    return calibration.statistics


def mnad_scores_video_minmax(errors: VideoErrors) -> np.ndarray:
    """MNAD's own protocol: each term min-max normalised over the video, then mixed. Reads
    the whole video: evaluation only."""
    def minmax(values: np.ndarray) -> np.ndarray:
        span = values.max() - values.min()
        return (values - values.min()) / span if span > 0 else np.zeros_like(values)

    return (MNAD_PSNR_WEIGHT * (1 - minmax(errors.psnr))
            + (1 - MNAD_PSNR_WEIGHT) * minmax(errors.distance))
