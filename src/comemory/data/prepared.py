"""Videos prepared for the model, cached on disk, and the samples drawn from them.

Each video is decoded and resized once; its flows are computed once per extractor.
Both live under ``<cache_dir>/<video key>/`` as ``.npy`` files opened memory-mapped:

    frames-<size>x<channels>.npy        uint8   (T, S, S, C)
    flow-<size>-<flow key>.npy          float16 (T-1, S, S, 2)
    flow-<size>-<flow key>.json         the extractor and its settings

The video key hashes the frame folder's path and each file's name, size and modification
time, so an edited dataset is prepared again; precomputed ``.flo`` flows are keyed by their
folder too. Files are written atomically and the JSON last, so an interrupted run never
leaves a half-written entry that is trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from comemory import storage
from comemory.config import Config
from comemory.data.flow import estimate_flows, flow_identity, load_flo_flows
from comemory.data.frames import Video, attach_labels, find_labels_file, find_videos, read_frame


def default_cache_dir() -> Path:
    return Path(os.environ.get("COMEMORY_CACHE", Path.home() / ".cache" / "comemory"))


@dataclass
class PreparedVideo:
    """frames: uint8 (T, S, S, C); flows: float16 (T-1, S, S, 2), flows[t] = frame t -> t+1."""

    name: str
    frames: np.ndarray
    flows: np.ndarray
    labels: np.ndarray | None = None


def load_split(root: str | Path, split: str, config: Config, cache_dir: str | Path | None = None,
               labels_path: str | Path | None = None) -> list[PreparedVideo]:
    """Find, label (testing) and prepare every video of ``split``, with a progress bar."""
    videos = find_videos(root, split)
    if split == "testing":
        attach_labels(videos, labels_path or find_labels_file(root))
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    flo_root = Path(config.flow.flo_dir) / split if config.flow.method == "flo" else None
    return [prepare_video(video, config, cache_dir, flo_root)
            for video in tqdm(videos, desc=f"preparing {split}", unit="video", leave=False)]


def prepare_video(video: Video, config: Config, cache_dir: Path,
                  flo_root: Path | None = None) -> PreparedVideo:
    entry = cache_dir / _video_key(video)
    size, channels = config.model.image_size, config.model.channels
    frames = _cached(entry / f"frames-{size}x{channels}.npy",
                     lambda: np.stack([read_frame(p, size, channels) for p in video.frame_paths]))
    record = flow_identity(config.flow)
    if flo_root is not None:  # precomputed flows: which files they are is part of the key
        record["source"] = str((flo_root / video.name).resolve())
    flow_key = hashlib.sha1(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]
    flow_path = entry / f"flow-{size}-{flow_key}.npy"

    def compute_flows() -> np.ndarray:
        if flo_root is not None:
            return load_flo_flows(flo_root / video.name, len(frames), size)
        return estimate_flows(np.asarray(frames), config.flow)

    flows = _cached(flow_path, lambda: compute_flows().astype(np.float16), meta=record)
    return PreparedVideo(video.name, frames, flows, video.labels)


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


def _video_key(video: Video) -> str:
    digest = hashlib.sha1(str(Path(video.frame_paths[0]).parent.resolve()).encode())
    for path in video.frame_paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return f"{video.name}-{digest.hexdigest()[:16]}"


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, C) -> float32 (..., C, H, W) in [-1, 1]."""
    tensor = torch.from_numpy(np.array(frames)).float()  # copies out of the read-only memmap
    tensor = tensor.div(127.5).sub(1.0)
    return tensor.movedim(-1, -3)


class FrameTriplets(Dataset):
    """Samples (I_{t-1}, I_t, I_{t+1}, F_t) for t = 1 .. T-2 of every video.

    Each item is a dict: previous, current, target (C, S, S) in [-1, 1]; flow (2, S, S)
    from I_{t-1} to I_t; video (index into ``videos``); frame (t + 1, the index of the
    predicted frame, which is the frame the sample scores).
    """

    def __init__(self, videos: list[PreparedVideo]):
        self.videos = videos
        self.index = [(v, t) for v, video in enumerate(videos)
                      for t in range(1, len(video.frames) - 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | int]:
        v, t = self.index[item]
        video = self.videos[v]
        previous, current, target = to_model_range(video.frames[t - 1:t + 2])
        flow = torch.from_numpy(np.asarray(video.flows[t - 1], dtype=np.float32)).permute(2, 0, 1)
        return {"previous": previous, "current": current, "target": target, "flow": flow,
                "video": v, "frame": t + 1}
