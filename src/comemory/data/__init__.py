"""Data: frame folders on disk, optical flow, the prepared-video cache, synthetic scenes."""
from comemory.data.frames import Video, find_videos
from comemory.data.prepared import FrameTriplets, PreparedVideo, load_split
from comemory.data.synth import SynthSpec, synthesize

__all__ = ["FrameTriplets", "PreparedVideo", "SynthSpec", "Video", "find_videos", "load_split",
           "synthesize"]
