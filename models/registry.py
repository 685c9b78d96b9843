"""The served-model registry: a plain YAML file mapping served names to an engine.

Example (paths are relative to the file)::

    models:
      guardserve-tiny:
        engine: cpu
        checkpoint: checkpoints/guardserve-tiny
      llama-3.1-8b:
        engine: openai            # vLLM's `vllm serve`, or any OpenAI-compatible server
        url: http://vllm:8000/v1
        upstream_model: meta-llama/Llama-3.1-8B-Instruct
        context_length: 8192

Loading validates everything and reports the file and the offending entry; engines are started separately
(:func:`start_engine`) so that importing or validating the registry never loads torch.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.engine import Engine, PassThrough

if TYPE_CHECKING:
    from guardserve.models.breaker import BreakerConfig
    from guardserve.models.openai_http import HTTPEngineConfig

DEFAULT_REGISTRY = Path(__file__).with_name("registry.yaml")

Feature = Literal[
    "tools",
    "n",
    "logprobs",
    "logit_bias",
    "response_format",
    "images",
    "audio",
    "files",
    "prompt_lists",
    "token_prompts",
    "suffix",
    "completions",
    "embeddings",
]
FEATURES: dict[str, str] = {  # what each feature is, for the refusal's message
    "tools": "tool calling",
    "n": "more than one choice per request",
    "logprobs": "logprobs",
    "logit_bias": "logit_bias",
    "response_format": "structured output (response_format)",
    "images": "image or video input",
    "audio": "audio input",
    "files": "file input",
    "prompt_lists": "more than one prompt per request",
    "token_prompts": "prompts given as token ids",
    "suffix": "suffix",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}
CPU_FEATURES: frozenset[str] = frozenset({"completions"})  # the embedded engine: text in, text out
UPSTREAM_FEATURES: frozenset[str] = frozenset(FEATURES)  # an `openai` entry that lists none: a faithful proxy


class RegistryError(ValueError):
    pass


LABEL = r"^[A-Za-z0-9._-]{1,32}$"


class CandidateEntry(BaseModel):
    """A second version of a model that gets ``percent`` of its traffic (a canary), sticky per user or API key.
    Everything not given here is the stable entry's (engine, context length, features ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(pattern=LABEL)
    percent: float = Field(ge=0.0, le=100.0)
    checkpoint: Path | None = None  # cpu: required
    url: str | None = None  # openai: default the stable entry's
    upstream_model: str | None = None  # openai: default the stable entry's


STABLE = "stable"  # the version label of an entry without a `label`


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")
    engine: Literal["cpu", "openai"]
    checkpoint: Path | None = None  # cpu: a Hugging Face checkpoint directory
    url: str | None = None  # openai: base URL including /v1
    upstream_model: str | None = None  # openai: the upstream's name for the model (default: our name)
    api_key_env: str | None = None  # openai: name of an env var holding the upstream's API key
    tokenizer: Path | None = None  # openai: a directory with tokenizer.json (exact prompt counts for rate limits)
    context_length: int | None = Field(default=None, gt=0)  # cpu: defaults to the checkpoint's; openai: required
    # openai: what the upstream serves beyond text chat (default: all of FEATURES); a request that needs
    # an unlisted one gets our 400 before any upstream call. cpu: fixed (text chat and completions).
    features: frozenset[Feature] | None = None
    description: str = ""
    label: str | None = Field(default=None, pattern=LABEL)  # this version's short name (e.g. "v3"); shown in /v1/models
    candidate: CandidateEntry | None = None

    @model_validator(mode="after")
    def _engine_fields(self) -> ModelEntry:
        if self.engine == "cpu" and self.checkpoint is None:
            raise ValueError("engine 'cpu' needs 'checkpoint'")
        if self.engine == "openai" and (self.url is None or self.context_length is None):
            raise ValueError("engine 'openai' needs 'url' and 'context_length'")
        if self.engine == "cpu" and self.features is not None:
            raise ValueError("engine 'cpu' serves a fixed set of features; 'features' is for engine 'openai'")
        if self.candidate is not None:
            if self.engine == "cpu" and self.candidate.checkpoint is None:
                raise ValueError("a candidate of an engine 'cpu' model needs 'checkpoint'")
            if self.candidate.label == self.version:
                raise ValueError("the candidate needs a label of its own")
        return self

    @property
    def version(self) -> str:
        """The version label responses and records carry: ``label``, or :data:`STABLE` when the entry names none."""
        return self.label or STABLE

    def candidate_entry(self) -> ModelEntry | None:
        """The candidate as an entry of its own (same name, its label, its checkpoint or upstream), if any."""
        c = self.candidate
        if c is None:
            return None
        update: dict[str, object] = {"label": c.label, "candidate": None}
        update |= {k: v for k, v in (("checkpoint", c.checkpoint), ("url", c.url), ("upstream_model", c.upstream_model))
                   if v is not None}  # fmt: skip
        return self.model_copy(update=update)

    @property
    def served_features(self) -> frozenset[str]:
        if self.engine == "cpu":
            return CPU_FEATURES
        return frozenset(self.features) if self.features is not None else UPSTREAM_FEATURES


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: dict[str, dict[str, object]] = Field(min_length=1)


