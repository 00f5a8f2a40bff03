"""The co-memory network with a perspective learned from motion (``score.perspective``):
each image row's normal speed from the training frames, the flow error S_F counted against
its square and the motion prior against it, live as offline."""
import csv

import numpy as np
import pytest
import torch

from comemory.checkpoint import load_checkpoint
from comemory.cli import main
from comemory.config import Config, ScoreConfig
from comemory.config.checks import problems
from comemory.detect import Detector
from comemory.evaluate.evaluation import evaluate
from comemory.scoring import Calibration, VideoErrors, frame_errors, scorer_for
from comemory.scoring.calibration import ErrorStatistics
from tests.test_detect import FAST_VIDEO, live_column

ROWS = 32


def walker_rows(frames: int, rng: np.random.Generator) -> VideoErrors:
    """Score parts of frames with one walker each, at a random row, moving as fast as a
    walker there does (0.1 pixels a frame per row below the top) and mispredicted in
    proportion to its speed (a squared end-point error: its square)."""
    motion = np.zeros((frames, ROWS), np.float32)
    rows = rng.integers(4, ROWS - 2, frames)
    speed = 0.1 * rows * rng.uniform(0.8, 1.0, frames)
    motion[np.arange(frames), rows] = speed
    flow_error = np.square(0.3 * motion)
    return VideoErrors("walkers", np.arange(frames), flow_error=flow_error.max(1),
                       frame_error=rng.uniform(0.01, 0.02, frames), motion=motion.max(1),
                       motion_rows=motion, flow_error_rows=flow_error)


def one_object(row: int, speed: float) -> VideoErrors:
    motion = np.zeros((1, ROWS), np.float32)
    motion[0, row] = speed
    flow_error = np.square(0.3 * motion)
    return VideoErrors("test", np.array([2]), flow_error=flow_error.max(1),
                       frame_error=np.array([0.015]), motion=motion.max(1),
                       motion_rows=motion, flow_error_rows=flow_error)


def test_a_far_fast_object_outscores_a_near_walker_only_with_perspective():
    rng = np.random.default_rng(0)
    calibration = Calibration(ErrorStatistics.fit([walker_rows(300, rng) for _ in range(2)]))
    statistics = calibration.statistics
    assert statistics.motion_row_speeds.shape == (ROWS,)
    assert statistics.motion_row_speeds[25] > 2 * statistics.motion_row_speeds[8]
    far, near = one_object(6, 3 * 0.1 * 6), one_object(27, 0.1 * 27)  # 3x a walker far away
    for formula, weights in (("thesis", {}), ("zscore", {"zscore_motion_weight": 1.0})):
        plain = scorer_for("comemory", ScoreConfig(formula=formula, **weights))
        counted = scorer_for("comemory", ScoreConfig(formula=formula, perspective=True,
                                                     **weights))
        assert plain.frame_scores(near, calibration) > plain.frame_scores(far, calibration)
        assert counted.frame_scores(far, calibration) > counted.frame_scores(near, calibration)


def test_row_parts_are_each_rows_largest_patch_mean():
    rng = np.random.default_rng(1)
    true_flow = torch.from_numpy(rng.normal(size=(2, 2, 16, 16)).astype(np.float32))
    pred_flow = true_flow + 0.1 * torch.from_numpy(rng.normal(size=(2, 2, 16, 16))
                                                   .astype(np.float32))
    frames = torch.zeros(2, 1, 16, 16)
    errors = frame_errors(pred_flow, true_flow, frames, frames, ScoreConfig(patch_size=4))
    assert errors.motion_rows.shape == errors.flow_error_rows.shape == (2, 16)
    assert torch.equal(errors.flow_error_rows, errors.flow_map.amax(2))
    # the fastest row's largest patch-centred mean is at least the best strided patch's
    assert torch.all(errors.motion_rows.amax(1) >= errors.motion - 1e-6)


def test_statistics_per_row_speed_survive_a_checkpoint(tmp_path):
    calibration = Calibration(ErrorStatistics.fit([walker_rows(100, np.random.default_rng(2))]),
                              threshold=2.0)
    path = tmp_path / "record.pt"
    torch.save(calibration.to_dict(), path)
    restored = Calibration.from_dict(torch.load(path, weights_only=True)).statistics
    original = calibration.statistics
    assert isinstance(restored, ErrorStatistics)
    np.testing.assert_array_equal(restored.motion_row_speeds, original.motion_row_speeds)
    assert restored.per_row_speed == original.per_row_speed


def test_perspective_without_row_statistics_says_what_to_do():
    errors = walker_rows(50, np.random.default_rng(3))
    old = Calibration(ErrorStatistics.fit([VideoErrors(
        "old", errors.frames, flow_error=errors.flow_error, frame_error=errors.frame_error)]))
    with pytest.raises(ValueError, match="validate --choose --set score.perspective=true"):
        scorer_for("comemory", ScoreConfig(perspective=True)).frame_scores(errors, old)


def test_config_refuses_perspective_where_it_has_no_rows():
    config = Config()
    config.score.perspective = True
    assert problems(config) == []
    config.model.input = "objects"
    assert any("needs whole frames" in p for p in problems(config))
    config.model.input, config.score.formula = "frames", "location"
    assert any("location formula" in p for p in problems(config))


def test_detect_scores_the_network_per_row_speed_live_as_evaluate_does(trained_run, tmp_path):
    """Row speeds set by `validate` reach `detect`: the live scores equal the offline ones
    and differ from the checkpoint's plain scores."""
    checkpoint, data, cache = trained_run
    copy = tmp_path / "checkpoint.pt"
    copy.write_bytes(checkpoint.read_bytes())
    assert main(["validate", "--checkpoint", str(copy), "--data", str(data), "--cache-dir",
                 str(cache), "--choose", "--set", "score.perspective=true", "--set",
                 "score.formula=zscore", "--set", "score.zscore_motion_weight=1"]) == 0
    state = load_checkpoint(copy)
    assert state["config"]["score"]["perspective"] is True
    assert tuple(state["calibration"]["motion_row_speeds"].shape) == (64,)  # tiny: 64 x 64
    evaluate(copy, data, tmp_path / "eval", cache)
    with open(tmp_path / "eval" / "scores.csv") as handle:
        offline = {int(r["frame"]): float(r[live_column(r)])
                   for r in csv.DictReader(handle) if r["video"] == FAST_VIDEO}
    video = data / "testing" / "frames" / FAST_VIDEO
    live = {r.index: r.score for r in Detector.from_checkpoint(copy).run(video, progress=False)
            if r.score is not None}
    frames = sorted(offline)
    assert sorted(live) == frames
    np.testing.assert_allclose([live[f] for f in frames], [offline[f] for f in frames],
                               rtol=1e-3, atol=1e-3)
    plain = [r.score for r in Detector.from_checkpoint(checkpoint).run(video, progress=False)
             if r.score is not None]
    assert not np.allclose(plain, [live[f] for f in frames], atol=0.1)
