"""Count a request's prompt tokens the way the served model will, without transformers or torch.

:class:`TokenizerCounter` reads a checkpoint's ``tokenizer.json`` (the ``tokenizers`` library) and renders the
chat template from ``tokenizer_config.json`` with Jinja as transformers does, so its counts equal the engine's.
:class:`EstimateCounter` is for models whose tokenizer the gateway does not have (an ``engine: openai`` entry
without ``tokenizer:``): about ``chars_per_token`` characters per token (default 3, while English BPE averages ~4,
so it over-counts), plus a few tokens per chat message for the template. It is only used to *reserve*; the
reservation is reconciled with the engine's real usage when the response ends.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from guardserve.models.engine import GenerationRequest


class TokenCounter(Protocol):
    exact: bool

    def count(self, request: GenerationRequest) -> int: ...


def request_chars(request: GenerationRequest) -> int:
    if request.messages is not None:
        return sum(len(m.content) for m in request.messages)
    return len(request.prompt or "")


class EstimateCounter:
    exact = False

    def __init__(self, chars_per_token: float = 3.0, per_message: int = 4, overhead: int = 3) -> None:
        self.chars_per_token = chars_per_token
        self.per_message = per_message
        self.overhead = overhead

    def text_tokens(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8")) / self.chars_per_token)

    def count(self, request: GenerationRequest) -> int:
        if request.messages is not None:
            return self.overhead + sum(self.per_message + self.text_tokens(m.content) for m in request.messages)
        return self.text_tokens(request.prompt or "") + 1


def _special_tokens(config: dict[str, Any]) -> dict[str, str]:
    tokens = {}
    for key, value in config.items():
        if key.endswith("_token") and value is not None:
            tokens[key] = value.get("content", "") if isinstance(value, dict) else str(value)
    return tokens


class TokenizerCounter:
    exact = True

    def __init__(self, tokenizer: Any, chat_template: str | None, special_tokens: dict[str, str]) -> None:
        self._tokenizer = tokenizer
        self._template = _compile(chat_template) if chat_template else None
        self._special = special_tokens
        self._fallback = EstimateCounter()

    @classmethod
    def from_dir(cls, directory: str | Path) -> TokenizerCounter:
        """Load ``tokenizer.json`` and the chat template of ``tokenizer_config.json`` (file IO: not on the loop)."""
        from tokenizers import Tokenizer

        path = Path(directory)
        config_file = path / "tokenizer_config.json"
        config: dict[str, Any] = json.loads(config_file.read_text()) if config_file.is_file() else {}
        template = config.get("chat_template")
        if template is None and (path / "chat_template.jinja").is_file():
            template = (path / "chat_template.jinja").read_text()
        if isinstance(template, list):  # named templates: take the default one
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        return cls(Tokenizer.from_file(str(path / "tokenizer.json")), template, _special_tokens(config))

    def count(self, request: GenerationRequest) -> int:
        if request.messages is None:
            return len(self._tokenizer.encode(request.prompt or "", add_special_tokens=True).ids)
        if self._template is None:
            return self._fallback.count(request)
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            text = self._template.render(messages=messages, add_generation_prompt=True, **self._special)
        except Exception:  # the engine will report the template's complaint; we only reserve
            return self._fallback.count(request)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def _compile(source: str) -> Any:
    """Compile a chat template the way transformers does (sandboxed, trim_blocks, lstrip_blocks)."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    def tojson(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, ensure_ascii=False, indent=indent)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now(UTC).strftime(fmt)
    return env.from_string(source)
