"""Detection: the detector (frames -> scores and score maps), ``comemory detect``'s files.

    source -> Detector (detect.detector) -> AlertPolicy (comemory.alerts) -> sinks
    (detect.outputs for ``detect``; comemory.serve.recorder for ``serve``)
"""
from comemory.detect.command import detect
from comemory.detect.detector import STAGES, Detector, FrameResult, StreamState
from comemory.detect.engines import torch_engine

__all__ = ["STAGES", "Detector", "FrameResult", "StreamState", "detect", "torch_engine"]
