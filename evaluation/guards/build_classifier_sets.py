"""Build the blind toxicity and harmful_request evaluation sets from hand-written sentences.

Why a script at all: the sentences are written by hand in ``sources/*.txt``; this script only fills a few slots
(names, identity groups, people, process names) so that one hand-written frame can speak about several
identities, wraps some requests in split-specific framings ("for a novel", roleplay, politeness) for both labels,
and writes the dev and test JSONL files deterministically. Dev and test come from disjoint frames and disjoint
wrappers, so no sentence frame is shared between the splits. Nothing here reads the project's training data or
generators.

Run from the repository root: ``python evaluation/guards/build_classifier_sets.py`` (``--check`` compares with the
committed files instead of writing them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

SEED = 12
HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
TASKS = ("toxicity", "harmful_request")
SPLITS = ("dev", "test")
WRAP_RATE = 0.2  # share of English harmful_request items (either label) given a wrapper

# Slot fills, "|"-separated so that the lists stay readable under the formatter.
FILLS: dict[str, tuple[str, ...]] = {
    slot: tuple(words.split("|"))
    for slot, words in {
        "name": "Sarah|Jamal|Priya|Tom|Aisha|Mateo|Lena|Kevin|Mei|Dmitri|Fatima|Oliver|Keisha|Raj|Sofia|Liam|Yusuf|"
        "Hannah|Diego|Ngozi|Chloe|Marcus|Ines|Kenji|Amara|Jake|Zoe|Tariq|Emily|Bogdan|Rosa|Ethan|Leila|Sven|Mia|Kwame",
        "group": "Muslims|Jews|gay people|trans people|Black people|immigrants|Mexicans|disabled people|women|Asians|"
        "Arabs|Roma|lesbians|Hindus|Christians|refugees|Africans|Chinese people|Indians|Somalis|bisexual people|"
        "Latinos|Catholics|deaf people",
        "ident": "Muslim|Jewish|gay|Black|Mexican|disabled|trans|Christian|Hindu|Nigerian|Chinese|Polish|Catholic|deaf|"
        "Somali|Pakistani|Roma|Latino|Sikh|Korean",
        "who": "my neighbour|my ex-wife|my boss|my roommate|my stepdad|my ex-boyfriend|my coworker|my sister-in-law|"
        "my landlord|my classmate|my husband|my teacher",
        "proc": "python|node|java|nginx|postgres|chrome|ruby|gunicorn|mysql|php-fpm",
    }.items()
}
FILLS_PER_FRAME = {"name": 2, "group": 3, "ident": 3, "who": 2, "proc": 2}
SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Frame:
    """One hand-written sentence frame and where the source file puts it."""

    split: str
    label: int
    kind: str
    lang: str
    text: str


def parse_source(path: Path) -> tuple[list[Frame], dict[tuple[str, str], list[str]]]:
    """Read frames and wrappers from a source file (format described at the top of each file)."""
    frames: list[Frame] = []
    wrappers: dict[tuple[str, str], list[str]] = {}
    header: list[str] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            header = line[1:].split()
            if header[0] not in SPLITS or not (len(header) == 4 or (len(header) == 3 and header[1] == "wrap")):
                raise ValueError(f"{path.name}:{number}: bad header {line!r}")
            continue
        if header is None:
            raise ValueError(f"{path.name}:{number}: sentence before any header")
        if header[1] == "wrap":
            wrappers.setdefault((header[0], header[2]), []).append(line)
        else:
            frames.append(Frame(header[0], int(header[1]), header[2], header[3], line))
    return frames, wrappers


def _rng(*parts: str) -> random.Random:
    """A generator seeded by the item itself, so adding a sentence never changes the others' fills."""
    digest = hashlib.sha256(":".join((str(SEED), *parts)).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def expand(frame: Frame) -> list[str]:
    """Fill a frame's slots; a frame without slots gives itself once."""
    slots = SLOT.findall(frame.text)
    if not slots:
        return [frame.text]
    count = max(FILLS_PER_FRAME[slot] for slot in slots)
    rng = _rng(frame.split, frame.text)
    choices = {slot: rng.sample(FILLS[slot], count) for slot in set(slots)}
    texts = []
    for i in range(count):
        text = SLOT.sub(partial(_fill, choices, i), frame.text)
        texts.append(text[0].upper() + text[1:] if frame.text.startswith("{") else text)
    return texts


def _fill(choices: dict[str, list[str]], index: int, match: re.Match[str]) -> str:
    return choices[match.group(1)][index]


def build(task: str) -> dict[str, list[dict[str, object]]]:
    """All rows of one task, per split, in a fixed shuffled order."""
    frames, wrappers = parse_source(SOURCES / f"{task}.txt")
    out: dict[str, list[dict[str, object]]] = {split: [] for split in SPLITS}
    for frame in frames:
        for text in expand(frame):
            rng = _rng("wrap", frame.split, text)
            pool = wrappers.get((frame.split, frame.lang), [])
            if pool and rng.random() < WRAP_RATE:
                text = rng.choice(pool).replace("{req}", text)
            out[frame.split].append({"text": text, "label": frame.label, "kind": frame.kind, "lang": frame.lang})
    for split, rows in out.items():
        random.Random(f"{SEED}:{task}:{split}").shuffle(rows)
    return out


def sentences(text: str) -> list[str]:
    """Normalised sentences of a text (lowercase, letters and digits only), for the dev/test overlap check."""
    parts = re.split(r"(?<=[.!?])\s+", text)
    return [norm for part in parts if (norm := " ".join(re.findall(r"\w+", part.lower())))]


def problems(task: str, rows: dict[str, list[dict[str, object]]]) -> list[str]:
    """Duplicate texts within or across splits, and sentences that occur in both splits."""
    found: list[str] = []
    seen: dict[str, str] = {}
    for split in SPLITS:
        for row in rows[split]:
            text = str(row["text"])
            if text in seen:
                found.append(f"{task}: duplicate text in {seen[text]} and {split}: {text!r}")
            seen[text] = split
    dev = {s for row in rows["dev"] for s in sentences(str(row["text"]))}
    test = {s for row in rows["test"] for s in sentences(str(row["text"]))}
    found += [f"{task}: sentence in dev and test: {s!r}" for s in sorted(dev & test)]
    return found


def render(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    status = 0
    for task in TASKS:
        rows = build(task)
        for problem in problems(task, rows):
            print(problem, file=sys.stderr)
            status = 1
        for split in SPLITS:
            path = HERE / f"{task}.{split}.jsonl"
            if args.check:
                if not path.exists() or path.read_text(encoding="utf-8") != render(rows[split]):
                    print(f"{path.name} is not what the sources give; rebuild it", file=sys.stderr)
                    status = 1
            else:
                path.write_text(render(rows[split]), encoding="utf-8")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
