"""Readers for the standard datasets as their authors ship them, and for your own videos.

``read_dataset(name, root, split)`` returns the split's videos in order, each with its
frame source and, for the test split, its labels and pixel masks where the dataset has
them. The layouts (``--dataset``), and what each expects under the root, are listed in
``comemory.data.layouts``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comemory.data.frames import (
    VIDEO_EXTENSIONS,
    FrameFolder,
    FrameSource,
    VideoFile,
    list_frames,
)
from comemory.data.labels import (
    FrameLabels,
    MaskImages,
    MaskSource,
    MaskVolume,
    read_flat_labels,
    read_labels_csv,
    read_ucsd_ranges,
)
from comemory.data.layouts import ALIASES, dataset_names
from comemory.errors import DataError

SPLITS = ("training", "testing")


@dataclass
class Video:
    """One clip: its name, where its frames are, and (test split) its ground truth."""

    name: str
    source: FrameSource
    labels: FrameLabels | None = None
    masks: MaskSource | None = None


def read_dataset(name: str, root: str | Path, split: str,
                 labels: str | Path | None = None) -> list[Video]:
    """The videos of ``split`` in the ``name`` layout; raises DataError naming what is wrong."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
    reader = READERS.get(ALIASES.get(name, name))
    if reader is None:
        raise DataError(f"unknown dataset layout {name!r}; choose one of {dataset_names()}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    return reader(root, split, Path(labels) if labels else None)


def read_frame_folders(root: Path, split: str, labels: Path | None) -> list[Video]:
    videos = [Video(folder.name, FrameFolder.from_folder(folder))
              for folder in _subfolders(root / split / "frames", "<video>/<frame>.jpg")]
    if split == "testing":
        labels_path = labels or _single_labels_file(root)
        if labels_path is not None:
            _split_flat_labels(videos, labels_path)
        for video in videos:
            video.masks = _mask_images(root / "testing" / "masks" / video.name)
    return videos


def read_ucsd(root: Path, split: str, labels: Path | None) -> list[Video]:
    folder = root / ("Train" if split == "training" else "Test")
    prefix = "Train" if split == "training" else "Test"
    clips = [p for p in _subfolders(folder, f"{prefix}NNN/NNN.tif")
             if p.name.startswith(prefix) and not p.name.endswith("_gt")]
    if not clips:
        raise DataError(f"{folder}: no {prefix}NNN folders inside")
    videos = [Video(clip.name, FrameFolder.from_folder(clip)) for clip in clips]
    if split == "testing":
        ranges_file = labels or _ucsd_ranges_file(root)
        if ranges_file is not None:
            ranges = read_ucsd_ranges(ranges_file)
            if len(ranges) != len(videos):
                raise DataError(f"{ranges_file}: {len(ranges)} gt_frame entries for "
                                f"{len(videos)} test videos in {folder}")
            for video, spans in zip(videos, ranges, strict=True):
                video.labels = FrameLabels(ranges_file, spans=spans)
        for video in videos:
            video.masks = _mask_images(folder / f"{video.name}_gt")
    return videos


def read_avenue(root: Path, split: str, labels: Path | None) -> list[Video]:
    if not (root / "training_videos").is_dir() and (root / "training" / "frames").is_dir():
        return read_frame_folders(root, split, labels)  # MNAD's re-encoding of Avenue
    videos = _video_files(root / f"{split}_videos")
    if split == "testing":
        mask_dir = _first_dir(root / "testing_label_mask",
                              root / "ground_truth_demo" / "testing_label_mask")
        if mask_dir is not None:
            for video in videos:
                # Avenue names video 01.avi's labels 1_label.mat
                number = str(int(video.name)) if video.name.isdigit() else video.name
                mat = mask_dir / f"{number}_label.mat"
                if not mat.is_file():
                    raise DataError(f"{mask_dir}: no label file for test video {video.name!r} "
                                    f"(expected {mat.name})")
                video.masks = MaskVolume(mat)
                video.labels = FrameLabels(mat, array=video.masks.frame_labels())
    return videos


def read_shanghaitech(root: Path, split: str, labels: Path | None) -> list[Video]:
    if split == "training":
        return _video_files(root / "training" / "videos")
    videos = [Video(folder.name, FrameFolder.from_folder(folder))
              for folder in _subfolders(root / "testing" / "frames", "<video>/<frame>.jpg")]
    label_dir = labels or root / "testing" / "test_frame_mask"
    for video in videos:
        label_file = label_dir / f"{video.name}.npy"
        if not label_file.is_file():
            raise DataError(f"{label_file}: frame labels of test video {video.name!r} not found")
        video.labels = FrameLabels(label_file, array=read_flat_labels(label_file))
        mask_file = root / "testing" / "test_pixel_mask" / f"{video.name}.npy"
        video.masks = MaskVolume(mask_file) if mask_file.is_file() else None
    return videos


def read_video_files(root: Path, split: str, labels: Path | None) -> list[Video]:
    videos = _video_files(root / split)
    labels_file = labels or root / "labels.csv"
    if split == "testing" and (labels is not None or labels_file.is_file()):
        spans = read_labels_csv(labels_file)
        by_name = {v.name: v for v in videos} | {v.source.location.name: v for v in videos}
        unknown = sorted(set(spans) - set(by_name))
        if unknown:
            raise DataError(f"{labels_file}: no test video named {unknown[0]!r} in "
                            f"{root / split} (names are file names with or without extension)")
        for video in videos:
            mine = spans.get(video.name, []) + spans.get(video.source.location.name, [])
            video.labels = FrameLabels(labels_file, spans=mine)
    if split == "testing":
        _attach_mask_folders(videos, root / "testing_masks")
    return videos


READERS: dict[str, Callable[[Path, str, Path | None], list[Video]]] = {
    "frames": read_frame_folders,
    "ucsd": read_ucsd,
    "avenue": read_avenue,
    "shanghaitech": read_shanghaitech,
    "videos": read_video_files,
}


def _subfolders(folder: Path, expected: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected {folder}/{expected}")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"{folder}: no video folders inside; expected {folder}/{expected}")
    return found


def _video_files(folder: Path) -> list[Video]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected video files "
                        f"({'/'.join(VIDEO_EXTENSIONS)}) inside")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no video files ({'/'.join(VIDEO_EXTENSIONS)}) inside")
    return [Video(path.stem, VideoFile(path)) for path in files]


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def _single_labels_file(root: Path) -> Path | None:
    """The one ``frame_labels_*.npy`` in ``root``; None if there is none."""
    candidates = sorted(root.glob("frame_labels_*.npy"))
    if len(candidates) > 1:
        raise DataError(f"{root}: several label files ({', '.join(p.name for p in candidates)}); "
                        "pass the right one with --labels")
    return candidates[0] if candidates else None


def _split_flat_labels(videos: list[Video], path: Path) -> None:
    """Cut one flat label array into the test videos, in order."""
    labels = read_flat_labels(path)
    total = sum(v.source.frame_count() for v in videos)
    if len(labels) != total:
        raise DataError(f"{path}: {len(labels)} labels but the {len(videos)} test videos hold "
                        f"{total} frames")
    start = 0
    for video in videos:
        count = video.source.frame_count()
        video.labels = FrameLabels(path, array=labels[start:start + count])
        start += count


def _ucsd_ranges_file(root: Path) -> Path | None:
    candidates = sorted(root.glob("Test/*.m")) or sorted(root.glob("*.m"))
    if len(candidates) > 1:
        raise DataError(f"{root}: several .m label files ({', '.join(map(str, candidates))}); "
                        "pass the right one with --labels")
    return candidates[0] if candidates else None


def _attach_mask_folders(videos: list[Video], folder: Path) -> None:
    """Each test video's masks from ``folder/<video>/``, where that folder exists; a mask
    folder that names no test video is an error (a typo would silently drop its masks)."""
    if not folder.is_dir():
        return
    names = {v.name for v in videos}
    strays = sorted(p.name for p in folder.iterdir()
                    if p.is_dir() and not p.name.startswith(".") and p.name not in names)
    if strays:
        raise DataError(f"{folder / strays[0]}: mask folder of no test video (test videos "
                        f"are named by their file names without extension)")
    for video in videos:
        video.masks = _mask_images(folder / video.name)


def _mask_images(folder: Path) -> MaskImages | None:
    if not folder.is_dir():
        return None
    paths = list_frames(folder)
    return MaskImages(paths) if paths else None
