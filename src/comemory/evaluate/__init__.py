"""Evaluation on a labelled test split: the run and its files (evaluate.evaluation), the
metrics (evaluate.metrics), the pictures (evaluate.plots, which ``detect`` draws its score
plot with too). Imported on first use: ``detect`` loads the plots, not the evaluation."""
from comemory.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "evaluate": "comemory.evaluate.evaluation", "evaluate_floor": "comemory.evaluate.evaluation"})
__all__ = ["evaluate", "evaluate_floor"]
