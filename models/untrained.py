"""Build an *untrained* checkpoint: a real tokenizer trained on a few KB of text, random Llama weights.

It exists so that the gateway and its tests run against a real checkpoint served by the real engine before (and
independently of) the trainer. Its answers are noise (sampled at temperature 1 unless the client
asks otherwise: its ``generation_config.json`` says ``do_sample: true``); ``guardserve.json`` says
``"trained": false`` and ``/v1/models`` shows it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from guardserve.models.checkpoint import (
    END_OF_TURN,
    PAD_TOKEN,
    llama_config,
    save_model,
    save_tokenizer,
    train_tokenizer,
    write_metadata,
)

CORPUS = Path(__file__).with_name("tiny_corpus.txt")


@dataclass(frozen=True)
class Size:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    context_length: int


SIZES = {
    # Fast to build and run: for tests.
    "test": Size(vocab_size=512, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=176, context_length=2048),
    # The shape of the default trained model (about 4M parameters): for `make serve` and benchmarks.
    "default": Size(
        vocab_size=4096, hidden_size=256, num_layers=4, num_heads=4, intermediate_size=704, context_length=512
    ),
}


def build_untrained_checkpoint(directory: str | Path, size: str = "test", seed: int = 0) -> Path:
    """Write the checkpoint atomically (build in a temp dir, then rename) and return its path."""
    import torch

    from guardserve.models.hf import transformers_offline

    transformers = transformers_offline()

    spec = SIZES[size]
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    work.chmod(0o755)
    try:
        text = CORPUS.read_text(encoding="utf-8")
        tokenizer = train_tokenizer(text.splitlines(), vocab_size=spec.vocab_size)
        save_tokenizer(tokenizer, work, spec.context_length)
        eos_id = tokenizer.token_to_id(END_OF_TURN)
        pad_id = tokenizer.token_to_id(PAD_TOKEN)
        config = llama_config(
            vocab_size=tokenizer.get_vocab_size(),
            hidden_size=spec.hidden_size,
            num_layers=spec.num_layers,
            num_heads=spec.num_heads,
            intermediate_size=spec.intermediate_size,
            context_length=spec.context_length,
            pad_token_id=pad_id,
            eos_token_id=eos_id,
        )
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
        # sampling by default: greedy decoding of random weights is one repeated token, often an empty one
        save_model(model, work, eos_token_id=eos_id, pad_token_id=pad_id, do_sample=True)
        write_metadata(
            work,
            {
                "trained": False,
                "description": f"untrained ({size} size, random weights, seed {seed}): answers are noise",
                "parameters": sum(p.numel() for p in model.parameters()),
            },
        )
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return target
