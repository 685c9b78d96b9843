"""The unit of data the trainer moves around: one chat dialogue or one plain text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")


@dataclass
class Record:
    """``messages`` (chat: loss on assistant turns) or ``text`` (plain text: loss on every token)."""

    source: str
    messages: list[dict[str, str]] | None = None
    text: str | None = None
    task: str = ""  # synthetic task label, for reports ("" for outside data)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.text is None):
            raise ValueError("a record has exactly one of messages and text")

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def contents(self) -> list[str]:
        return [m["content"] for m in self.messages] if self.messages is not None else [self.text or ""]

    def with_contents(self, contents: list[str]) -> Record:
        if self.messages is not None:
            messages = [{"role": m["role"], "content": c} for m, c in zip(self.messages, contents, strict=True)]
            return Record(self.source, messages=messages, task=self.task, meta=dict(self.meta))
        return Record(self.source, text=contents[0], task=self.task, meta=dict(self.meta))

    def flat(self) -> str:
        """One string for hashing, dedupe and filters (roles included, so a reply and a prompt differ)."""
        if self.messages is not None:
            return "\n".join(f"{m['role']}: {m['content']}" for m in self.messages)
        return self.text or ""

    def key(self) -> str:
        return hashlib.sha256(self.flat().encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source}
        if self.messages is not None:
            out["messages"] = self.messages
        else:
            out["text"] = self.text
        if self.task:
            out["task"] = self.task
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(
            source=str(data.get("source", "")),
            messages=data.get("messages"),
            text=data.get("text"),
            task=str(data.get("task", "")),
            meta=dict(data.get("meta") or {}),
        )


def write_jsonl(path: Path, records: Iterable[Record]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield Record.from_json(json.loads(line))
