from __future__ import annotations

from pathlib import Path

import numpy as np

from guardserve.models.checkpoint import PAD_TOKEN
from guardserve.training.data import IGNORE, batches, encode, pack
from guardserve.training.records import Record
from guardserve.training.synthetic import generate_training
from guardserve.training.tokenizer import build_tokenizer, load_tokenizer, render


def _tokenizer(tmp_path: Path) -> object:
    records = generate_training({"arithmetic": 200, "harmful": 50, "pii_chat": 50}, seed=1)
    build_tokenizer(records, 400, tmp_path / "tok", 256)
    return load_tokenizer(tmp_path / "tok")


def test_loss_mask_covers_assistant_content_and_its_end_only(tmp_path: Path) -> None:
    tok = _tokenizer(tmp_path)
    record = Record("s", messages=[{"role": "user", "content": "What is 12 + 30?"},
                                   {"role": "assistant", "content": "12 + 30 = 42"}])  # fmt: skip
    doc = encode(record, tok)
    learned = [i for i, label in zip(doc.ids, doc.labels, strict=True) if label != IGNORE]
    assert tok.decode(learned, skip_special_tokens=False) == "12 + 30 = 42<|end|>"  # type: ignore[attr-defined]


def test_tokens_match_what_the_served_tokenizer_produces(tmp_path: Path) -> None:
    """The trainer's ids equal the chat template + fast tokenizer the CPU engine uses."""
    from guardserve.models.hf import transformers_offline

    tok = _tokenizer(tmp_path)
    fast = transformers_offline().AutoTokenizer.from_pretrained(tmp_path / "tok")
    messages = [{"role": "user", "content": "Convert 7 metres to centimetres."},
                {"role": "assistant", "content": "7 metres is 700 centimetres."}]  # fmt: skip
    text = fast.apply_chat_template(messages, tokenize=False)
    assert text == render(Record("s", messages=messages))
    assert encode(Record("s", messages=messages), tok).ids == fast.encode(text, add_special_tokens=False)


def test_text_records_are_learned_whole_and_end_with_endoftext(tmp_path: Path) -> None:
    tok = _tokenizer(tmp_path)
    doc = encode(Record("s", text="plain words"), tok)
    assert doc.labels == doc.ids and doc.ids[-1] == tok.token_to_id(PAD_TOKEN)  # type: ignore[attr-defined]


def test_packing_keeps_documents_whole_and_pads_the_end() -> None:
    from guardserve.training.data import Doc

    docs = [Doc([1, 2, 3], [1, 2, 3]), Doc([4, 5], [IGNORE, 5]), Doc([6, 7, 8, 9, 10, 11], [6] * 6)]
    ids, labels = pack(docs, 5, pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 0, 0, 0, 0]]
    assert labels[2].tolist() == [6, IGNORE, IGNORE, IGNORE, IGNORE]


def test_batches_are_seeded_and_split_across_processes() -> None:
    from guardserve.training.data import Doc

    docs = [Doc([i, i + 1], [i, i + 1]) for i in range(0, 200, 2)]
    first = [b[1] for _, b in zip(range(5), batches(docs, 4, 2, 0, seed=3), strict=False)]
    again = [b[1] for _, b in zip(range(5), batches(docs, 4, 2, 0, seed=3), strict=False)]
    other = [b[1] for _, b in zip(range(5), batches(docs, 4, 2, 0, seed=4), strict=False)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    rank0 = [b[1] for _, b in zip(range(2), batches(docs, 4, 2, 0, seed=3, rank=0, world=2), strict=False)]
    rank1 = [b[1] for _, b in zip(range(2), batches(docs, 4, 2, 0, seed=3, rank=1, world=2), strict=False)]
    assert np.array_equal(rank0[0], first[0]) and np.array_equal(rank1[0], first[1])
