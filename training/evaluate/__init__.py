"""``guardserve train eval CKPT``: quality, safety and privacy numbers for one checkpoint, and the safety gate."""

from guardserve.training.evaluate.runner import evaluate_checkpoint, gate

__all__ = ["evaluate_checkpoint", "gate"]
