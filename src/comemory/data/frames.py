"""Where a video's frames come from: a folder of images or one video file, and how a frame
becomes the model's square grid.

Both sources answer the same questions: how to read every frame resized for the model
(or at its own resolution, for the optical flow), what their fingerprint is (so the cache
notices an edited dataset), and the frames' original resolution.

A frame reaches the S x S model grid in one of two ways (``model.resize``):
  squash     stretched to S x S (the thesis and MNAD: Ped2's 360 x 240 loses its aspect)
  letterbox  scaled to fit S x S with its aspect kept, the rest black; ``content_box``
             says where the picture lies, so score maps can be cut back to the frame.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from comemory.config import RESIZE_MODES
from comemory.errors import DataError

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv")
MIN_FRAMES = 3  # the model needs two past frames and one to predict

log = logging.getLogger("comemory.data")


def list_frames(folder: Path) -> list[Path]:
    """The image files of ``folder`` in name order, skipping hidden files (macOS copies of
    the UCSD archive carry ``._001.tif`` resource forks beside the frames)."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith("."))


@dataclass
class FrameFolder:
    """A video stored as one image per frame (``paths`` in frame order)."""

    paths: list[Path]

    @classmethod
    def from_folder(cls, folder: Path) -> FrameFolder:
        paths = list_frames(folder)
        if len(paths) < MIN_FRAMES:
            raise DataError(f"{folder}: {len(paths)} frame(s) found; a video needs at least "
                            f"{MIN_FRAMES} frames with extension {'/'.join(FRAME_EXTENSIONS)}")
        return cls(paths)

    @property
    def location(self) -> Path:
        return self.paths[0].parent

    def frame_count(self) -> int | None:
        return len(self.paths)

    def fingerprint(self) -> str:
        digest = hashlib.sha1(str(self.location.resolve()).encode())
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()[:16]

    def read(self, size: int, channels: int, resize: str = "squash") -> np.ndarray:
        """uint8 (T, size, size, channels) on the model grid."""
        return np.stack([read_frame(path, size, channels, resize) for path in self.paths])

    def read_native(self, channels: int, longest_side: int = 0) -> np.ndarray:
        """uint8 (T, H, W, channels) at the frames' own resolution, scaled down so that the
        longest side is at most ``longest_side`` (0: no limit)."""
        return np.stack([native_frame(_imread(path), channels, longest_side)
                         for path in self.paths])

    def read_bgr(self, start: int = 0) -> np.ndarray:
        """Frames ``start`` .. end as decoded: uint8 (T - start, H, W, 3) BGR."""
        return np.stack([_imread(path) for path in self.paths[start:]])

    def resolution(self) -> tuple[int, int]:
        """(height, width) of the frames on disk."""
        image = cv2.imread(str(self.paths[0]), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{self.paths[0]}: cannot read the image (corrupt or not an image)")
        return image.shape[0], image.shape[1]


@dataclass
class VideoFile:
    """A video stored as one file that OpenCV decodes (.avi, .mp4, ...)."""

    path: Path

    @property
    def location(self) -> Path:
        return self.path

    def frame_count(self) -> int | None:
        """The frame count the file's header promises (None if it gives none); a damaged
        or cut file may decode fewer, which ``read`` reports."""
        capture = self._open()
        try:
            return _promised_frames(capture)
        finally:
            capture.release()

    def fingerprint(self) -> str:
        stat = self.path.stat()
        key = f"{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def read(self, size: int, channels: int, resize: str = "squash") -> np.ndarray:
        """Decode every frame: uint8 (T, size, size, channels) on the model grid."""
        return self._decode(lambda image: resize_frame(image, size, channels, resize))

    def read_native(self, channels: int, longest_side: int = 0) -> np.ndarray:
        """Decode every frame: uint8 (T, H, W, channels) at its own resolution, at most
        ``longest_side`` on its longest side (0: no limit)."""
        return self._decode(lambda image: native_frame(image, channels, longest_side))

    def read_bgr(self, start: int = 0) -> np.ndarray:
        """Frames ``start`` .. end as decoded: uint8 (T - start, H, W, 3) BGR."""
        return self._decode(lambda image: image, start)

    def _decode(self, fit: Callable[[np.ndarray], np.ndarray], start: int = 0) -> np.ndarray:
        capture = self._open()
        frames, index = [], 0
        try:
            promised = _promised_frames(capture)
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                if index >= start:
                    frames.append(fit(image))
                index += 1
        finally:
            capture.release()
        if index < MIN_FRAMES:
            raise DataError(f"{self.path}: decoded {index} frame(s); the file is "
                            f"damaged, empty or in a codec OpenCV lacks (need {MIN_FRAMES}+)")
        if promised is not None and index < promised:
            log.warning("%s: the file's header promises %d frames but only %d decode (a cut "
                        "or damaged file?); using the %d", self.path, promised, index, index)
        return np.stack(frames)

    def resolution(self) -> tuple[int, int]:
        capture = self._open()
        try:
            ok, image = capture.read()
        finally:
            capture.release()
        if not ok:
            raise DataError(f"{self.path}: cannot decode a frame")
        return image.shape[0], image.shape[1]

    def _open(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise DataError(f"{self.path}: video file not found")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise DataError(f"{self.path}: OpenCV cannot open this video (damaged file or "
                            "unsupported codec); convert it, e.g. "
                            "ffmpeg -i IN -c:v libx264 OUT.mp4")
        return capture


FrameSource = FrameFolder | VideoFile


def _promised_frames(capture: cv2.VideoCapture) -> int | None:
    """The frame count a video's header gives, None if it gives none."""
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return count if count > 0 else None


def read_frame(path: Path, size: int, channels: int, resize: str = "squash") -> np.ndarray:
    """Read one image onto the model grid: uint8 (size, size, channels), RGB or grey."""
    return resize_frame(_imread(path), size, channels, resize)


def _imread(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot read the image (corrupt or not an image)")
    return image


def resize_frame(image: np.ndarray, size: int, channels: int,
                 resize: str = "squash") -> np.ndarray:
    """uint8 BGR (H, W, 3) as OpenCV decodes -> uint8 (size, size, channels), RGB or grey,
    squashed or letterboxed (``resize``)."""
    converted = _convert(image, channels)
    return to_model_grid(converted, size, resize, cv2.INTER_AREA).reshape(size, size, channels)


def native_frame(image: np.ndarray, channels: int, longest_side: int = 0) -> np.ndarray:
    """uint8 BGR (H, W, 3) -> uint8 (h, w, channels), RGB or grey, at its own size or
    scaled down so that max(h, w) <= ``longest_side`` (0: no limit)."""
    converted = _convert(image, channels)
    height, width = converted.shape[:2]
    if 0 < longest_side < max(height, width):
        scale = longest_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        converted = cv2.resize(converted, size, interpolation=cv2.INTER_AREA)
    return converted.reshape(converted.shape[0], converted.shape[1], channels)


def _convert(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise DataError(f"model.channels must be 1 or 3, got {channels}")


def content_box(height: int, width: int, size: int, resize: str) -> tuple[int, int, int, int]:
    """Where an (height, width) frame lies on the size x size grid: (top, left, h, w)."""
    if resize == "squash":
        return 0, 0, size, size
    if resize != "letterbox":
        raise DataError(f"model.resize must be one of {RESIZE_MODES}, got {resize!r}")
    scale = size / max(height, width)
    inner_h, inner_w = max(1, round(height * scale)), max(1, round(width * scale))
    return (size - inner_h) // 2, (size - inner_w) // 2, inner_h, inner_w


def to_model_grid(array: np.ndarray, size: int, resize: str,
                  interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """(H, W[, C]) -> (size, size[, C]): stretched, or fitted inside with zeros around."""
    height, width = array.shape[:2]
    top, left, inner_h, inner_w = content_box(height, width, size, resize)
    resized = cv2.resize(array, (inner_w, inner_h), interpolation=interpolation)
    if resize == "squash":
        return resized
    grid = np.zeros((size, size, *array.shape[2:]), dtype=array.dtype)
    grid[top:top + inner_h, left:left + inner_w] = resized.reshape(inner_h, inner_w,
                                                                   *array.shape[2:])
    return grid


def from_model_grid(grid: np.ndarray, height: int, width: int, resize: str,
                    interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """A (size, size) map on the model grid -> (height, width) over the original frame
    (the letterbox bars cut off first)."""
    top, left, inner_h, inner_w = content_box(height, width, grid.shape[0], resize)
    inner = np.ascontiguousarray(grid[top:top + inner_h, left:left + inner_w])
    return cv2.resize(inner, (width, height), interpolation=interpolation)


def box_from_model_grid(box: np.ndarray, height: int, width: int, size: int,
                        resize: str) -> tuple[int, int, int, int]:
    """A box (x, y, width, height) on the size x size grid -> the same box in an
    (height, width) frame's own pixels."""
    top, left, inner_h, inner_w = content_box(height, width, size, resize)
    x, y, box_w, box_h = (float(v) for v in box)
    scale_x, scale_y = width / inner_w, height / inner_h
    x0, y0 = round((x - left) * scale_x), round((y - top) * scale_y)
    x1, y1 = round((x + box_w - left) * scale_x), round((y + box_h - top) * scale_y)
    x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
    x1, y1 = min(max(x1, x0 + 1), width), min(max(y1, y0 + 1), height)
    return x0, y0, x1 - x0, y1 - y0


def checked_bgr(frame: np.ndarray) -> np.ndarray:
    """A frame handed to the detector as BGR, or a DataError saying what it must be."""
    if (not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3)
            or (frame.ndim == 3 and frame.shape[-1] not in (1, 3, 4))):
        raise DataError("a frame must be a uint8 array, (H, W) grey or (H, W, 3) BGR; got "
                        f"{getattr(frame, 'dtype', type(frame).__name__)} "
                        f"{getattr(frame, 'shape', '')}")
    return as_bgr(frame)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey (H, W) or (H, W, 1), BGR, or BGRA (some cameras) uint8 -> BGR (H, W, 3)."""
    if image.ndim == 2 or image.shape[-1] == 1:
        return cv2.cvtColor(image.reshape(image.shape[0], image.shape[1]), cv2.COLOR_GRAY2BGR)
    if image.shape[-1] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def to_grey(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 1 or 3) RGB/grey -> uint8 (H, W) for the flow extractors."""
    return frame[..., 0] if frame.shape[-1] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
