"""Answers a served model writes, as JSON lines, to measure the output guards on text a model wrote.

    .venv/bin/python loadtests/model_answers.py --checkpoint models/checkpoints/guardserve-smol \
        --out runs/model-answers/smol.jsonl [--limit N]

The prompts: every prompt of ``evaluation/smol/dev.jsonl`` and ``evaluation/guards/harmless_prompts.jsonl`` (written
apart from the project's data), and :data:`NAME_PROMPTS` below, which ask for text with people and places in it
(letters, stories, biographies, travel; some with the names typed in lower case, as users do, so an answer can echo
them that way). Greedy answers of up to 96 tokens, one user turn through the checkpoint's chat template. Used by
``loadtests/bench_ner_scope.py --texts`` (README "Where NER runs").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT.parent) not in sys.path:
    sys.path.insert(0, str(ROOT.parent))

NAME_PROMPTS = (
    "Write a short thank-you note from Priya to her colleague Tom for helping with the office move.",
    "Who was Marie Curie? Answer in two sentences.",
    "Recommend three cities to visit in Italy and say why in one line each.",
    "Draft a two-line email to Mr. Okafor moving our Tuesday meeting to Thursday.",
    "Tell me a very short story about a girl named Ines who lives in Lisbon.",
    "write a birthday message for my friend jonas who lives in hamburg",
    "Who painted the Mona Lisa, and where can I see it?",
    "Introduce yourself as Dr. Elena Petrova, a cardiologist from Sofia, in two sentences.",
    "What is the capital of Canada, and what is it known for?",
    "Write a two-sentence bio for Kenji Watanabe, a software engineer in Osaka.",
    "my sister maria is flying from madrid to boston tomorrow, what should she pack?",
    "Name two famous scientists from Germany.",
    "Write a wedding toast for Sam and Alex in three sentences.",
    "Which river flows through Cairo?",
    "Summarise who Nelson Mandela was in two sentences.",
    "Write a short reference letter for my student Aisha Bello.",
    "Plan a one-day walk through Paris for a first-time visitor.",
    "can you write a note to my landlord mr. schmidt saying the heating is broken",
    "Who wrote Pride and Prejudice?",
    "Give a two-line welcome message for our new hire, Lucas Moreau, who joins the Berlin team.",
    "Tell me about the city of Kyoto in two sentences.",
    "What did Ada Lovelace do?",
    "Write a short postcard from Rome to my grandmother Rosa.",
    "Which countries border Portugal?",
    "Write a text message telling Omar the train from Leeds is late.",
    "Who is the main character of Harry Potter, and who are his friends?",
    "Describe Mount Kilimanjaro in two sentences.",
    "write a short apology to my coworker daniel for missing his call",
    "Write a two-sentence story about a fisherman named Erik in Bergen.",
    "What is Sydney famous for?",
)


def prompts() -> list[tuple[str, str]]:
    """(source, prompt) pairs in a fixed order."""
    out: list[tuple[str, str]] = []
    for name, path in (
        ("smol.dev", ROOT / "evaluation" / "smol" / "dev.jsonl"),
        ("harmless_prompts", ROOT / "evaluation" / "guards" / "harmless_prompts.jsonl"),
    ):
        out += [(name, json.loads(line)["prompt"]) for line in path.read_text().splitlines() if line.strip()]
    return out + [("name_prompts", p) for p in NAME_PROMPTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="the first N prompts only")
    args = parser.parse_args()
    import torch

    from guardserve.training.evaluate.chat import generate_chat, load_chat_model

    torch.set_num_threads(1)
    asked = prompts()[: args.limit]
    model, tokenizer = load_chat_model(args.checkpoint)
    answers = generate_chat(model, tokenizer, [p for _, p in asked])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for (source, prompt), text in zip(asked, answers, strict=True):
            f.write(json.dumps({"source": source, "prompt": prompt, "text": text}) + "\n")
    print(f"{len(answers)} answers in {args.out}")


if __name__ == "__main__":
    main()
