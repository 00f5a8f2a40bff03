"""Training: the loop (train.loop), the validation set made from held-out training frames
(train.validation_set), the score settings and threshold chosen on it (train.choice),
``comemory validate`` (train.validate), and fine-tuning on reviewed false alarms
(train.finetune). Imported on first use, so that importing one part loads no other."""
from comemory.lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "train": "comemory.train.loop", "validate_checkpoint": "comemory.train.validate",
    "finetune": "comemory.train.finetune"})
__all__ = ["finetune", "train", "validate_checkpoint"]
