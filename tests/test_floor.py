"""The floor: with a perspective learned from motion (``score.perspective``: each row's
normal speed from training frames, and motion counted against it), and as a detector
(``model.architecture: flow_floor``: a checkpoint without a network that detect, serve
and evaluate read)."""
import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from comemory.checkpoint import load_checkpoint
from comemory.config import ScoreConfig
from comemory.detect import Detector
from comemory.errors import CheckpointError
from comemory.evaluate.evaluation import evaluate, evaluate_floor, floor_calibration
from comemory.export import export_model
from comemory.scoring import Calibration, VideoErrors, scorer_for
from comemory.scoring.calibration import FloorStatistics, row_speeds
from comemory.serve import EventStore
from comemory.serve.database import EventFilter
from comemory.train.loop import train
from tests.conftest import small_config
from tests.test_serve import served_to_the_end

SIZE = 32


def walker_maps(frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, S, S) patch-mean flow magnitudes of one walker a frame, at a random row,
    moving as fast as a walker there does: 0.1 pixels a frame per row below the top (a
    camera looking down a walkway), nothing elsewhere."""
    maps = np.zeros((frames, SIZE, SIZE), np.float32)
    for t, row in enumerate(rng.integers(4, SIZE - 2, frames)):
        maps[t, row - 1:row + 2, 10:14] = 0.1 * row * rng.uniform(0.8, 1.0)
    return maps


def errors_of(name: str, maps: np.ndarray) -> VideoErrors:
    return VideoErrors(name, np.arange(len(maps)), flow_error=maps.max((1, 2)),
                       flow_maps=maps.astype(np.float16))


def test_row_speeds_follow_the_rows_where_things_move():
    rows = np.arange(40, dtype=float)
    measured = np.where(rows < 10, 0.0, 0.05 * rows)  # nothing moves in the top quarter
    speeds = row_speeds(measured)
    assert np.allclose(speeds[10:], measured[10:], rtol=1e-3)  # the line through them
    assert speeds.min() >= 0.5 - 1e-6  # the top rows take the slowest moving row's speed


def test_a_far_cyclist_outscores_a_near_walker_only_with_perspective():
    rng = np.random.default_rng(0)
    training = [errors_of(f"{v:02d}", walker_maps(200, rng)) for v in range(3)]
    calibration = Calibration(FloorStatistics.fit(training))
    speeds = calibration.statistics.row_speeds
    # near rows move faster: 25 / 8 times in truth
    assert speeds.shape == (SIZE,) and speeds[25] > 2 * speeds[8]
    test = np.zeros((2, SIZE, SIZE), np.float32)
    test[0, 5:8, 10:14] = 3 * 0.1 * 6  # a cyclist far away at three times a walker's speed
    test[1, 26:29, 10:14] = 0.1 * 27  # a walker near the camera at a walker's speed
    plain = scorer_for("flow_floor", ScoreConfig())
    perspective = scorer_for("flow_floor", ScoreConfig(perspective=True))
    assert not plain.reads_maps and perspective.reads_maps
    far, near = plain.frame_scores(errors_of("test", test), calibration)
    assert near > far  # in pixels the near walker moves more
    far, near = perspective.frame_scores(errors_of("test", test), calibration)
    assert far > 2 * near  # against what each row usually shows, the cyclist stands out


def test_row_speeds_survive_the_checkpoint_record():
    speeds = np.linspace(0.2, 2.0, SIZE).astype(np.float32)
    restored = Calibration.from_dict(Calibration(FloorStatistics(speeds), 1.5, 0.01).to_dict())
    assert isinstance(restored.statistics, FloorStatistics)
    assert np.array_equal(restored.statistics.row_speeds, speeds) and restored.threshold == 1.5


def test_perspective_without_row_speeds_says_what_to_do():
    maps = walker_maps(5, np.random.default_rng(1))
    scorer = scorer_for("flow_floor", ScoreConfig(perspective=True))
    try:
        scorer.frame_scores(errors_of("01", maps), Calibration())
    except ValueError as error:
        assert "calibrate the floor" in str(error)
    else:
        raise AssertionError("scored without row speeds")


def test_floor_with_perspective_end_to_end(scene, tmp_path):
    config = small_config("score.perspective=true")
    calibration = floor_calibration(config, scene, tmp_path / "cache", "frames")
    speeds = calibration.statistics.row_speeds
    assert speeds.shape == (config.model.network_size,) and (speeds > 0).all()
    metrics = evaluate_floor(config, scene, tmp_path / "eval", tmp_path / "cache")
    assert metrics["architecture"] == "flow_floor (training-calibrated)"
    plain = evaluate_floor(replace(config, score=replace(config.score, perspective=False)),
                           scene, tmp_path / "plain", tmp_path / "cache")
    assert plain["architecture"] == "flow_floor (training-free)"
    # the synthetic scene has no perspective (its walkers move alike on every row): the
    # fast object (test video 01) stays as clear as the plain floor finds it
    for folder in ("eval", "plain"):
        with open(tmp_path / folder / "scores.csv") as handle:
            rows = [r for r in csv.DictReader(handle) if r["video"] == "01"]
        assert roc_auc_score([int(r["label"]) for r in rows],
                             [float(r["flow_floor_score"]) for r in rows]) > 0.8


FLOOR = ("model.architecture=flow_floor", "score.perspective=true")


@pytest.fixture(scope="module")
def floor_run(scene, tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, cache) of the floor per row speed trained as a detector on ``scene``."""
    run, cache = tmp_path_factory.mktemp("floor"), tmp_path_factory.mktemp("cache")
    return train(small_config(*FLOOR), scene, run / "train", cache), cache


