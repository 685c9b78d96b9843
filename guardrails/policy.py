"""Guardrail policies: named sets of guards per stage, with actions and thresholds, loaded from YAML.

    default: default
    policies:
      default:
        input:
          pii: {action: pseudonymize}
          prompt_injection: {action: block, threshold: 0.7}
        output:
          pii: {action: mask}
          toxicity: {action: block, threshold: 0.97}

A bad file stops start-up with the file, the line and the reason (:class:`PolicyError`). A request can never weaken
its policy: it may only switch to a policy that is at least as strict (:meth:`PolicySpec.at_least_as_strict_as`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardserve.guardrails.injection import InjectionRule
from guardserve.guardrails.pii.config import PIIConfig
from guardserve.guardrails.types import Action

DEFAULT_POLICY_FILE = Path(__file__).with_name("policies.yaml")


VERDICT_GUARDS = ("toxicity", "harmful_request", "prompt_injection")  # guards that judge a whole text


class PolicyError(ValueError):
    pass


class PIIGuardSpec(PIIConfig):
    action: Action = Action.PLACEHOLDER

    @model_validator(mode="after")
    def _action(self) -> PIIGuardSpec:
        if self.action is Action.ALLOW:
            raise ValueError("pii action 'allow' disables the guard: remove it instead")
        return self


class _VerdictSpec(BaseModel):
    """A guard that judges a whole text against a threshold: it can block or flag, not rewrite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action = Action.BLOCK
    threshold: float = Field(0.5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _block_or_flag(self) -> _VerdictSpec:
        if self.action not in (Action.BLOCK, Action.FLAG):
            raise ValueError(f"{self.kind} action must be 'block' or 'flag'")
        return self

    @property
    def kind(self) -> str:
        return "guard"


class ToxicitySpec(_VerdictSpec):
    """``semantic`` (default): GuardServe's trained head over the sentence encoder (``path``: another artifact
    directory than the bundled one); ``profanity``: alt-profanity-check (the old default, strong identity-term bias);
    ``transformers``: a local Hugging Face text-classification model (``path``)."""

    classifier: Literal["semantic", "profanity", "transformers"] = "semantic"
    path: str | None = None

    @property
    def kind(self) -> str:
        return "toxicity"

    @model_validator(mode="after")
    def _classifier_path(self) -> ToxicitySpec:
        if self.classifier == "transformers" and not self.path:
            raise ValueError("the transformers classifier needs 'path' (a local model directory)")
        return self


class HarmfulRequestSpec(_VerdictSpec):
    """Requests for real-world harm (weapons, poisoning, intrusion, self-harm methods, stalking, violence) that a
    model might comply with: the semantic classifier's ``harmful_request`` head (``path``: another artifact)."""

    path: str | None = None

    @property
    def kind(self) -> str:
        return "harmful_request"


class InjectionSpec(_VerdictSpec):
    """``semantic`` (default): the trained head, with the rules below as extra evidence (the score is the higher of
    the two); ``rules``: the regex rules alone."""

    classifier: Literal["semantic", "rules"] = "semantic"
    path: str | None = None
    rules: tuple[InjectionRule, ...] = ()  # added to the built-in rules
    builtin_rules: bool = True

    @property
    def kind(self) -> str:
        return "prompt_injection"


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pii: PIIGuardSpec | None = None
    toxicity: ToxicitySpec | None = None
    harmful_request: HarmfulRequestSpec | None = None
    prompt_injection: InjectionSpec | None = None


class StreamSpec(BaseModel):
    """The rolling hold-back buffer for streamed output (characters), and how long one window's screening may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_chars: int = Field(32, ge=1, le=4096)  # screen and release in pieces of at least this much new text
    holdback_chars: int = Field(32, ge=0, le=4096)  # never release the newest N characters before the end
    context_chars: int = Field(96, ge=0, le=8192)  # already-released text included in every screening window
    # span guards (PII: NER) see at most this much of it (extended back to a word start within context_chars):
    # released text is not analysed over and over, only the left context an entity at the cut needs
    span_context_chars: int = Field(32, ge=0, le=8192)
    max_hold_chars: int = Field(512, ge=16, le=65536)  # release a run with no break after this much (screened)
    # one window's screening (every guard and its transform, waiting for a worker included); over it is a guard error,
    # handled by the policy's on_error
    window_timeout_s: float = Field(5.0, gt=0.0, le=300.0)


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    input: StageSpec = StageSpec()
    output: StageSpec = StageSpec()
    stream: StreamSpec = StreamSpec()
    on_error: Literal["fail_closed", "fail_open"] = "fail_closed"

    @model_validator(mode="after")
    def _output_guards(self) -> PolicySpec:
        if self.output.pii is not None and self.output.pii.action is Action.PSEUDONYMIZE:
            raise ValueError("output.pii cannot pseudonymize (nothing would restore it): use mask or placeholder")
        return self

    def at_least_as_strict_as(self, other: PolicySpec) -> bool:
        if other.on_error == "fail_closed" and self.on_error != "fail_closed":
            return False
        return all(_stage_stricter(getattr(self, s), getattr(other, s)) for s in ("input", "output"))


def _stage_stricter(mine: StageSpec, theirs: StageSpec) -> bool:
    if theirs.pii is not None:
        if mine.pii is None or mine.pii.action.strength < theirs.pii.action.strength:
            return False
        if mine.pii.threshold > theirs.pii.threshold or not set(theirs.pii.all_entities()) <= set(
            mine.pii.all_entities()
        ):
            return False
    for name in VERDICT_GUARDS:
        them = getattr(theirs, name)
        if them is None:
            continue
        me = getattr(mine, name)
        if me is None or me.action.strength < them.action.strength or me.threshold > them.threshold:
            return False
        if getattr(them, "builtin_rules", False) and not getattr(me, "builtin_rules", False):
            return False  # dropping the injection rules is not stricter
    return True


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str
    policies: dict[str, PolicySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_exists(self) -> PolicyFile:
        if self.default not in self.policies:
            raise ValueError(f"default policy {self.default!r} is not defined under 'policies'")
        return self


def load_policies(path: str | Path = DEFAULT_POLICY_FILE) -> PolicyFile:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{file}: cannot read policy file: {exc.strerror}") from exc
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{file}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return PolicyFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "top level"
        raise PolicyError(f"{file}:{_line_of(node, loc)}: {where}: {err['msg']}") from exc


def _line_of(node: Any, loc: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node on the error's path (1-based)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(key)), None)
            if child is None:
                break
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line