def registry_path(given: Path | None = None) -> Path:
    """The registry file a command edits: ``given``, else ``$GUARDSERVE_REGISTRY``, else the bundled one."""
    return given or Path(os.environ.get("GUARDSERVE_REGISTRY") or DEFAULT_REGISTRY)


def load_registry(path: str | Path) -> list[ModelEntry]:
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"cannot read model registry {file}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"model registry {file} is not valid YAML: {exc}") from exc
    try:
        parsed = _RegistryFile.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"model registry {file}: {_first_error(exc)}") from exc
    entries = []
    for name, fields in parsed.models.items():
        try:
            entry = ModelEntry.model_validate({"name": name, **fields})
        except ValidationError as exc:
            raise RegistryError(f"model registry {file}, model {name!r}: {_first_error(exc)}") from exc
        for attr in ("checkpoint", "tokenizer"):
            value = getattr(entry, attr)
            if value is not None and not value.is_absolute():
                entry = entry.model_copy(update={attr: (file.parent / value).resolve()})
        candidate = entry.candidate
        if candidate is not None and candidate.checkpoint is not None and not candidate.checkpoint.is_absolute():
            resolved = candidate.model_copy(update={"checkpoint": (file.parent / candidate.checkpoint).resolve()})
            entry = entry.model_copy(update={"candidate": resolved})
        entries.append(entry)
    return entries


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    return f"{where}: {err['msg']}"


@dataclass(frozen=True)
class ServedModel:
    """A registry entry with its running engine and what the API reports about it."""

    entry: ModelEntry
    engine: Engine
    context_length: int
    trained: bool
    created: int

    @property
    def name(self) -> str:
        return self.entry.name

    @functools.cached_property
    def passthrough(self) -> bool:
        """The engine takes OpenAI bodies as they are (:class:`~guardserve.models.engine.PassThrough`); checked once (a
        runtime protocol check scans the class on every call)."""
        return isinstance(self.engine, PassThrough)

    @property
    def tokenizer_dir(self) -> Path | None:
        """Where this model's tokenizer.json is, if the gateway has it (prompt counts for rate limits)."""
        return self.entry.tokenizer or self.entry.checkpoint


async def start_engine(
    entry: ModelEntry,
    cpu: CPUEngineConfig | None = None,
    http: HTTPEngineConfig | None = None,
    breaker: BreakerConfig | None = None,
) -> ServedModel:
    """Start the engine an entry names (torch is imported only when a CPU model is served)."""
    if entry.engine == "cpu":
        from guardserve.models.checkpoint import read_checkpoint_info
        from guardserve.models.cpu.engine import CPUEngine

        assert entry.checkpoint is not None
        info = read_checkpoint_info(entry.checkpoint)
        cpu_engine = await CPUEngine.load(entry.name, entry.checkpoint, cpu or CPUEngineConfig())
        context = min(entry.context_length or info.context_length, info.context_length)
        cpu_engine.context_length = context
        created = int((entry.checkpoint / "config.json").stat().st_mtime)
        return ServedModel(entry, cpu_engine, context, info.trained, created)

    from guardserve.models.breaker import BreakerEngine, CircuitBreaker
    from guardserve.models.openai_http import HTTPEngineConfig, OpenAIHTTPEngine

    assert entry.url is not None and entry.context_length is not None
    http_engine = OpenAIHTTPEngine(
        name=entry.name,
        base_url=entry.url,
        upstream_model=entry.upstream_model or entry.name,
        config=http or HTTPEngineConfig(),
        api_key_env=entry.api_key_env,
    )
    guarded = BreakerEngine(http_engine, CircuitBreaker(breaker))
    return ServedModel(entry, guarded, entry.context_length, True, int(time.time()))
