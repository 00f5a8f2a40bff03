"""The learned motion model: each object's motion vector, a Gaussian mixture of the
training objects' vectors that finds the unusual ones, and the scores that read it
(``score.motion_model``)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from comemory.config import ScoreConfig
from comemory.data.objects import Box
from comemory.errors import ConfigError
from comemory.scoring import Calibration, VideoErrors, calibrate
from comemory.scoring.formulas import CoMemoryScorer
from comemory.scoring.motion_model import DIRECTION_BINS, MotionModel, motion_vector
from comemory.scoring.objects import frame_errors_of_objects
from comemory.train.choice import _formulas, pick_setting
from tests.conftest import small_config


def uniform_flow(shape: tuple[int, int], u: float, v: float) -> np.ndarray:
    flow = np.zeros((*shape, 2), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


def test_motion_vector_bins_the_flow_by_direction_and_divides_by_the_box_height():
    flow = uniform_flow((40, 60), 3.0, 0.0)  # everything moves 3 px to the right
    vector = motion_vector(flow, Box(10, 10, 10, 20))
    rightwards = DIRECTION_BINS // 2  # angle 0 lies in the bin after -pi .. 0
    assert vector[rightwards] == pytest.approx(3.0 / 20)
    assert np.delete(vector, rightwards).sum() == 0
    up = motion_vector(uniform_flow((40, 60), 0.0, -2.0), Box(10, 10, 10, 20))
    assert up.argmax() != rightwards and up.max() == pytest.approx(2.0 / 20)
    with_position = motion_vector(flow, Box(10, 10, 10, 20), frame_shape=(40, 60))
    np.testing.assert_allclose(with_position[-2:], [15 / 60, 20 / 40])


def test_a_near_walker_and_a_far_one_at_the_same_pace_look_alike():
    far = motion_vector(uniform_flow((100, 100), 1.0, 0.0), Box(0, 0, 5, 10))
    near = motion_vector(uniform_flow((100, 100), 3.0, 0.0), Box(0, 0, 15, 30))
    np.testing.assert_allclose(far, near)


def normal_walkers(rng: np.random.Generator, count: int) -> np.ndarray:
    """Vectors of walkers going left or right at a walking pace, with some noise."""
    vectors = np.abs(rng.normal(0.0, 0.002, (count, DIRECTION_BINS)))
    direction = rng.choice([0, DIRECTION_BINS // 2], count)
    vectors[np.arange(count), direction] += rng.normal(0.08, 0.01, count)
    return vectors


def test_the_mixture_finds_objects_unlike_the_training_ones():
    rng = np.random.default_rng(0)
    model = MotionModel(components=3).fit(normal_walkers(rng, 400))
    usual = model.score(normal_walkers(rng, 50))
    right = DIRECTION_BINS // 2
    cyclist = np.full((1, DIRECTION_BINS), 0.001)
    cyclist[0, right] = 0.4  # rightwards, five times a walker's pace
    diagonal = np.full((1, DIRECTION_BINS), 0.001)
    diagonal[0, 1] = 0.08  # a walker's pace, in a direction nobody took
    assert model.score(cyclist)[0] > usual.max() and model.score(diagonal)[0] > usual.max()


def test_a_frame_scores_its_most_unusual_object_and_an_empty_frame_the_quiet_score():
    rng = np.random.default_rng(1)
    training = normal_walkers(rng, 300)
    model = MotionModel(components=2).fit(training, [3] * 100)
    quiet_frames = model.frame_scores(model.score(training), [3] * 100)
    assert model.quiet == pytest.approx(np.quantile(quiet_frames, 0.01))
    frames = model.frame_scores(np.array([1.0, 5.0, 2.0, 7.0]), [2, 0, 2])
    np.testing.assert_allclose(frames, [5.0, model.quiet, 7.0])


def test_the_model_says_what_it_lacks():
    with pytest.raises(ValueError, match="too few"):
        MotionModel(components=5).fit(np.zeros((4, DIRECTION_BINS)))
    with pytest.raises(ValueError, match="not fitted"):
        MotionModel().score(np.zeros((1, DIRECTION_BINS)))


def test_only_the_objects_own_pixels_count_where_its_mask_is_given():
    flow = np.zeros((40, 60, 2), np.float32)
    flow[10:20, 10:15, 0] = 4.0  # the object, a quarter of its box, moves 4 px right
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 10:15] = 255
    box, right = Box(10, 10, 20, 10), DIRECTION_BINS // 2
    assert motion_vector(flow, box)[right] == pytest.approx(4.0 / 4 / 10)  # diluted
    assert motion_vector(flow, box, foreground=mask)[right] == pytest.approx(4.0 / 10)


def test_a_frame_keeps_every_found_objects_motion_by_frame_without_the_scene():
    rows = {"frames": np.array([3, 2, 2, 2, 3]),
            "boxes": np.array([[0, 0, 8, 8], [0, 0, 8, 8], [0, 0, 4, 4], [4, 4, 4, 4],
                               [1, 1, 2, 2]]),
            "flow_error": np.array([0.1, 0.2, 0.9, 0.5, 0.3]),
            "frame_error": np.ones(5), "psnr": np.ones(5),
            "motion_vectors": np.arange(5 * DIRECTION_BINS, dtype=float).reshape(5, -1)}
    errors = frame_errors_of_objects("v", rows, size=8)
    assert errors.frames.tolist() == [2, 3]
    # frame 2's two found objects (rows 3 and 2, by flow error), then frame 3's one
    np.testing.assert_array_equal(errors.motion_vectors[:, 0], [24.0, 16.0, 32.0])
    assert errors.vector_frames.tolist() == [0, 0, 1]
    assert errors.objects_per_frame().tolist() == [2, 1]


def walker_calibration(rng: np.random.Generator) -> Calibration:
    """Statistics of a network whose errors are all 1, and a motion model of walkers."""
    statistics = calibrate(np.ones(10), np.ones(10))
    statistics.flow_std = statistics.frame_std = 1.0
    statistics.motion_model = MotionModel(components=2).fit(normal_walkers(rng, 300))
    return Calibration(statistics)


def test_the_motion_model_scores_a_frame_alone_or_added_to_the_network():
    rng = np.random.default_rng(2)
    calibration = walker_calibration(rng)
    model = calibration.statistics.motion_model
    cyclist = np.full(DIRECTION_BINS, 0.001)
    cyclist[DIRECTION_BINS // 2] = 0.4
    walkers = normal_walkers(rng, 3)
    errors = VideoErrors("v", np.array([5, 6, 7]), flow_error=np.array([1.0, 1.0, 3.0]),
                         frame_error=np.ones(3), motion_vectors=np.vstack([walkers, cyclist]),
                         vector_frames=np.array([0, 0, 0, 1]))  # frame 7 holds no object
    alone = CoMemoryScorer(ScoreConfig(motion_model="alone")).frame_scores(errors, calibration)
    likelihoods = model.score(np.vstack([walkers, cyclist]))
    np.testing.assert_allclose(alone, [likelihoods[:3].max(), likelihoods[3], model.quiet])
    assert alone[1] > alone[0]  # the cyclist is the least likely
    added = CoMemoryScorer(ScoreConfig(formula="zscore", zscore_frame_weight=0.0,
                                       motion_model="added")).frame_scores(errors, calibration)
    network = np.array([0.0, 0.0, 2.0])  # (S_F - 1) / 1
    np.testing.assert_allclose(added, network + (alone - model.frame_mean) / model.frame_spread)
    with pytest.raises(ValueError, match="without one"):
        CoMemoryScorer(ScoreConfig(motion_model="alone")).frame_scores(
            errors, Calibration(calibrate(np.ones(3), np.ones(3))))


def test_a_checkpoint_keeps_the_motion_model(tmp_path):
    calibration = walker_calibration(np.random.default_rng(3))
    torch.save(calibration.to_dict(), tmp_path / "calibration.pt")
    again = Calibration.from_dict(torch.load(tmp_path / "calibration.pt", weights_only=True))
    vectors = normal_walkers(np.random.default_rng(4), 20)
    before, after = calibration.statistics.motion_model, again.statistics.motion_model
    np.testing.assert_allclose(after.score(vectors), before.score(vectors))
    assert (after.quiet, after.frame_mean, after.frame_spread) == (
        before.quiet, before.frame_mean, before.frame_spread)


def test_validation_is_offered_the_motion_model_and_prefers_the_network_within_an_error():
    offered = _formulas(ScoreConfig(), "comemory", offer_motion_model=True)
    uses = {(o.motion_model, o.formula) for o in offered}
    assert {("off", "thesis"), ("off", "zscore"), ("added", "zscore")} <= uses
    assert sum(o.motion_model == "alone" for o in offered) == 1
    assert all(o.motion_model == "off" for o in _formulas(ScoreConfig(), "comemory"))
    assert _formulas(ScoreConfig(motion_model="alone"), "comemory") == [
        ScoreConfig(motion_model="alone")]
    network, motion = ScoreConfig(), ScoreConfig(motion_model="alone")
    grid = [(network, {"pooled": 0.80}), (motion, {"pooled": 0.82})]
    assert pick_setting(grid, 0.03, "one_se")[0] == network
    assert pick_setting(grid, 0.01, "one_se")[0] == motion


@pytest.mark.parametrize("settings, message", [
    (["score.motion_model=alone"], "set model.input objects"),
    (["choose.offer_motion_model=true"], "set model.input objects"),
    (["model.input=objects", "model.crop_size=16", "score.motion_model=sum"],
     "score.motion_model must be one of ['off', 'alone', 'added']"),
    (["model.input=objects", "model.crop_size=16", "score.motion_model=added"],
     "to the zscore formula only"),
])
def test_bad_motion_model_settings_are_named(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        small_config(*settings).check()
