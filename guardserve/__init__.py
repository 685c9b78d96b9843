"""GuardServe: the gateway (``guardserve.app``), its guardrails, the model engines and the trainer.

The subpackages are the repository's top-level directories ``app/``, ``guardrails/``, ``models/`` and ``training/``:
``pyproject.toml`` maps them here with ``package-dir`` for the wheel and editable installs, and the symlinks in this
directory show the same layout to tools that read the source tree (mypy, ``PYTHONPATH=.``).
"""
