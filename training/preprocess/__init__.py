"""The preprocessing pipeline: markup -> unicode -> filters -> exact dedupe -> near dedupe -> PII -> toxicity.

Each step is counted in a :class:`~training.preprocess.report.StepReport`. A source may skip steps (the recipe says
which and why); the report lists them.
"""

from guardserve.training.preprocess.pipeline import run_pipeline
from guardserve.training.preprocess.report import StepReport

__all__ = ["StepReport", "run_pipeline"]
