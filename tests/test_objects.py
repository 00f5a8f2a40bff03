"""Objects from motion (comemory.data.objects): boxes around what moves, what changed and
what arrived and stayed, filtered by size and shape, on scenes the tests draw."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from comemory.config import ObjectsConfig, apply_overrides, preset
from comemory.data.frames import list_frames
from comemory.data.objects import Box, ObjectFinder, mask_coverage
from comemory.data.synth import SynthSpec, synthesize
from comemory.errors import ConfigError


def textured_scene(rng: np.random.Generator, shape=(120, 160)) -> np.ndarray:
    return rng.integers(60, 200, shape, dtype=np.uint8)


def noisy(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The background with a camera's small noise."""
    frame = background.astype(np.int16) + rng.integers(-3, 4, background.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def covers(boxes: list[Box], left: int, top: int, right: int, bottom: int) -> bool:
    return any(b.x <= left and b.y <= top and b.x + b.width >= right
               and b.y + b.height >= bottom for b in boxes)


def test_boxes_cover_the_synthetic_anomalies(tmp_path):
    synthesize(tmp_path, SynthSpec(seed=3, train_videos=1, test_videos=3, frames=48))
    normal = [cv2.imread(str(p)) for p in list_frames(tmp_path / "training" / "frames" / "01")]
    covered = total = 0
    for video in ("01", "02", "03"):  # fast, large, against the flow
        finder = ObjectFinder(ObjectsConfig())
        finder.learn(normal)
        frames = list_frames(tmp_path / "testing" / "frames" / video)
        masks = list_frames(tmp_path / "testing" / "masks" / video)
        for frame, mask in zip(frames, masks, strict=True):
            boxes = finder.find(cv2.imread(str(frame)))
            assert len(boxes) <= ObjectsConfig().max_objects
            inside, pixels = mask_coverage(boxes, cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE))
            covered, total = covered + inside, total + pixels
    assert total > 0 and covered / total > 0.8  # measured 0.86 / 0.90 / 0.83 per video


def test_a_thing_that_arrives_and_stays_remains_an_object_for_the_long_term():
    rng = np.random.default_rng(0)
    scene = textured_scene(rng)
    arrived = scene.copy()
    arrived[40:70, 60:90] = 30  # a dark bag put down at frame 10, never taken away
    settings = ObjectsConfig(history=50, long_term=20)  # kept for about 50 x 20 / 10 frames
    for long_term, still_there in ((20, True), (0, False)):
        finder = ObjectFinder(ObjectsConfig(**{**vars(settings), "long_term": long_term}))
        finder.learn([noisy(scene, rng) for _ in range(60)])
        seen = [covers(finder.find(noisy(arrived if t >= 10 else scene, rng)), 60, 40, 90, 70)
                for t in range(80)]
        assert seen[10] and seen[11]  # found as it arrives, by both
        assert seen[-1] is still_there  # 70 frames on: only the long-term background keeps it


def test_boxes_are_kept_by_size_and_shape_and_near_ones_joined():
    finder = ObjectFinder(ObjectsConfig(merge=5, min_area=0.001, max_aspect=4.0,
                                        max_objects=2))
    mask = np.zeros((100, 200), np.uint8)
    mask[10:30, 10:30] = 255    # 400 px: kept
    mask[10:30, 33:40] = 255    # 3 px away from it: joined into one box
    mask[60:62, 60:62] = 255    # 4 px, under 0.001 of 20 000: noise
    mask[80:82, 100:190] = 255  # 90 x 2: longer than 4 times its width, a line
    mask[50:70, 150:170] = 255  # kept
    mask[40:45, 60:65] = 255    # kept by size, but only the 2 largest remain
    boxes = finder.boxes_of(mask, mask.shape)
    assert boxes == [Box(10, 10, 30, 20), Box(150, 50, 20, 20)]


def test_coverage_counts_the_mask_pixels_inside_any_box():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:6, 2:6] = 1  # 16 pixels
    assert mask_coverage([Box(0, 0, 4, 10)], mask) == (8, 16)
    assert mask_coverage([Box(0, 0, 4, 10), Box(3, 0, 7, 10)], mask) == (16, 16)
    assert mask_coverage([], mask) == (0, 16)


@pytest.mark.parametrize("setting, message", [
    ("objects.background=median", "objects.background must be one of ['mog2', 'knn']"),
    ("objects.min_area=0.6", "0 <= min_area < max_area <= 1"),
    ("objects.max_aspect=0.5", "objects.max_aspect must be >= 1"),
    ("objects.difference=0", "objects.difference must be 1-255"),
])
def test_bad_object_settings_are_named(setting, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_overrides(preset("tiny"), [setting]).check()


def test_the_knn_background_finds_a_moving_square_too():
    rng = np.random.default_rng(1)
    scene = textured_scene(rng)
    finder = ObjectFinder(ObjectsConfig(background="knn"))
    finder.learn([noisy(scene, rng) for _ in range(30)])
    for step in range(5):
        frame = noisy(scene, rng)
        frame[50:70, 20 + 10 * step:40 + 10 * step] = 20
        boxes = finder.find(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))  # BGR is read too
    assert covers(boxes, 60, 50, 80, 70)
