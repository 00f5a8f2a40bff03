"""Data: dataset readers, optical flow, the prepared-video cache, synthetic scenes."""
from comemory.lazy import lazy_exports

# imported on first use: the command line reads data.layouts without loading OpenCV
__getattr__ = lazy_exports(__name__, {
    "Video": "comemory.data.datasets", "dataset_names": "comemory.data.datasets",
    "read_dataset": "comemory.data.datasets", "FrameWindows": "comemory.data.prepared",
    "PreparedVideo": "comemory.data.prepared", "load_split": "comemory.data.prepared",
    "SynthSpec": "comemory.data.synth", "synthesize": "comemory.data.synth"})
__all__ = ["FrameWindows", "PreparedVideo", "SynthSpec", "Video", "dataset_names", "load_split",
           "read_dataset", "synthesize"]
