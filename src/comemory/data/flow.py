"""Ground-truth optical flow f(I_{t-1}, I_t) (eq. 3.11).

The thesis uses FlowNet2, whose weights cannot be had here; OpenCV's DIS is the
default, Farneback a second choice, and precomputed Middlebury ``.flo`` files let
users bring FlowNet2 or RAFT flows. Flows are (H, W, 2) float32, (u, v) in pixels.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from comemory.config import FlowConfig
from comemory.data.frames import to_grey
from comemory.errors import ConfigError, DataError

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FLO_MAGIC = 202021.25  # "PIEH" read as a little-endian float32


def flow_identity(config: FlowConfig) -> dict[str, str]:
    """What makes two flows comparable: the method and its settings, not file locations."""
    if config.method == "dis":
        if config.preset not in DIS_PRESETS:
            raise ConfigError(f"flow.preset {config.preset!r} unknown; choose one of "
                              f"{sorted(DIS_PRESETS)}")
        return {"method": "dis", "preset": config.preset}
    if config.method in ("farneback", "flo"):
        return {"method": config.method}
    raise ConfigError(f"flow.method {config.method!r} unknown; choose dis, farneback or flo")


class FlowEstimator:
    """Flow between consecutive frames, one pair at a time (streaming) or a whole video.

    ``estimator(previous, current)``: uint8 (H, W, C) frames -> float32 (H, W, 2), the
    flow from ``previous`` to ``current``. Not for ``flo`` (files cannot be computed).
    """

    def __init__(self, config: FlowConfig):
        identity = flow_identity(config)  # validates the method before any work
        if identity["method"] == "flo":
            raise ConfigError("flow.method 'flo' reads precomputed files: it cannot estimate "
                              "flow on new frames; train with dis or farneback to run live")
        self.config = config
        self._dis = (cv2.DISOpticalFlow_create(DIS_PRESETS[config.preset])
                     if config.method == "dis" else None)

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        a, b = to_grey(previous), to_grey(current)
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def estimate_flows(frames: np.ndarray, config: FlowConfig) -> np.ndarray:
    """frames: uint8 (T, H, W, C) -> float32 (T-1, H, W, 2), flow from frame t to t+1."""
    estimator = FlowEstimator(config)
    pairs = [estimator(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True)]
    return np.stack(pairs).astype(np.float32)


def load_flo_flows(flo_dir: Path, num_frames: int, size: int) -> np.ndarray:
    """Read ``num_frames - 1`` sorted ``.flo`` files (file k: frame k -> k+1), resized to
    (size, size) with the vectors rescaled: float32 (T-1, size, size, 2)."""
    files = sorted(flo_dir.glob("*.flo")) if flo_dir.is_dir() else []
    if len(files) != num_frames - 1:
        raise DataError(f"{flo_dir}: found {len(files)} .flo files, expected {num_frames - 1} "
                        f"(one per consecutive frame pair of a {num_frames}-frame video)")
    return np.stack([resize_flow(read_flo(path), size) for path in files])


def resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 2) -> (size, size, 2), u scaled by size/W and v by size/H."""
    height, width = flow.shape[:2]
    resized = cv2.resize(flow, (size, size), interpolation=cv2.INTER_LINEAR)
    return resized * np.array([size / width, size / height], dtype=np.float32)


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury .flo file: float32 (H, W, 2)."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 12 or np.frombuffer(raw[:4], "<f4")[0] != FLO_MAGIC:
        raise DataError(f"{path}: not a Middlebury .flo file (bad magic number)")
    width, height = np.frombuffer(raw[4:12], "<i4")
    expected = 12 + int(width) * int(height) * 8
    if width <= 0 or height <= 0 or len(raw) != expected:
        raise DataError(f"{path}: header says {width}x{height} but the file holds "
                        f"{len(raw)} bytes instead of {expected}")
    return np.frombuffer(raw[12:], "<f4").reshape(int(height), int(width), 2).copy()


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write float (H, W, 2) as a Middlebury .flo file."""
    height, width = flow.shape[:2]
    header = np.array([FLO_MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + np.ascontiguousarray(flow, dtype="<f4").tobytes())
