"""comemory: video anomaly detection with the Appearance-Motion Co-memory Network.

    from comemory import preset, train, evaluate
    checkpoint = train(preset("tiny"), "data/synth", "runs/tiny")
    metrics = evaluate(checkpoint, "data/synth", "runs/tiny/eval")
"""
import os

# Before anything imports torch: OpenMP threads that spin while they wait for work take
# the cores from every other process on the machine; sleeping threads share them (see
# comemory.cpu). A value already in the environment is left as it is.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# ruff: noqa: E402  (the imports below must come after the line above)
from comemory.config import Config, preset
from comemory.errors import CheckpointError, ComemoryError, ConfigError, DataError
from comemory.evaluation import evaluate
from comemory.model import CoMemoryNet
from comemory.training import train

__all__ = ["CheckpointError", "CoMemoryNet", "ComemoryError", "Config", "ConfigError",
           "DataError", "evaluate", "preset", "train"]
__version__ = "0.1.0"
