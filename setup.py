"""Lists the packages for setuptools; everything else is in pyproject.toml.

The import package ``guardserve`` is this repository's ``guardserve/`` directory, and its subpackages are the
top-level directories ``app/``, ``guardrails/``, ``models/`` and ``training/`` (``[tool.setuptools.package-dir]``).
``[tool.setuptools.packages.find]`` cannot prefix the names it finds, so they are found here, from the real
directories (never through the symlinks in ``guardserve/``), namespace packages (data folders) included.
"""

from setuptools import find_namespace_packages, setup

SUBPACKAGES = ("app", "guardrails", "models", "training")

packages = ["guardserve"]
for sub in SUBPACKAGES:
    found = find_namespace_packages(where=sub, exclude=["*__pycache__*"])
    packages += [f"guardserve.{sub}", *(f"guardserve.{sub}.{p}" for p in sorted(found))]
setup(packages=packages)
