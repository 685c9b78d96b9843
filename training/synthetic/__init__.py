"""GuardServe's synthetic corpus: templated dialogues teaching skills a tiny model can really learn.

Every task has *training* templates/values and *held-out* templates/values, disjoint by construction
(:mod:`guardserve.training.synthetic.split`), so evaluation measures generalisation, not recall.
"""

from guardserve.training.synthetic.generator import EvalItem, generate_eval, generate_training

__all__ = ["EvalItem", "generate_eval", "generate_training"]
