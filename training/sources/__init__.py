"""Data sources: each turns a recipe entry into records plus what the data manifest needs (inputs and hashes)."""

from __future__ import annotations

from guardserve.training.sources.base import InputFile, Loaded, load_source

__all__ = ["InputFile", "Loaded", "load_source"]
