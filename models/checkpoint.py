"""The checkpoint directory format GuardServe serves and the trainer exports.

A checkpoint is a plain Hugging Face directory: ``config.json``, ``model.safetensors``, ``tokenizer.json`` and
``tokenizer_config.json`` (chat template inside), ``generation_config.json``. It may carry ``guardserve.json``
with our own metadata (is it trained, what recipe, the eval summary). Everything here writes directories that
older readers (vLLM pins an older transformers) load the same way: the template lives inside
``tokenizer_config.json``, the tokenizer class is ``PreTrainedTokenizerFast``, ``rope_theta`` is top-level and
every file is world-readable.

torch/transformers are imported inside the functions that need them, so the gateway can import this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardserve.models.engine import SamplingDefaults

PAD_TOKEN = "<|endoftext|>"
END_OF_TURN = "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD_TOKEN, END_OF_TURN, *ROLE_TOKENS)

# Each turn is <|role|>content<|end|>; the generation prompt opens an assistant turn. <|end|> is the eos token.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)

METADATA_FILE = "guardserve.json"
GENERATION_CONFIG_FILE = "generation_config.json"


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    context_length: int
    trained: bool
    metadata: dict[str, Any]
    sampling_defaults: SamplingDefaults = field(default_factory=SamplingDefaults)


def read_checkpoint_info(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Read what the gateway needs to know about a checkpoint without loading weights."""
    directory = Path(path)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{directory} is not a checkpoint directory (no config.json)")
    config = json.loads(config_file.read_text())
    meta_file = directory / METADATA_FILE
    metadata: dict[str, Any] = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return CheckpointInfo(
        path=directory,
        context_length=int(config.get("max_position_embeddings", 2048)),
        trained=bool(metadata.get("trained", True)),
        metadata=metadata,
        sampling_defaults=read_sampling_defaults(directory),
    )


def read_sampling_defaults(directory: Path) -> SamplingDefaults:
    """The sampling a client gets when it sets none, from ``generation_config.json``.

    ``do_sample: false`` means greedy (``temperature=0``); otherwise the file's ``temperature`` and ``top_p``, each
    1.0 when absent (as vLLM reads them). No file, or one that is not a JSON object: OpenAI's defaults. Values
    outside what the API accepts (temperature 0..2, top_p 0..1) are ignored rather than trusted.
    """
    file = directory / GENERATION_CONFIG_FILE
    try:
        config = json.loads(file.read_text()) if file.is_file() else {}
    except (OSError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    if config.get("do_sample") is False:
        return SamplingDefaults(temperature=0.0, top_p=1.0)
    return SamplingDefaults(
        temperature=_number_in(config.get("temperature"), 0.0, 2.0, default=1.0),
        top_p=_number_in(config.get("top_p"), 0.0, 1.0, default=1.0),
    )


def _number_in(value: object, low: float, high: float, *, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return default
    return float(value)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """Byte-level BPE with digits split one per token (arithmetic needs that) and our special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_tokenizer(tokenizer: Any, directory: Path, context_length: int) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token=END_OF_TURN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=context_length,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory, save_jinja_files=False)
    _patch_json(directory / "tokenizer_config.json", tokenizer_class="PreTrainedTokenizerFast")


def padded_vocab_size(vocab_size: int) -> int:
    """The embedding rows for a tokenizer of ``vocab_size`` tokens: padded to a multiple of 64 (vLLM likes it)."""
    return -(-vocab_size // 64) * 64


def llama_config(
    *,
    vocab_size: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    context_length: int,
    pad_token_id: int,
    eos_token_id: int,
    dropout: float = 0.0,
) -> Any:
    from transformers import LlamaConfig

    padded_vocab = padded_vocab_size(vocab_size)
    return LlamaConfig(
        vocab_size=padded_vocab,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=context_length,
        tie_word_embeddings=True,
        attention_dropout=dropout,
        pad_token_id=pad_token_id,
        bos_token_id=None,
        eos_token_id=eos_token_id,
    )


def save_model(model: Any, directory: Path, *, eos_token_id: int, pad_token_id: int, do_sample: bool = False) -> None:
    """Write weights, config and generation config the way every reader agrees on.

    ``do_sample`` is the default decoding a client gets when it sets no temperature (see
    :func:`read_sampling_defaults`): greedy for trained models, sampling at temperature 1 when asked.
    """
    from transformers import GenerationConfig

    model.save_pretrained(directory, safe_serialization=True)
    GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=eos_token_id, pad_token_id=pad_token_id, do_sample=do_sample
    ).save_pretrained(directory)
    rope_theta = _rope_theta(model.config)
    _patch_json(directory / "config.json", rope_theta=rope_theta)
    for file in directory.iterdir():
        if file.is_file():
            file.chmod(0o644)


def write_metadata(directory: Path, metadata: dict[str, Any]) -> None:
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    (directory / METADATA_FILE).chmod(0o644)


def _rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def _patch_json(file: Path, **updates: Any) -> None:
    data = json.loads(file.read_text())
    data.update(updates)
    file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (weights files are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(directory: Path) -> str | None:
    """A checkpoint's identity: the sha256 of its ``SHA256SUMS`` (an export's), else of its weights file."""
    for name in ("SHA256SUMS", "model.safetensors"):
        if (directory / name).is_file():
            return sha256_file(directory / name)
    return None


SUMS = "SHA256SUMS"  # a checkpoint's manifest: `sha256sum -c SHA256SUMS` checks every other file


def write_sums(directory: Path) -> None:
    lines = [f"{sha256_file(f)}  {f.name}" for f in sorted(directory.iterdir()) if f.is_file() and f.name != SUMS]
    (directory / SUMS).write_text("\n".join(lines) + "\n")
    (directory / SUMS).chmod(0o644)


@contextlib.contextmanager
def staged_directory(out: Path, suffix: str) -> Iterator[Path]:
    """Write the directory ``out`` atomically: yields an empty staging folder beside it (``out`` + ``suffix``); when
    the block ends without an error its files are made world-readable, ``SHA256SUMS`` is written and the folder
    replaces ``out``. On an error the staging folder is removed and ``out`` stays as it was."""
    staging = out.with_name(out.name + suffix)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    staging.chmod(0o755)
    try:
        yield staging
        for file in staging.iterdir():
            if file.is_file():
                file.chmod(0o644)
        write_sums(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def verify_sums(directory: Path) -> list[str]:
    """Problems found (empty when every listed file is present and matches, and no file is unlisted)."""
    problems = []
    listed: set[str] = set()
    for line in (directory / SUMS).read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed.add(name)
        file = directory / name
        if not file.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(file) != digest:
            problems.append(f"{name}: sha256 mismatch")
    for file in directory.iterdir():
        if file.is_file() and file.name != SUMS and file.name not in listed:
            problems.append(f"{file.name}: not in {SUMS}")
    return problems
