from __future__ import annotations

import hashlib
import json
from pathlib import Path

from guardserve.training.recipe import FeedbackSource, JsonlSource, TextDirSource
from guardserve.training.sources.feedback import load_feedback
from guardserve.training.sources.jsonl import load_jsonl
from guardserve.training.sources.text_dir import load_text_dir

CHAT = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_jsonl_reads_chats_and_texts_and_counts_bad_rows(tmp_path: Path) -> None:
    file = tmp_path / "data.jsonl"
    rows = [json.dumps(CHAT), json.dumps({"text": "plain"}), "{not json", json.dumps({"messages": []})]
    file.write_text("\n".join(rows) + "\n")
    loaded = load_jsonl(JsonlSource(name="j", kind="jsonl", licence="x", provenance="y", path=file), tmp_path)
    assert [r.is_chat for r in loaded.records] == [True, False]
    assert loaded.notes == {"malformed_rows": 2}
    assert loaded.inputs[0].path == "data.jsonl"
    assert loaded.inputs[0].sha256 == hashlib.sha256(file.read_bytes()).hexdigest()


def test_text_dir_makes_one_record_per_paragraph(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("First paragraph.\nStill first.\n\nSecond one.\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Third.")
    spec = TextDirSource(name="t", kind="text_dir", licence="x", provenance="y", path=tmp_path)
    loaded = load_text_dir(spec, tmp_path)
    assert [r.text for r in loaded.records] == ["First paragraph.\nStill first.", "Second one.", "Third."]
    assert sorted(i.path for i in loaded.inputs) == ["a.txt", "sub/b.txt"]


def test_feedback_export_keeps_rated_up_conversations(tmp_path: Path) -> None:
    file = tmp_path / "feedback.jsonl"
    rows = [{**CHAT, "rating": "up", "response_id": "r1"}, {**CHAT, "rating": "down"}, {"messages": CHAT["messages"]}]
    file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = FeedbackSource(name="f", kind="feedback", licence="x", provenance="y", path=file)
    loaded = load_feedback(spec, tmp_path)
    assert len(loaded.records) == 1
    assert loaded.notes == {"ratings": {"down": 1, "up": 1}, "malformed_rows": 1}
