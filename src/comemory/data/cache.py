"""Videos prepared for the model, cached on disk.

Each video is decoded and resized once; its flows are computed once per extractor.
Both live under ``<cache_dir>/<video key>/`` as ``.npy`` files opened memory-mapped:

    frames-<size>x<channels>.npy        uint8   (T, S, S, C)
    flow-<size>-<flow key>.npy          float16 (T-1, S, S, 2)
    flow-<size>-<flow key>.json         the extractor and its settings
    boxes-<size>x<channels>-<key>.npy   int32   (N, 5) objects (model.input: objects)

The video key is its name and its source's fingerprint (each frame file's name, size and
modification time, or the video file's), so an edited dataset is prepared again;
precomputed ``.flo`` flows are keyed by their folder too. Files are written atomically and
the JSON last, so an interrupted run never leaves a half-written entry that is trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from comemory import storage
from comemory.config import Config
from comemory.data.crops import video_boxes
from comemory.data.datasets import Video, read_dataset
from comemory.data.flow import GridFlow, flow_identity, load_flo_flows
from comemory.data.model_input import PreparedVideo, as_cached_flow
from comemory.errors import DataError
from comemory.progress import progress


def default_cache_dir() -> Path:
    return Path(os.environ.get("COMEMORY_CACHE", Path.home() / ".cache" / "comemory"))


def load_split(root: str | Path, split: str, config: Config, cache_dir: str | Path | None = None,
               labels_path: str | Path | None = None, dataset: str = "frames",
               workers: int | None = None) -> list[PreparedVideo]:
    """Read ``split`` in the ``dataset`` layout, check it, and prepare every video."""
    videos = read_split(root, split, labels_path, dataset)
    return prepare_split(videos, split, config, cache_dir, workers)


def read_split(root: str | Path, split: str, labels_path: str | Path | None = None,
               dataset: str = "frames") -> list[Video]:
    """The videos of ``split``, with every input checked that can be checked without
    decoding them all: each video opens, and its labels and masks fit its frame count
    (a video file's count as its header promises it; checked again once decoded). Seconds,
    where preparing takes minutes: a wrong label file is reported before the long work."""
    videos = read_dataset(dataset, root, split, labels_path)
    for video in videos:
        check_video(video)
    return videos


def check_video(video: Video) -> None:
    """Raise DataError if ``video`` cannot be opened or its ground truth cannot fit it."""
    video.source.resolution()  # opens the video, or its first image, and decodes a frame
    count = video.source.frame_count()
    if count is None:
        return
    if video.labels is not None:
        video.labels.resolve(count, video.name)
    _check_mask_count(video, count)


def prepare_split(videos: list[Video], split: str, config: Config,
                  cache_dir: str | Path | None = None,
                  workers: int | None = None) -> list[PreparedVideo]:
    """Prepare every video of a split (decode, resize, flow; cached), with a progress bar.

    ``workers`` videos are prepared at once, by default one per core (OpenCV releases the
    GIL while it decodes and estimates flow, so threads use the cores).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    flo_root = Path(config.flow.flo_dir) / split if config.flow.method == "flo" else None

    def prepare(video: Video) -> PreparedVideo:
        return prepare_video(video, config, cache_dir, flo_root)

    with ThreadPoolExecutor(max(1, workers or os.cpu_count() or 1)) as pool:
        return list(progress(pool.map(prepare, videos), total=len(videos),
                         desc=f"preparing {split}", unit="video", leave=False))


def prepare_video(video: Video, config: Config, cache_dir: Path,
                  flo_root: Path | None = None) -> PreparedVideo:
    """Decode, resize and estimate flows once (cached); check labels and masks fit."""
    entry = cache_dir / f"{video.name}-{video.source.fingerprint()}"
    model = config.model
    size, channels, resize = model.image_size, model.channels, model.resize
    letterbox = "-letterbox" if resize == "letterbox" else ""  # squash keeps its old name
    frames = _cached(entry / f"frames-{size}x{channels}{letterbox}.npy",
                     lambda: video.source.read(size, channels, resize))
    record = flow_identity(config.flow)
    if letterbox:
        record["resize"] = resize
    if flo_root is not None:  # precomputed flows: which files they are is part of the key
        record["source"] = str((flo_root / video.name).resolve())
    flow_key = _settings_key(record)
    flow_path = entry / f"flow-{size}-{flow_key}.npy"

    def compute_flows() -> np.ndarray:
        if flo_root is not None:
            return load_flo_flows(flo_root / video.name, len(frames), size, resize)
        grid = GridFlow(config.flow, size, channels, resize)
        if not grid.native:
            return grid.video_flows(np.asarray(frames))
        inputs = video.source.read_native(channels, config.flow.longest_side)
        if len(inputs) != len(frames):
            raise DataError(f"{video.source.location}: decoded {len(inputs)} frames at its own "
                            f"resolution but {len(frames)} for the model (the file changed?)")
        return grid.video_flows(inputs)

    flows = _cached(flow_path, lambda: as_cached_flow(compute_flows()), meta=record)
    boxes = None
    if model.input == "objects":  # found on the grid frames, so keyed by them and the finder
        settings = asdict(config.objects)
        key = _settings_key(settings)
        boxes = _cached(entry / f"boxes-{size}x{channels}{letterbox}-{key}.npy",
                        lambda: video_boxes(np.asarray(frames), config.objects), meta=settings)
    labels = video.labels.resolve(len(frames), video.name) if video.labels else None
    _check_mask_count(video, len(frames))
    return PreparedVideo(video.name, frames, flows, video.source.resolution(), labels,
                         video.masks, boxes)


def _settings_key(settings: dict) -> str:
    """A short name for a set of settings, part of a cache file's name."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def _check_mask_count(video: Video, frame_count: int) -> None:
    if video.masks is not None and video.masks.count() != frame_count:
        raise DataError(f"{video.masks.source}: {video.masks.count()} masks for video "
                        f"{video.name!r}, which has {frame_count} frames")


def _cached(path: Path, compute: Callable[[], np.ndarray], meta: dict | None = None) -> np.ndarray:
    """Memory-map ``path`` if a complete entry exists (and its JSON matches ``meta``), else
    compute, save atomically, and record ``meta`` last."""
    meta_path = path.with_suffix(".json")
    record = {"file": path.name, **(meta or {})}
    if path.exists() and meta_path.exists():
        try:
            if json.loads(meta_path.read_text()) == record:
                return np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            pass  # unreadable entry: computed again below
    array = compute()
    storage.save_npy(path, array)
    storage.write_text(meta_path, json.dumps(record, sort_keys=True))
    return np.load(path, mmap_mode="r")
