"""The learned motion model: each object's motion vector, and a Gaussian mixture of the
training objects' vectors that finds the unusual ones."""
from __future__ import annotations

import numpy as np
import pytest

from comemory.data.objects import Box
from comemory.scoring.motion_model import DIRECTION_BINS, MotionModel, motion_vector


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
