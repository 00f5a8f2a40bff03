"""The samples the network learns from and scores offline: windows of past frames, the
frame to predict and the flow between the last two past frames; of whole frames
(``model.input: frames``) or of each object's crop (``objects``)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from comemory.data.crops import crop_window, frame_boxes, is_scene_box
from comemory.data.model_input import PreparedVideo, to_model_range
from comemory.scoring.motion_model import DIRECTION_BINS, box_motion


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


class ObjectWindows(Dataset):
    """FrameWindows' samples, one per object: for each frame t+1 with P past frames, each
    of its boxes (the scene box first; ``comemory.data.crops``) cropped from
    I_{t-P+1} .. I_{t+1} and from F_t, resized to ``crop_size``.

    Each item is a dict: past (P, C, K, K) and target (C, K, K) in [-1, 1], flow (2, K, K)
    in ``flow_units`` (crop or grid pixels), K = crop_size; video; frame (t + 1); box (4,)
    int: x, y, width, height of the crop on the S x S grid; box_motion (8,) float32, the
    box's mean flow magnitude per direction in grid pixels (what ``score.motion_model``
    reads: ``comemory.scoring.motion_model.box_motion``; zeros for the scene box).
    """

    def __init__(self, videos: list[PreparedVideo], past_frames: int, crop_size: int,
                 flow_units: str):
        self.videos = videos
        self.past_frames = past_frames
        self.crop_size, self.flow_units = crop_size, flow_units
        rows = []
        for v, video in enumerate(videos):
            if video.boxes is None:
                raise ValueError(f"{video.name}: no boxes; prepare it with model.input "
                                 "objects")
            per_frame = frame_boxes(video.boxes, len(video.frames), video.frames.shape[1])
            rows += [(v, frame, *box) for frame in range(past_frames, len(video.frames))
                     for box in per_frame[frame]]
        self.index = np.array(rows, dtype=np.int32).reshape(-1, 6)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor | int]:
        v, frame, *box = (int(value) for value in self.index[item])
        video, box = self.videos[v], np.array(box)
        grid_flow = video.flows[frame - 2]
        frames, flow = crop_window(video.frames[frame - self.past_frames:frame + 1],
                                   grid_flow, box, self.crop_size, self.flow_units)
        window = to_model_range(frames)
        # the motion model never reads the scene box (the whole grid), and binning its
        # flow would cost 3 ms a sample, in training too
        scene = is_scene_box(box, video.frames.shape[1])
        motion = np.zeros(DIRECTION_BINS) if scene else box_motion(grid_flow, box)
        return {"past": window[:-1], "target": window[-1],
                "flow": torch.from_numpy(flow).to(torch.get_default_dtype()), "video": v,
                "frame": frame, "box": torch.from_numpy(box),
                "box_motion": torch.from_numpy(motion.astype(np.float32))}


def model_windows(videos: list[PreparedVideo], model: torch.nn.Module) -> Dataset:
    """The samples ``model`` learns from and scores: ObjectWindows where its config says
    ``input: objects``, else FrameWindows."""
    config = model.config
    if config.input == "objects":
        return ObjectWindows(videos, model.past_frames, config.crop_size, config.crop_flow)
    return FrameWindows(videos, model.past_frames)
