"""The annotated MP4 of ``comemory detect``: each frame with its score map over it, and the
recent score curve with the threshold along the bottom. Frames of an event (as events.json
lists them) are framed in red and marked EVENT; frames above the threshold that belong to
no event (blips shorter than the minimum event length) get a thin amber frame and the words
"above threshold".

Drawn with OpenCV (no matplotlib per frame: it would cost more than the model).
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from comemory.data.frames import from_model_grid
from comemory.detect.video_writer import VideoWriter

if TYPE_CHECKING:
    from comemory.detect import FrameResult

DISPLAY_WIDTH = 480
STRIP_HEIGHT = 110
CURVE_FRAMES = 240  # the strip shows this many recent frames
RED, WHITE, YELLOW, AMBER = (40, 40, 230), (240, 240, 240), (60, 220, 250), (0, 160, 255)


class FramePainter:
    """``picture(result, in_event, alarm)``: the frame at DISPLAY_WIDTH with its score map
    over it and its objects' boxes and scores (model.input objects), framed in red in an
    event (amber where it alarms outside one). What the annotated MP4 shows on top, and
    ``serve`` shows live.

    The score map is coloured from ``low`` (drawn transparent) up to the threshold and
    beyond; ``low`` defaults to the threshold minus 3, in score units. ``resize``: how
    frames met the model grid (``model.resize``), so a letterboxed map loses its bars.
    """

    def __init__(self, threshold: float, low: float | None = None, resize: str = "squash"):
        self.threshold, self.resize = threshold, resize
        self.low = threshold - 3.0 if low is None else low

    def picture(self, result: FrameResult, in_event: bool, alarm: bool) -> np.ndarray:
        image = result.image
        height = max(2, round(image.shape[0] * DISPLAY_WIDTH / image.shape[1] / 2) * 2)
        frame = cv2.resize(image, (DISPLAY_WIDTH, height), interpolation=cv2.INTER_LINEAR)
        if result.heatmap is not None:
            frame = self._overlay(frame, result.heatmap)
        self._draw_objects(frame, result, DISPLAY_WIDTH / image.shape[1])
        if in_event:
            cv2.rectangle(frame, (0, 0), (DISPLAY_WIDTH - 1, height - 1), RED, 6)
            cv2.putText(frame, "EVENT", (12, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, RED, 2)
        elif alarm:
            cv2.rectangle(frame, (0, 0), (DISPLAY_WIDTH - 1, height - 1), AMBER, 2)
            cv2.putText(frame, "above threshold", (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        AMBER, 1, cv2.LINE_AA)
        return frame

    def _draw_objects(self, frame: np.ndarray, result: FrameResult, scale: float) -> None:
        """Each object's box and score (model.input objects): red above the threshold."""
        for item in result.objects:
            colour = RED if item.score > self.threshold else WHITE
            left, top = round(item.x * scale), round(item.y * scale)
            right = round((item.x + item.width) * scale)
            bottom = round((item.y + item.height) * scale)
            cv2.rectangle(frame, (left, top), (right, bottom), colour, 1)
            cv2.putText(frame, f"{item.score:.1f}", (left, max(10, top - 3)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)

    def _overlay(self, frame: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
        heat = from_model_grid(heatmap.astype(np.float32), frame.shape[0], frame.shape[1],
                               self.resize)
        span = max(self.threshold - self.low, 1e-6)
        level = np.clip((heat - self.low) / (1.5 * span), 0.0, 1.0)
        colours = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        alpha = (0.65 * level)[..., None]
        return (frame * (1 - alpha) + colours * alpha).astype(np.uint8)


class AnnotatedVideo:
    """``add(result, in_event, alarm)`` appends one frame (FramePainter's picture over the
    recent score curve with the threshold) to an MP4; ``close()`` finishes the file."""

    def __init__(self, path: Path, fps: float, threshold: float, low: float | None = None,
                 resize: str = "squash"):
        self.path, self.fps, self.threshold = path, fps, threshold
        self.painter = FramePainter(threshold, low, resize)
        self.low = self.painter.low
        self.scores: deque[float | None] = deque(maxlen=CURVE_FRAMES)
        self.file = VideoWriter(path, fps, "mp4v", advice="; use --no-video")

    def add(self, result: FrameResult, in_event: bool, alarm: bool,
            threshold: float | None = None) -> None:
        """``in_event``: the frame lies in one of the events of events.json; ``alarm``: its
        score is above the threshold; ``threshold``: the one it was judged by, where it
        moves (a camera that adapts)."""
        if threshold is not None:
            self.threshold = self.painter.threshold = threshold
        frame = self.painter.picture(result, in_event, alarm)
        self.scores.append(result.score)
        self.file.write(np.vstack([frame, self._strip(result, in_event, alarm)]))

    def close(self) -> None:
        self.file.close()

    def _strip(self, result: FrameResult, in_event: bool, alarm: bool) -> np.ndarray:
        strip = np.full((STRIP_HEIGHT, DISPLAY_WIDTH, 3), 24, np.uint8)
        known = [s for s in self.scores if s is not None]
        top = max([self.threshold + 1.0, *known])
        bottom = min([self.low, *known])

        def y(value: float) -> int:
            return int(round((STRIP_HEIGHT - 28) * (top - value) / (top - bottom))) + 4

        cv2.line(strip, (0, y(self.threshold)), (DISPLAY_WIDTH, y(self.threshold)), RED, 1)
        step = DISPLAY_WIDTH / CURVE_FRAMES
        points = [(int(i * step), y(s)) for i, s in enumerate(self.scores) if s is not None]
        if len(points) > 1:
            cv2.polylines(strip, [np.array(points, np.int32)], False, YELLOW, 1, cv2.LINE_AA)
        text = (f"frame {result.index}  warming up" if result.score is None else
                f"frame {result.index}  score {result.score:.2f}  threshold {self.threshold:.2f}")
        cv2.putText(strip, text, (6, STRIP_HEIGHT - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    RED if in_event else AMBER if alarm else WHITE, 1, cv2.LINE_AA)
        return strip
