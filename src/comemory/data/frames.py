"""Frame-folder datasets: ``<root>/{training,testing}/frames/<video>/<frame>.jpg|png|tif``.

Test labels are one flat ``.npy`` of 0/1 per frame, test videos in sorted order
(``frame_labels_<name>.npy`` in the root, as MNAD and future-frame prediction ship
them; MNAD's (1, N) shape is accepted too).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from comemory.errors import DataError

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
SPLITS = ("training", "testing")


@dataclass
class Video:
    """One clip on disk: its name, frame files in order, and per-frame labels if known."""

    name: str
    frame_paths: list[Path]
    labels: np.ndarray | None = None  # (T,) int64, 1 = anomalous


def find_videos(root: str | Path, split: str) -> list[Video]:
    """List the videos of ``split`` under ``root``; raises DataError naming what is missing."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
    frames_dir = Path(root) / split / "frames"
    if not frames_dir.is_dir():
        raise DataError(f"{frames_dir}: folder not found; expected "
                        f"<root>/{split}/frames/<video>/<frame>.jpg (run `comemory synth` "
                        "for an example dataset)")
    videos = []
    for video_dir in sorted(p for p in frames_dir.iterdir() if p.is_dir()):
        frames = sorted(p for p in video_dir.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS)
        if len(frames) < 3:
            raise DataError(f"{video_dir}: {len(frames)} frame(s) found; a video needs at "
                            f"least 3 frames with extension {'/'.join(FRAME_EXTENSIONS)}")
        videos.append(Video(video_dir.name, frames))
    if not videos:
        raise DataError(f"{frames_dir}: no video folders inside")
    return videos


def find_labels_file(root: str | Path) -> Path:
    """The single ``frame_labels_*.npy`` in ``root``."""
    candidates = sorted(Path(root).glob("frame_labels_*.npy"))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise DataError(f"{root}: expected exactly one frame_labels_*.npy with the test "
                        f"labels, found {found}; pass the file with --labels")
    return candidates[0]


def attach_labels(videos: list[Video], labels_path: str | Path) -> None:
    """Split a flat label array over ``videos`` in order; its length must match the frames."""
    labels_path = Path(labels_path)
    try:
        labels = np.load(labels_path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{labels_path}: cannot read labels ({error})") from error
    if labels.ndim == 2 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels must be a flat array, got shape {labels.shape}")
    total = sum(len(v.frame_paths) for v in videos)
    if len(labels) != total:
        raise DataError(f"{labels_path}: {len(labels)} labels but the {len(videos)} test "
                        f"videos hold {total} frames")
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{labels_path}: labels must be 0 (normal) or 1 (anomalous)")
    start = 0
    for video in videos:
        video.labels = labels[start:start + len(video.frame_paths)].astype(np.int64)
        start += len(video.frame_paths)


def read_frame(path: Path, size: int, channels: int) -> np.ndarray:
    """Read one image, resize to (size, size): uint8 (size, size, channels), RGB or grey."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot read the image (corrupt or not an image)")
    if channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None]
    elif channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise DataError(f"model.channels must be 1 or 3, got {channels}")
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return resized.reshape(size, size, channels)


def to_grey(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 1 or 3) RGB/grey -> uint8 (H, W) for the flow extractors."""
    return frame[..., 0] if frame.shape[-1] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
