"""The issue's last test: a feedback export trains. Feedback on the shared Redis (a random prefix), one export
pass, and a recipe with one ``kind: feedback`` source pointing at the export's ``sft`` folder runs a few steps of
the micro model (``training/recipes/micro.yaml``'s shape), without the evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import redis.asyncio
import yaml

from guardserve.app.feedback.export import FeedbackExporter
from guardserve.app.feedback.model import Rating
from tests.support import feedback_data as data

pytest.importorskip("torch")

COLOURS = ["red", "green", "blue", "amber", "violet", "teal", "coral", "olive", "ivory", "slate"]
THINGS = ["kettle", "bicycle", "lantern", "notebook", "umbrella", "teapot"]


async def test_a_recipe_with_a_feedback_source_trains_on_an_export(
    shared_redis: tuple[str, str], tmp_path: Path
) -> None:
    from guardserve.training.pipeline import run
    from guardserve.training.recipe import load_recipe

    url, prefix = shared_redis
    sync = redis.Redis.from_url(url, socket_timeout=10)
    up = 0
    try:
        for i, (colour, thing) in enumerate((c, t) for c in COLOURS for t in THINGS):
            prompt = f"What colour is the {thing} number {i}?"
            record = data.response("acme", prompt, f"The {thing} number {i} is {colour}, like the <PERSON> said.")
            data.put_response(sync, prefix, record)
            rating: Rating = "down" if i % 5 == 0 else "up" if i % 2 else 5
            up += rating != "down"
            data.add_feedback(sync, prefix, data.feedback(record, rating))
    finally:
        sync.close()
    client = redis.asyncio.Redis.from_url(url, socket_timeout=10)
    try:
        result = await FeedbackExporter(client, prefix, tmp_path / "export").run()
    finally:
        await client.aclose()
    assert result.dialogues == len(COLOURS) * len(THINGS)

    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        yaml.safe_dump(
            {
                "name": "feedback-micro",
                "seed": 3,
                "data": {
                    "validation_fraction": 0.1,
                    "canaries": {"planted": 0, "controls": 0, "repeats": 1, "candidates": 10},
                    "sources": [
                        {
                            "name": "gateway-feedback",
                            "kind": "feedback",
                            "path": "export/sft",
                            "licence": "ours (our users' rated answers, scrubbed by the gateway)",
                            "provenance": "guardserve feedback export",
                        }
                    ],
                },
                "preprocess": {"pii": {"ner": False, "workers": 1}},
                "tokenizer": {"vocab_size": 300},
                "model": {
                    "hidden_size": 32,
                    "num_layers": 1,
                    "num_heads": 2,
                    "intermediate_size": 88,
                    "context_length": 128,
                },
                "train": {
                    "seq_len": 32,
                    "batch_size": 4,
                    "max_steps": 4,
                    "warmup_steps": 1,
                    "eval_every": 4,
                    "eval_batches": 1,
                    "checkpoint_every": 4,
                    "log_every": 1,
                    "threads": 1,
                },
            }
        )
    )
    recipe = load_recipe(recipe_file)
    summary = run(recipe, tmp_path / "run", evaluate=False, progress=False)

    assert summary["training"]["steps"] == 4
    assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
    manifest = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    (source,) = manifest["sources"]
    assert source["notes"] == {"ratings": {"down": 12, "up": 48}, "malformed_rows": 0}
    assert source["rows_raw"] == up == 48  # the rated-up dialogues (a score of 5 counts as up); never the pairs
    assert [Path(i["path"]).relative_to(tmp_path).as_posix() for i in source["inputs"]] == [
        "export/sft/feedback-v1.jsonl"
    ]
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert losses and all(0 < m["loss"] < 100 for m in losses if "loss" in m)
