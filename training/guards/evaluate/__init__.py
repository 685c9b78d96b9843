"""``guardserve guards eval``: every guard of the gateway measured on the blind evaluation sets.

One module per job: :mod:`.metrics` (rates with Wilson intervals, ROC), :mod:`.fairness` (identity-term bias),
:mod:`.classifiers_eval` (the classifier guards through ``Guardrails.moderate``), :mod:`.pii_eval` (the policy's PII
engines against gold spans), :mod:`.distortion` (does input screening change the bundled model's answers),
:mod:`.report` (Markdown, JSON, plots, floors) and :mod:`.cli`.
"""
