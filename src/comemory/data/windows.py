"""The samples the network learns from and scores offline: windows of past frames, the
frame to predict and the flow between the last two past frames."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from comemory.data.model_input import PreparedVideo, to_model_range


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
