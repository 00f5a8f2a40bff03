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

from comemory.lazy import lazy_exports  # noqa: E402  (after the line above)

# imported on first use: `comemory --version` must not wait for PyTorch
__getattr__ = lazy_exports(__name__, {
    "Config": "comemory.config", "preset": "comemory.config",
    "CheckpointError": "comemory.errors", "ComemoryError": "comemory.errors",
    "ConfigError": "comemory.errors", "DataError": "comemory.errors",
    "evaluate": "comemory.evaluate.evaluation", "CoMemoryNet": "comemory.model",
    "train": "comemory.train.loop"})
__all__ = ["CheckpointError", "CoMemoryNet", "ComemoryError", "Config", "ConfigError",
           "DataError", "evaluate", "preset", "train"]
__version__ = "0.1.0"
