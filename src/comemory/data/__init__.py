"""Data: dataset readers, optical flow, the model's input, the prepared-video cache, the
hold-out, the sample windows, objects from motion, synthetic scenes."""
from comemory.lazy import lazy_exports

# imported on first use: the command line reads data.layouts without loading OpenCV
__getattr__ = lazy_exports(__name__, {
    "Video": "comemory.data.datasets", "dataset_names": "comemory.data.datasets",
    "read_dataset": "comemory.data.datasets", "FrameWindows": "comemory.data.windows",
    "PreparedVideo": "comemory.data.model_input", "load_split": "comemory.data.cache",
    "SynthSpec": "comemory.data.synth", "synthesize": "comemory.data.synth",
    "ObjectFinder": "comemory.data.objects", "Box": "comemory.data.objects"})
__all__ = ["Box", "FrameWindows", "ObjectFinder", "PreparedVideo", "SynthSpec", "Video",
           "dataset_names", "load_split", "read_dataset", "synthesize"]
