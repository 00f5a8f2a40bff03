"""Data: dataset readers, optical flow, the prepared-video cache, synthetic scenes."""
from comemory.data.datasets import Video, dataset_names, read_dataset
from comemory.data.prepared import FrameWindows, PreparedVideo, load_split
from comemory.data.synth import SynthSpec, synthesize

__all__ = ["FrameWindows", "PreparedVideo", "SynthSpec", "Video", "dataset_names", "load_split",
           "read_dataset", "synthesize"]
