"""Ground-truth optical flow f(I_{t-1}, I_t) (eq. 3.11).

The thesis uses FlowNet2, whose weights cannot be had here; OpenCV's DIS is the
default, Farneback a second choice, and precomputed Middlebury ``.flo`` files let
users bring FlowNet2 or RAFT flows. Flows are (H, W, 2) float32, (u, v) in pixels.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from comemory.config import FlowConfig, flow_problems
from comemory.data.frames import content_box, native_frame, to_grey, to_model_grid
from comemory.errors import ConfigError, DataError

DIS_PRESETS = {  # keyed by config.DIS_PRESET_NAMES
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FLO_MAGIC = 202021.25  # "PIEH" read as a little-endian float32


def flow_identity(config: FlowConfig) -> dict[str, str | int]:
    """What makes two flows comparable: the method, its settings and the resolution it
    ran at, not file locations."""
    problems = flow_problems(config)
    if problems:
        raise ConfigError(problems[0])
    # flows on the model grid keep the identity they had before `at` existed: old
    # checkpoints and caches stay valid
    place = ({} if config.at == "model" or config.method == "flo"
             else {"at": "native", "longest_side": config.longest_side})
    if config.method == "dis":
        return {"method": "dis", "preset": config.preset, **place}
    return {"method": config.method, **place}


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


class GridFlow:
    """Flow targets on the model's S x S grid, estimated where ``flow.at`` says.

    ``input_frame(image, model_frame)``: what the extractor reads for one frame: the
    model's frame (at "model"), or the decoded BGR ``image`` converted at its own
    resolution (at "native", at most ``flow.longest_side`` on its longest side).
    ``grid_flow(previous, current)``: two such inputs -> float32 (S, S, 2) on the model
    grid, in pixels of that grid. ``video_flows(inputs)``: (T, ...) -> (T-1, S, S, 2).
    """

    def __init__(self, flow: FlowConfig, size: int, channels: int, resize: str = "squash"):
        self.estimator = FlowEstimator(flow)
        self.native = flow.at == "native"
        self.longest_side, self.size, self.channels, self.resize = (
            flow.longest_side, size, channels, resize)

    def input_frame(self, image: np.ndarray, model_frame: np.ndarray) -> np.ndarray:
        if not self.native:
            return model_frame
        return native_frame(image, self.channels, self.longest_side)

    def grid_flow(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        flow = self.estimator(previous, current)
        return resize_flow(flow, self.size, self.resize) if self.native else flow

    def video_flows(self, inputs: np.ndarray) -> np.ndarray:
        pairs = [self.grid_flow(a, b) for a, b in zip(inputs[:-1], inputs[1:], strict=True)]
        return np.stack(pairs).astype(np.float32)


def load_flo_flows(flo_dir: Path, num_frames: int, size: int,
                   resize: str = "squash") -> np.ndarray:
    """Read ``num_frames - 1`` sorted ``.flo`` files (file k: frame k -> k+1), resized to
    (size, size) with the vectors rescaled: float32 (T-1, size, size, 2)."""
    files = sorted(flo_dir.glob("*.flo")) if flo_dir.is_dir() else []
    if len(files) != num_frames - 1:
        raise DataError(f"{flo_dir}: found {len(files)} .flo files, expected {num_frames - 1} "
                        f"(one per consecutive frame pair of a {num_frames}-frame video)")
    return np.stack([resize_flow(read_flo(path), size, resize) for path in files])


def resize_flow(flow: np.ndarray, size: int, resize: str = "squash") -> np.ndarray:
    """(H, W, 2) -> (size, size, 2) on the model grid, each vector in grid pixels: squashed,
    u is scaled by size/W and v by size/H; letterboxed, both by size/max(H, W), and the
    bars hold zero flow."""
    height, width = flow.shape[:2]
    _, _, inner_h, inner_w = content_box(height, width, size, resize)
    scaled = flow * np.array([inner_w / width, inner_h / height], dtype=np.float32)
    return to_model_grid(scaled.astype(np.float32), size, resize, cv2.INTER_LINEAR)


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
