"""comemory: video anomaly detection with the Appearance-Motion Co-memory Network.

    from comemory import preset, train, evaluate
    checkpoint = train(preset("tiny"), "data/synth", "runs/tiny")
    metrics = evaluate(checkpoint, "data/synth", "runs/tiny/eval")
"""
from comemory.config import Config, preset
from comemory.errors import CheckpointError, ComemoryError, ConfigError, DataError
from comemory.evaluation import evaluate
from comemory.model import CoMemoryNet
from comemory.training import train

__all__ = ["CheckpointError", "CoMemoryNet", "ComemoryError", "Config", "ConfigError",
           "DataError", "evaluate", "preset", "train"]
__version__ = "0.1.0"
