"""Videos prepared for the model, cached on disk, and the samples drawn from them.

Each video is decoded and resized once; its flows are computed once per extractor.
Both live under ``<cache_dir>/<video key>/`` as ``.npy`` files opened memory-mapped:

    frames-<size>x<channels>.npy        uint8   (T, S, S, C)
    flow-<size>-<flow key>.npy          float16 (T-1, S, S, 2)
    flow-<size>-<flow key>.json         the extractor and its settings

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from comemory import storage
from comemory.config import HOLDOUT_MODES, Config
from comemory.data.datasets import Video, read_dataset
from comemory.data.flow import GridFlow, flow_identity, load_flo_flows
from comemory.data.frames import resize_frame
from comemory.data.labels import MaskSource
from comemory.errors import DataError
from comemory.progress import progress


def default_cache_dir() -> Path:
    return Path(os.environ.get("COMEMORY_CACHE", Path.home() / ".cache" / "comemory"))


@dataclass
class PreparedVideo:
    """frames: uint8 (T, S, S, C); flows: float16 (T-1, S, S, 2), flows[t] = frame t -> t+1;
    resolution: (height, width) on disk; labels: int64 (T,) for labelled test videos;
    masks: where its pixel masks are, if any."""

    name: str
    frames: np.ndarray
    flows: np.ndarray
    resolution: tuple[int, int]
    labels: np.ndarray | None = None
    masks: MaskSource | None = None


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


def split_holdout(videos: list[PreparedVideo], fraction: float, past_frames: int, *,
                  by: str) -> tuple[list[PreparedVideo], list[PreparedVideo]]:
    """(training part, held-out part) of the videos.

    ``by="tail"``: the last ``fraction`` of each video's frames are held out. A held-out
    part starts ``past_frames`` frames early so that it scores exactly the held-out frames;
    those first frames are inputs only. A video too short to give both parts is used whole
    for training. ``by="videos"``: ``fraction`` of the videos (at least one, evenly spread
    over the list) are held out whole, so no one seen in training appears in them.
    """
    training, held_out = [], []
    starts = holdout_starts([len(v.frames) for v in videos], fraction, past_frames, by=by)
    for video, start in zip(videos, starts, strict=True):
        if start is None:
            training.append(video)
            continue
        if start > 0:
            cut = start + past_frames
            training.append(PreparedVideo(video.name, video.frames[:cut],
                                          video.flows[:cut - 1], video.resolution))
        held_out.append(PreparedVideo(f"{video.name} (held out)", video.frames[start:],
                                      video.flows[start:], video.resolution))
    return training, held_out



def holdout_starts(counts: list[int], fraction: float, past_frames: int, *,
                   by: str) -> list[int | None]:
    """For videos of ``counts`` frames, where each one's held-out part starts (its
    ``past_frames`` input frames included): 0 for a video held out whole, None for one
    not held out. See ``split_holdout``."""
    if by not in HOLDOUT_MODES:
        raise DataError(f"train.holdout must be one of {HOLDOUT_MODES}, got {by!r}")
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"train.holdout_fraction must be in [0, 1), got {fraction}")
    if by == "tail":
        return [holdout_start(count, fraction, past_frames) for count in counts]
    if fraction == 0.0:
        return [None] * len(counts)
    if len(counts) < 2:
        raise DataError(f"train.holdout videos needs at least 2 training videos, found "
                        f"{len(counts)}: use train.holdout tail")
    held = min(len(counts) - 1, max(1, round(fraction * len(counts))))
    chosen = {int((i + 0.5) * len(counts) / held) for i in range(held)}
    return [0 if index in chosen else None for index in range(len(counts))]


def holdout_start(count: int, fraction: float, past_frames: int) -> int | None:
    """The first frame of a ``count``-frame video's held-out tail (its ``past_frames``
    input frames included), or None where the video is too short to give both parts
    (``fraction`` checked by ``holdout_starts``)."""
    held = round(fraction * count)
    cut = count - held
    if held < 1 or cut < past_frames + 1:
        return None
    return cut - past_frames


def prepare_images(name: str, images: np.ndarray, config: Config,
                   labels: np.ndarray | None = None) -> PreparedVideo:
    """Frames already decoded, uint8 BGR (T, H, W, 3), through the same steps as a video
    on disk and a live frame in ``detect`` (model grid, flow where ``flow.at`` says); not
    cached. For pseudo-anomalies made in memory."""
    model = config.model
    grid = GridFlow(config.flow, model.image_size, model.channels, model.resize)
    frames = np.stack([resize_frame(image, model.image_size, model.channels, model.resize)
                       for image in images])
    inputs = np.stack([grid.input_frame(image, frame) for image, frame in
                       zip(images, frames, strict=True)])
    flows = as_cached_flow(grid.video_flows(inputs))
    return PreparedVideo(name, frames, flows, images.shape[1:3], labels)


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
    flow_key = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]
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
    labels = video.labels.resolve(len(frames), video.name) if video.labels else None
    _check_mask_count(video, len(frames))
    return PreparedVideo(video.name, frames, flows, video.source.resolution(), labels,
                         video.masks)


def as_cached_flow(flow: np.ndarray) -> np.ndarray:
    """A flow as the cache keeps it: float16, half the disk of float32. ``detect`` rounds
    its live flows the same way, so that live and offline scores come from the same
    numbers."""
    return flow.astype(np.float16)


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


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, C) -> (..., C, H, W) in [-1, 1], float32 (torch's default dtype)."""
    # np.array copies out of the read-only memmap
    tensor = torch.from_numpy(np.array(frames)).to(torch.get_default_dtype())
    tensor = tensor.div(127.5).sub(1.0)
    return tensor.movedim(-1, -3)


class FrameWindows(Dataset):
    """Samples (I_{t-P+1} .. I_t, I_{t+1}, F_t) for every t with P past frames in the video.

    Each item is a dict: past (P, C, S, S) and target (C, S, S) in [-1, 1]; flow (2, S, S)
    from I_{t-1} to I_t; video (index into ``videos``); frame (t + 1, the index of the
    predicted frame, which is the frame the sample scores). P = 2 for the co-memory
    network, 4 for MNAD.
    """

    def __init__(self, videos: list[PreparedVideo], past_frames: int):
        self.videos = videos
        self.past_frames = past_frames
        self.index = [(v, t) for v, video in enumerate(videos)
                      for t in range(past_frames - 1, len(video.frames) - 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | int]:
        v, t = self.index[item]
        video = self.videos[v]
        window = to_model_range(video.frames[t - self.past_frames + 1:t + 2])
        flow = torch.from_numpy(np.asarray(video.flows[t - 1], dtype=np.float32))
        flow = flow.to(torch.get_default_dtype()).permute(2, 0, 1)
        return {"past": window[:-1], "target": window[-1], "flow": flow, "video": v,
                "frame": t + 1}