def test_the_floor_as_a_detector_scores_live_as_evaluate_does(scene, floor_run, tmp_path):
    config = small_config(*FLOOR)
    checkpoint, cache = floor_run
    run = checkpoint.parent
    state = load_checkpoint(checkpoint)
    assert state["model"] == {} and state["calibration"]["threshold"] is not None
    assert len(state["calibration"]["row_speeds"]) == config.model.network_size
    assert train(config, scene, run, cache, resume=True) == checkpoint  # finished: kept
    with pytest.raises(CheckpointError, match="already here"):
        train(config, scene, run, cache)
    with pytest.raises(CheckpointError, match="no network to export"):
        export_model(checkpoint, tmp_path / "floor.onnx")

    metrics = evaluate(checkpoint, scene, tmp_path / "eval", cache)
    assert metrics["checkpoint"] == str(checkpoint)
    assert metrics["architecture"] == "flow_floor (training-calibrated)"
    with open(tmp_path / "eval" / "scores.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["video"] == "01"]
    column = ("flow_floor_causal_score" if "flow_floor_causal_score" in rows[0]
              else "flow_floor_score")
    offline = {int(r["frame"]): float(r[column]) for r in rows}
    results = list(Detector.from_checkpoint(checkpoint).run(
        scene / "testing" / "frames" / "01", progress=False))
    assert all(r.score is None for r in results[:2])  # the flow into frame 2 is the first
    live = {r.index: r.score for r in results[2:]}
    assert live.keys() == offline.keys()
    frames = sorted(live)
    np.testing.assert_allclose([live[f] for f in frames], [offline[f] for f in frames],
                               rtol=1e-4, atol=1e-4)
    # the fast object (test video 01) is what the floor sees
    assert roc_auc_score([int(r["label"]) for r in rows], [float(r[column]) for r in rows]) > 0.8


def test_serve_runs_the_floor_as_detect_does(scene, floor_run, tmp_path):
    """Two cameras on the floor's checkpoint, batched: each frame scores as ``detect``
    scores it alone, and the fast object raises an event."""
    checkpoint, _ = floor_run
    service = served_to_the_end(checkpoint, scene, tmp_path / "serve")
    alone = [r.score for r in Detector.from_checkpoint(checkpoint).run(
        scene / "testing" / "frames" / "01", progress=False) if r.score is not None]
    together = [score for _, score in service.camera("street").view.curve]
    np.testing.assert_allclose(together, alone[-len(together):], rtol=1e-4, atol=1e-4)
    assert EventStore(tmp_path / "serve" / "events.db").events(EventFilter(camera="street"))
