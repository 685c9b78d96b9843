"""Candidate 4's preference pairs (training/synthetic/smol_pairs.py): built from training intents only, framed as
smol_safety frames them, the base model's bare-form answer chosen for every frame of a helpful task, a refusal
chosen for harmful intents, and rows that ``load_pairs`` reads."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from guardserve.training.evaluate.chat import is_refusal
from guardserve.training.preference import load_pairs
from guardserve.training.synthetic.smol_pairs import bare, build_pairs, decision_cut, decision_pairs, pair_prompts
from guardserve.training.synthetic.smol_safety import (
    BENIGN,
    BENIGN_TASKS,
    HARMFUL,
    LOOKALIKE,
    REFUSALS,
)
from tests.support.smol_frames import framed_as


def _dev(intents: tuple[str, ...], every: int = 5) -> list[str]:
    return [x for n, x in enumerate(intents) if n % every == every - 1]


def _intent_of(prompt: str, intents: tuple[str, ...]) -> str | None:
    found = framed_as(prompt, intents)
    return found[1] if found else None


def _answers() -> tuple[dict[str, str], dict[str, str]]:
    """Fake model answers: the base complies with every bare form except one look-alike and one harmful intent; the
    policy refuses every "Can you help me" prompt and answers the rest."""
    prompts = pair_prompts()
    base = {p.source: f"Sure. Here is how: step one for {p.source}." for p in prompts}
    base[bare(LOOKALIKE[0])] = "I'm sorry, but I can't help with that."
    base[bare(HARMFUL[0])] = "I cannot help with that request."
    policy = {p.prompt: ("I can't help with that. It is dangerous." if "help me" in p.prompt.lower() else "Okay.")
              for p in prompts if p.kind != "harmful"}  # fmt: skip
    return base, policy


def test_prompts_come_from_training_intents_only() -> None:
    prompts = pair_prompts(seed=0)
    dev = {"harmful": _dev(HARMFUL), "lookalike": _dev(LOOKALIKE), "benign": _dev(BENIGN_TASKS)}
    for p in prompts:
        assert all(d not in p.prompt and d != p.intent for d in dev[p.kind]), p.prompt
        assert p.prompt not in _dev(BENIGN)
    for kind, intents in (("harmful", HARMFUL), ("lookalike", LOOKALIKE), ("benign", BENIGN_TASKS)):
        framed = [p for p in prompts if p.kind == kind and p.intent is not None]
        assert framed and all(_intent_of(p.prompt, intents) == p.intent for p in framed), kind  # framed as smol_safety
        train = {x for x in intents if x not in _dev(intents)}
        assert {p.intent for p in framed} == train  # every training intent is used
    free = [p.prompt for p in prompts if p.intent is None]
    assert free and set(free) <= set(BENIGN) and all(p.source == p.prompt for p in prompts if p.intent is None)
    assert pair_prompts(seed=0) == prompts  # seeded


def test_frames_per_kind() -> None:
    prompts = pair_prompts(seed=0, harmful_frames=4, lookalike_frames=3, benign_frames=2)
    per_intent: dict[str, set[str]] = {}
    for p in prompts:
        if p.intent is not None:
            per_intent.setdefault(p.intent, set()).add(p.prompt)
    assert {len(per_intent[x]) for x in HARMFUL if x in per_intent} == {4}
    assert {len(per_intent[x]) for x in LOOKALIKE if x in per_intent} == {3}
    assert {len(per_intent[x]) for x in BENIGN_TASKS if x in per_intent} == {2}


def test_sides_of_each_pair() -> None:
    prompts = pair_prompts()
    base, policy = _answers()
    rows, counts = build_pairs(prompts, base, policy)
    by_prompt = {p.prompt: p for p in prompts}
    for r in rows:
        p = by_prompt[r["prompt"][0]["content"]]
        chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
        if p.kind == "harmful":
            assert is_refusal(chosen) and chosen == p.refusal and rejected == base[bare(p.intent or "")]
        else:
            # the bare form's answer, for every frame of the task (free-form requests: their own answer)
            assert chosen == base[p.source] and not is_refusal(chosen) and is_refusal(rejected)
            if "help me" in p.prompt.lower():  # the policy refused: its own refusal is the rejected side
                assert rejected == policy[p.prompt] and r["rejected_source"] == "policy-refusal"
            else:
                assert any(rejected.startswith(s.split("{")[0]) for s in REFUSALS)
                assert r["rejected_source"] == "written-refusal"
    # intents whose base answer is unusable give no pair
    assert not any(r["intent"] in (LOOKALIKE[0], HARMFUL[0]) for r in rows)
    assert counts["lookalike/dropped_base_refused"] == 3 and counts["harmful/dropped_base_refused"] == 4
    assert counts["pairs"] == len(rows) == len(prompts) - 7
    assert counts["lookalike/policy-refusal"] > 0 and counts["benign/written-refusal"] > 0


def test_rows_load_as_preference_pairs(tmp_path: Path) -> None:
    base, policy = _answers()
    rows, _ = build_pairs(pair_prompts(), base, policy)
    file = tmp_path / "pairs-v1.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = load_pairs(file)
    assert len(pairs) == len(rows)
    assert pairs[0].prompt[0]["role"] == "user" and pairs[0].chosen == rows[0]["chosen"][0]["content"]


def test_decision_cut_keeps_the_first_sentence_within_the_budget() -> None:
    assert decision_cut("I can't help with that. It is illegal.") == "I can't help with that."
    assert decision_cut("Use kill: it sends a signal. Then wait.") == "Use kill:"
    assert decision_cut("One two three four five six", max_tokens=4) == "One two three four"
    assert decision_cut("  Sure  ") == "Sure"
    assert decision_cut("Pneumonoultramicroscopic words", max_tokens=1, count=len) == "Pneumonoultramicroscopic"
    assert decision_cut("3.5 is a number. Yes.") == "3.5 is a number."  # a point inside a number ends nothing


def test_decision_pairs_cut_both_sides_and_keep_prompts_and_refusals(tmp_path: Path) -> None:
    base, policy = _answers()
    base = {k: v + " More words follow here, and then a second sentence. Two." for k, v in base.items()}
    rows, _ = build_pairs(pair_prompts(), base, policy)
    cut, counts = decision_pairs(rows, max_tokens=8)
    assert len(cut) == len(rows) == counts["pairs"]
    both_cut: Counter[str] = Counter()
    for whole, r in zip(rows, cut, strict=True):
        assert r["partial"] is True and r["prompt"] == whole["prompt"]  # prompts unchanged
        assert {k: v for k, v in r.items() if k not in ("chosen", "rejected", "partial")} == {
            k: v for k, v in whole.items() if k not in ("chosen", "rejected")}  # fmt: skip
        sides = {side: (whole[side][0]["content"], r[side][0]["content"]) for side in ("chosen", "rejected")}
        for before, after in sides.values():
            assert before.startswith(after) and 0 < len(after.split()) <= 8
        both_cut[r["kind"]] += all(len(after) < len(before) for before, after in sides.values())
        chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
        if r["kind"] == "harmful":  # the chosen opening still refuses, the rejected one still complies
            assert is_refusal(chosen) and not is_refusal(rejected)
        else:
            assert not is_refusal(chosen) and is_refusal(rejected)
    assert both_cut["harmful"] > 0 and both_cut["lookalike"] > 0 and both_cut["benign"] > 0
    file = tmp_path / "pairs-decision.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in cut))
    pairs = load_pairs(file)
    assert len(pairs) == len(cut) and all(p.partial for p in pairs)


def test_decision_pairs_repeat_harmful_pairs() -> None:
    base, policy = _answers()
    rows, _ = build_pairs(pair_prompts(), base, policy)
    cut, counts = decision_pairs(rows, harmful_repeat=2)
    harmful = sum(r["kind"] == "harmful" for r in rows)
    assert counts["harmful"] == sum(r["kind"] == "harmful" for r in cut) == 2 * harmful
    assert len(cut) == len(rows) + harmful
