"""Ground truth as the datasets ship it: frame labels and pixel masks.

Frame labels become one 0/1 array per video once its frame count is known
(``FrameLabels.resolve``); masks load as a bool (T, H, W) volume per video. Every
mismatch is a DataError that names the file it came from.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.io import loadmat

from comemory.errors import DataError


@dataclass
class FrameLabels:
    """Per-frame labels of one video: a fixed array, or anomalous spans (0-based, inclusive)
    that become an array once the frame count is known. ``source`` names the file."""

    source: Path
    array: np.ndarray | None = None
    spans: list[tuple[int, int]] | None = None

    def resolve(self, frame_count: int, video: str) -> np.ndarray:
        """int64 (frame_count,) of 0/1; raises DataError if the labels do not fit the video."""
        if self.array is not None:
            if len(self.array) != frame_count:
                raise DataError(f"{self.source}: {len(self.array)} labels for video {video!r}, "
                                f"which has {frame_count} frames")
            return self.array.astype(np.int64)
        labels = np.zeros(frame_count, dtype=np.int64)
        for start, end in self.spans or []:
            if end >= frame_count:
                raise DataError(f"{self.source}: span {start}-{end} of video {video!r} ends past "
                                f"its last frame ({frame_count - 1}; frames count from 0)")
            labels[start:end + 1] = 1
        return labels


@dataclass
class MaskImages:
    """One mask image per frame (UCSD ``TestNNN_gt/*.bmp``, MNAD-layout ``masks/*.png``)."""

    paths: list[Path]

    @property
    def source(self) -> Path:
        return self.paths[0].parent

    def count(self) -> int:
        return len(self.paths)

    def load(self) -> np.ndarray:
        """bool (T, H, W): True where the anomaly is."""
        masks = []
        for path in self.paths:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise DataError(f"{path}: cannot read the mask image")
            masks.append(image > 0)
        return np.stack(masks)


@dataclass
class MaskVolume:
    """All masks of a video in one file: Avenue's ``N_label.mat`` (``volLabel``, a cell of
    H x W masks) or ShanghaiTech's ``test_pixel_mask/<video>.npy`` (T, H, W)."""

    source: Path

    def count(self) -> int:
        return len(self._volume())

    def load(self) -> np.ndarray:
        return np.asarray(self._volume()) > 0

    def frame_labels(self) -> np.ndarray:
        """int64 (T,): a frame is anomalous where any of its mask pixels is set."""
        return np.array([mask.any() for mask in self._volume()], dtype=np.int64)

    def _volume(self) -> np.ndarray | list[np.ndarray]:
        if self.source.suffix == ".mat":
            return _read_mat_masks(self.source)
        try:
            volume = np.load(self.source, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise DataError(f"{self.source}: cannot read the pixel masks ({error})") from error
        if volume.ndim != 3:
            raise DataError(f"{self.source}: pixel masks must be (frames, H, W), "
                            f"got shape {volume.shape}")
        return volume


MaskSource = MaskImages | MaskVolume


@lru_cache(maxsize=1)  # a video's .mat is asked for its labels, count and masks in turn
def _read_mat_masks(path: Path) -> list[np.ndarray]:
    try:
        content = loadmat(str(path))
    except Exception as error:  # scipy raises several kinds for a damaged file
        raise DataError(f"{path}: cannot read the MATLAB file ({error})") from error
    if "volLabel" not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise DataError(f"{path}: no 'volLabel' variable (found {keys}); expected Avenue's "
                        "testing_label_mask files")
    cells = content["volLabel"].ravel()
    return [np.asarray(cell) for cell in cells]


def read_flat_labels(path: Path) -> np.ndarray:
    """A ``frame_labels_*.npy``: flat (N,) or MNAD's (1, N) array of 0/1."""
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read labels ({error})") from error
    if labels.ndim == 2 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must be a flat array, got shape {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"{path}: labels must be 0 (normal) or 1 (anomalous)")
    return labels.astype(np.int64)


_GT_FRAME = re.compile(r"gt_frame\s*=\s*\[([^\]]*)\]")


def read_ucsd_ranges(path: Path) -> list[list[tuple[int, int]]]:
    """UCSD's ``UCSDpedN.m``: one ``gt_frame = [a:b, c:d]`` per test video (1-based,
    inclusive) -> per video, 0-based inclusive spans."""
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error})") from error
    videos = []
    for number, match in enumerate(_GT_FRAME.finditer(text), start=1):
        spans = []
        for part in re.split(r"[,;\s]+", match.group(1).strip()):
            if not part:
                continue
            bounds = part.split(":")
            try:
                first, last = int(bounds[0]), int(bounds[-1])
            except ValueError:
                raise DataError(f"{path}: cannot read range {part!r} of test video {number}; "
                                "expected a:b with frame numbers from 1") from None
            if first < 1 or last < first:
                raise DataError(f"{path}: range {part!r} of test video {number} is empty or "
                                "starts before frame 1")
            spans.append((first - 1, last - 1))
        videos.append(spans)
    if not videos:
        raise DataError(f"{path}: no gt_frame entries; expected lines like "
                        "TestVideoFile{end+1}.gt_frame = [61:180];")
    return videos


def read_labels_csv(path: Path) -> dict[str, list[tuple[int, int]]]:
    """``video,start_frame,end_frame`` rows (0-based, inclusive) -> spans per video name.

    Read as spreadsheets save CSV: a UTF-8 byte-order mark ("CSV UTF-8" in Excel) and
    spaces after the commas are accepted.
    """
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    spans: dict[str, list[tuple[int, int]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        expected = {"video", "start_frame", "end_frame"}
        if reader.fieldnames is not None:
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
        if reader.fieldnames is None or not expected <= set(reader.fieldnames):
            raise DataError(f"{path}: the first line must be the header "
                            f"video,start_frame,end_frame; got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                start, end = int(row["start_frame"]), int(row["end_frame"])
            except (TypeError, ValueError):
                raise DataError(f"{path}, line {line}: start_frame and end_frame must be "
                                "whole numbers") from None
            if start < 0 or end < start:
                raise DataError(f"{path}, line {line}: span {start}-{end} is empty or negative")
            spans.setdefault(row["video"].strip(), []).append((start, end))
    return spans
