"""The tokenizer: byte-level BPE (digits split one per token) trained on the training split, saved as a Hugging Face
fast tokenizer with our chat template (:mod:`guardserve.models.checkpoint` owns the format)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from guardserve.models.checkpoint import END_OF_TURN, PAD_TOKEN, save_tokenizer, train_tokenizer
from guardserve.training.records import Record


def render(record: Record) -> str:
    """The text the model sees, exactly as the chat template renders it (text records end with ``<|endoftext|>``)."""
    if record.messages is not None:
        return "".join(f"<|{m['role']}|>{m['content']}{END_OF_TURN}" for m in record.messages)
    return f"{record.text}{PAD_TOKEN}"


def build_tokenizer(records: list[Record], vocab_size: int, directory: Path, context_length: int) -> Any:
    def texts() -> Iterator[str]:
        for record in records:
            yield render(record)

    tokenizer = train_tokenizer(texts(), vocab_size=vocab_size)
    directory.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tokenizer, directory, context_length)
    return tokenizer


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def adopt_tokenizer(checkpoint: Path, directory: Path) -> Any:
    """Fine-tuning keeps the tokenizer the weights were trained with: copy it from the exported checkpoint."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if not (checkpoint / name).is_file():
            raise FileNotFoundError(f"{checkpoint} has no {name}: not an exported checkpoint")
        shutil.copyfile(checkpoint / name, directory / name)
    return load_tokenizer(directory)


def load_tokenizer(directory: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(directory / "tokenizer.json"))
