"""Objects from motion, with no learned weights: boxes around what moves or changed in a
fixed camera's view, frame by frame.

Three foreground cues on the frame at its own resolution, in grey:

- motion: the change to the previous frame above ``objects.difference`` grey levels,
  which finds anything moving from its first frame;
- change: OpenCV's model of the recent background (MOG2 or KNN, ``objects.background``,
  over ``objects.history`` frames), which finds what differs from the usual scene, a slow
  walker included;
- arrival: a long-term background learning ``objects.long_term`` times slower, so that a
  thing that arrives and stays (a dropped bag, a parked cart) remains an object after
  the recent background has taken it in.

Their union is cleaned of single-pixel noise, gaps of ``objects.merge`` pixels are closed,
each connected part becomes a box, boxes that close are joined, and boxes are kept by
size and shape: between ``min_area`` and ``max_area`` of the frame, the longer side at
most ``max_aspect`` times the shorter; the ``max_objects`` largest remain.

    finder = ObjectFinder(config.objects)
    finder.learn(normal_frames)               # optional: the scene without anomalies
    for image in frames:                      # uint8 grey (H, W) or BGR (H, W, 3)
        boxes = finder.find(image)            # [Box(x, y, width, height), ...]
    finder.reset()                            # before another video
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from comemory.config import ObjectsConfig

NOISE_KERNEL = np.ones((3, 3), np.uint8)  # opening with it drops specks of 1-2 pixels


@dataclass(frozen=True)
class Box:
    """An object's box in frame pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    def joined(self, other: Box) -> Box:
        left, top = min(self.x, other.x), min(self.y, other.y)
        right = max(self.x + self.width, other.x + other.width)
        bottom = max(self.y + self.height, other.y + other.height)
        return Box(left, top, right - left, bottom - top)

    def near(self, other: Box, gap: int) -> bool:
        """Whether the two boxes overlap or lie within ``gap`` pixels of each other."""
        return (self.x - gap < other.x + other.width and other.x - gap < self.x + self.width
                and self.y - gap < other.y + other.height
                and other.y - gap < self.y + self.height)


class ObjectFinder:
    """Boxes around what moves or changed, frame by frame (see the module)."""

    def __init__(self, config: ObjectsConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the scene: the next frame starts a new video."""
        self._previous: np.ndarray | None = None
        self.foreground_mask: np.ndarray | None = None  # the last frame's, uint8 (H, W)
        self._seen = 0  # frames the background models have learned
        self._recent = self._background_model(self.config.history)
        self._long = (self._background_model(self.config.history * self.config.long_term)
                      if self.config.long_term > 0 else None)

    def learn(self, frames: list[np.ndarray]) -> None:
        """Show the background models normal footage of this camera (uint8 grey or BGR
        frames; a training video, say), so that the first frames of a video are measured
        against the scene rather than taken for it. Then a new video starts."""
        for frame in frames:
            self._changed(_grey(frame))
        self._previous = None

    def find(self, frame: np.ndarray) -> list[Box]:
        """The boxes of ``frame`` (uint8 grey (H, W) or BGR (H, W, 3)), largest first."""
        grey = _grey(frame)
        self.foreground_mask = self.foreground(grey)
        return self.boxes_of(self.foreground_mask, grey.shape)

    def foreground(self, grey: np.ndarray) -> np.ndarray:
        """The union of the three cues as a uint8 mask (255: foreground), (H, W)."""
        mask = self._changed(grey)
        if self._previous is not None:
            moved = cv2.absdiff(grey, self._previous) > self.config.difference
            mask |= moved.astype(np.uint8) * 255
        self._previous = grey
        mask = cv2.morphologyEx((mask > 127).astype(np.uint8), cv2.MORPH_OPEN, NOISE_KERNEL)
        if self.config.merge > 0:
            kernel = np.ones((self.config.merge, self.config.merge), np.uint8)
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
        return mask * 255

    def boxes_of(self, mask: np.ndarray, shape: tuple[int, ...]) -> list[Box]:
        """The kept boxes of a foreground ``mask`` of a frame of ``shape``."""
        count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8))
        boxes = [Box(*map(int, stats[i, :4])) for i in range(1, count)]
        boxes = _joined(boxes, self.config.merge)
        frame_area = shape[0] * shape[1]
        config = self.config
        kept = [b for b in boxes
                if config.min_area * frame_area <= b.area <= config.max_area * frame_area
                and max(b.width, b.height) <= config.max_aspect * min(b.width, b.height)]
        return sorted(kept, key=lambda b: b.area, reverse=True)[:config.max_objects]

    def _changed(self, grey: np.ndarray) -> np.ndarray:
        """Both background models' foreground after learning ``grey``. OpenCV's own rate
        learns fast while a model is young; once the scene has been seen for ``history``
        frames the long-term model keeps its slow rate, or it would forget a thing that
        stays as soon as the recent one does."""
        self._seen += 1
        mask = self._recent.apply(grey)
        if self._long is not None:
            old_enough = self._seen > self.config.history
            rate = 1.0 / (self.config.history * self.config.long_term) if old_enough else -1
            mask |= self._long.apply(grey, learningRate=rate)
        return mask

    def _background_model(self, history: int):
        if self.config.background == "knn":
            return cv2.createBackgroundSubtractorKNN(history=history, detectShadows=False)
        return cv2.createBackgroundSubtractorMOG2(history=history, detectShadows=False)


def _grey(frame: np.ndarray) -> np.ndarray:
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _joined(boxes: list[Box], gap: int) -> list[Box]:
    """``boxes`` with every two within ``gap`` pixels of each other joined, until none are."""
    boxes = list(boxes)
    joined_any = True
    while joined_any:
        joined_any = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if boxes[i].near(boxes[j], gap):
                    boxes[i] = boxes[i].joined(boxes.pop(j))
                    joined_any = True
                    break
            if joined_any:
                break
    return boxes


def mask_coverage(boxes: list[Box], mask: np.ndarray) -> tuple[int, int]:
    """(pixels of ``mask`` inside any of ``boxes``, pixels of ``mask``): how much of a
    labelled anomaly the boxes would show the network."""
    inside = np.zeros(mask.shape[:2], bool)
    for box in boxes:
        inside[box.y:box.y + box.height, box.x:box.x + box.width] = True
    truth = mask > 0
    return int((truth & inside).sum()), int(truth.sum())
