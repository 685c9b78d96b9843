"""Answer distortion: does input screening change what a harmless prompt gets back?

Each harmless prompt goes through the default policy's input screening (:meth:`guardrails.runtime.Policy.screen_input`,
as a chat request's user message). A blocked prompt is distorted (the user gets a refusal). A prompt the screening
rewrote (a pseudonymized or masked false positive, e.g. "kill the process 4711" read as a phone number) is answered
twice by the bundled model, greedily, raw and screened, and the screened answer has its pseudonyms restored as the
gateway would: distorted when the two answers differ. A prompt the screening left alone is not distorted and not
generated (greedy decoding of the same prompt gives the same answer), which keeps the run cheap.

The model runs on the CPU engine (torch): this part is optional (``--skip-distortion``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardserve.training.guards.evaluate.metrics import Rate

if TYPE_CHECKING:
    from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
    from guardserve.guardrails.runtime import Guardrails

Generate = Callable[[list[str]], Awaitable[list[str]]]  # prompts -> greedy answers, in order
MAX_TOKENS = 64
EXAMPLES = 20  # distorted prompts listed in the report (harmless prompts: no personal data)


@dataclass(frozen=True)
class HarmlessPrompt:
    prompt: str
    kind: str = "unknown"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> HarmlessPrompt:
        return cls(str(row["prompt"]), str(row.get("kind", "unknown")))


@dataclass(frozen=True)
class Screening:
    text: str | None  # what the model sees; None: blocked
    blocked_by: str | None
    pseudonyms: Pseudonymizer


async def screen_prompts(guardrails: Guardrails, prompts: Sequence[str]) -> list[Screening]:
    from guardserve.guardrails.pii.pseudonyms import Pseudonymizer

    policy = guardrails.policy()
    out: list[Screening] = []
    for prompt in prompts:
        pseudonyms = Pseudonymizer()
        outcome = await policy.screen_input([("user", prompt)], pseudonyms)
        blocked = outcome.blocked
        if blocked is not None:
            out.append(Screening(None, blocked.guard, pseudonyms))
        else:
            out.append(Screening(outcome.texts[0], None, pseudonyms))
    return out


async def evaluate_distortion(
    guardrails: Guardrails, records: Sequence[HarmlessPrompt], generate: Generate, model: str = ""
) -> dict[str, Any]:
    prompts = [r.prompt for r in records]
    screened = await screen_prompts(guardrails, prompts)
    changed = [i for i, s in enumerate(screened) if s.text is not None and s.text != prompts[i]]
    answers = await generate([prompts[i] for i in changed] + [str(screened[i].text) for i in changed])
    raw, rewritten = answers[: len(changed)], answers[len(changed) :]
    differs = {
        i: screened[i].pseudonyms.restore(after) != before
        for i, before, after in zip(changed, raw, rewritten, strict=True)
    }
    distorted = [i for i, s in enumerate(screened) if s.text is None or differs.get(i, False)]
    examples = [
        {
            "kind": records[i].kind,
            "prompt": prompts[i],
            "screened": screened[i].text,
            "why": f"blocked by {screened[i].blocked_by}" if screened[i].text is None else "answer changed",
        }
        for i in distorted[:EXAMPLES]
    ]
    return {
        "available": True,
        "model": model,
        "n": len(records),
        "blocked": Rate(sum(s.text is None for s in screened), len(records)).to_dict(),
        "rewritten": Rate(len(changed), len(records)).to_dict(),
        "distorted": Rate(len(distorted), len(records)).to_dict(),
        "distorted_kinds": dict(Counter(records[i].kind for i in distorted).most_common()),
        "kinds": dict(sorted(Counter(r.kind for r in records).items())),
        "examples": examples,
    }


def default_model(registry: Path | None = None, name: str | None = None) -> tuple[str, Path]:
    """The served model to answer with: ``name`` from the registry, else its first CPU model."""
    from guardserve.models.registry import DEFAULT_REGISTRY, load_registry

    entries = [e for e in load_registry(registry or DEFAULT_REGISTRY) if e.engine == "cpu" and e.checkpoint]
    for entry in entries:
        if name is None or entry.name == name:
            assert entry.checkpoint is not None
            return entry.name, entry.checkpoint
    raise LookupError(f"no CPU model {name!r} in the registry" if name else "the registry has no CPU model")


def cpu_generator(checkpoint: Path, max_tokens: int = MAX_TOKENS) -> Generate:
    """Greedy chat answers from the CPU engine, as the gateway would serve them (one engine per call)."""

    async def generate(prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        import asyncio

        from guardserve.models.cpu.config import CPUEngineConfig
        from guardserve.models.cpu.engine import CPUEngine
        from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams

        engine = await CPUEngine.load("guards-eval", checkpoint, CPUEngineConfig(max_waiting=len(prompts) + 1))
        try:
            requests = [
                GenerationRequest(
                    request_id=f"distortion-{i}",
                    model="guards-eval",
                    sampling=SamplingParams(max_tokens=max_tokens, temperature=0.0),
                    messages=(ChatMessage("user", prompt),),
                )
                for i, prompt in enumerate(prompts)
            ]
            completions = await asyncio.gather(*(engine.generate(r) for r in requests))
        finally:
            await engine.aclose()
        return [c.text for c in completions]

    return generate
