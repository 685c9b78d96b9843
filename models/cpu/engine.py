"""The embedded CPU engine: a Hugging Face checkpoint on CPU torch, continuous batching, token streaming.

One scheduler thread owns the model. Each loop it takes new requests and cancellations, prefills newcomers into
the :class:`~models.cpu.batch.RunningBatch` (up to ``max_batch`` rows), runs one decode step for every row, turns
each row's new token into text (incremental detokenizer, then stop sequences) and hands the results to the
event loop in one ``call_soon_threadsafe``. Finished or cancelled rows leave the batch before the next step, so a
request that arrives while others decode joins them, and a cancelled one frees its slot within one step.
A failure that belongs to one request (its prefill, choosing its next token) fails that request only; a failing
decode step, which no single row can be blamed for, fails the rows it was running.

The async side (``stream``/``generate``) tokenizes off the event loop, validates against the context length,
submits, then awaits its own queue. Closing the stream early (client gone) cancels the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from guardserve.models.checkpoint import read_checkpoint_info
from guardserve.models.cpu.batch import RunningBatch
from guardserve.models.cpu.config import CPUEngineConfig, default_threads
from guardserve.models.cpu.detokenizer import IncrementalDetokenizer
from guardserve.models.cpu.sampling import RowSampler, SamplingError
from guardserve.models.cpu.stops import StopMatcher
from guardserve.models.engine import (
    Completion,
    Delta,
    EngineError,
    EngineHealth,
    EngineUnavailableError,
    FinishReason,
    GenerationRequest,
    InvalidRequestError,
)
from guardserve.models.hf import LOAD_LOCK, transformers_offline

log = logging.getLogger(__name__)


@dataclass
class CPUEngineStats:
    """Counters the scheduler thread updates (plain ints: reads from other threads are safe)."""

    running: int = 0  # rows in the batch now
    waiting: int = 0  # admitted by the API, not yet in the batch
    peak_batch: int = 0
    steps: int = 0  # decode steps run
    completed: int = 0
    aborted: int = 0  # cancelled by the caller (client gone)


@dataclass(eq=False)
class _Sequence:
    request: GenerationRequest
    prompt_ids: list[int]
    max_tokens: int
    sampler: RowSampler
    detokenizer: IncrementalDetokenizer
    stops: StopMatcher
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Delta | EngineError] = field(default_factory=asyncio.Queue)
    generated: int = 0
    last_token: int = 0
    finished: bool = False


class CPUEngine:
    """Serves one checkpoint directory. Create with :meth:`load`."""

    def __init__(self, name: str, checkpoint: Path, model: Any, tokenizer: Any, config: CPUEngineConfig) -> None:
        self.name = name
        self.checkpoint = checkpoint
        self._model = model
        self._tokenizer = tokenizer  # transformers fast tokenizer (chat template, encode)
        self._backend = tokenizer.backend_tokenizer  # tokenizers.Tokenizer (fast decode)
        self._config = config
        self._info = read_checkpoint_info(checkpoint)
        self.context_length = self._info.context_length
        self._eos_ids = _eos_ids(model, tokenizer)
        self._vocab_size = int(model.config.vocab_size)
        self._control: queue.SimpleQueue[tuple[str, _Sequence]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._live: set[_Sequence] = set()  # submitted and not yet released by the scheduler
        self._live_lock = threading.Lock()
        self._stopping = False
        self._failed: str | None = None
        self.stats = CPUEngineStats()
        self._thread = threading.Thread(target=self._run, name=f"cpu-engine-{name}", daemon=True)
        self._thread.start()

    @classmethod
    async def load(cls, name: str, checkpoint: str | Path, config: CPUEngineConfig | None = None) -> CPUEngine:
        config = config or CPUEngineConfig()
        path = Path(checkpoint)
        model, tokenizer = await asyncio.to_thread(_load_checkpoint, path, config)
        return cls(name, path, model, tokenizer, config)

    # --- Engine protocol ------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Completion:
        parts: list[str] = []
        async with contextlib.aclosing(self._stream(request)) as deltas:
            async for delta in deltas:
                parts.append(delta.text)
                if delta.finish_reason is not None:
                    return Completion(
                        text="".join(parts),
                        finish_reason=delta.finish_reason,
                        prompt_tokens=delta.prompt_tokens,
                        completion_tokens=delta.completion_tokens,
                    )
        raise EngineError("stream ended without a finish reason")

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        return self._stream(request)

    async def _stream(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        self._check_accepting()
        prompt_ids = await asyncio.to_thread(self._encode, request)
        max_tokens = self._check_length(len(prompt_ids), request.sampling.max_tokens)
        seq = _Sequence(
            request=request,
            prompt_ids=prompt_ids,
            max_tokens=max_tokens,
            sampler=RowSampler(self._info.sampling_defaults.apply(request.sampling), self._vocab_size),
            detokenizer=IncrementalDetokenizer(self._backend, prompt_ids),
            stops=StopMatcher(request.sampling.stop),
            loop=asyncio.get_running_loop(),
        )
        self._submit(seq)
        try:
            yield Delta(text="", prompt_tokens=len(prompt_ids), completion_tokens=0)
            while True:
                item = await seq.queue.get()
                if isinstance(item, EngineError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if not seq.finished:
                self._control.put(("abort", seq))
                self._wake.set()

    async def health(self) -> EngineHealth:
        alive = self._thread.is_alive() and not self._stopping
        detail = "ready" if alive else (self._failed or "scheduler stopped")
        return EngineHealth(
            ok=alive,
            detail=detail,
            inflight=self.inflight,
            info={
                "engine": "cpu",
                "checkpoint": str(self.checkpoint),
                "max_batch": self._config.max_batch,
                "running": self.stats.running,
                "waiting": self.stats.waiting,
                "completed": self.stats.completed,
                "aborted": self.stats.aborted,
                "trained": self._info.trained,
            },
        )

    async def aclose(self) -> None:
        self._stopping = True
        self._wake.set()
        await asyncio.to_thread(self._thread.join, 10.0)

    # --- async-side helpers ---------------------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        with self._live_lock:
            return len(self._live)

    def _check_accepting(self) -> None:
        if self._stopping or not self._thread.is_alive():
            raise EngineUnavailableError(f"model {self.name!r} is not running", retry_after=5)

    def _submit(self, seq: _Sequence) -> None:
        with self._live_lock:
            if len(self._live) >= self._config.max_batch + self._config.max_waiting:
                raise EngineUnavailableError(
                    f"model {self.name!r} is at capacity ({len(self._live)} requests in flight)",
                    retry_after=1,
                )
            self._live.add(seq)
        self._control.put(("submit", seq))
        self._wake.set()

    def _encode(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return list(self._tokenizer.encode(text, add_special_tokens=False))
        assert request.prompt is not None
        return list(self._tokenizer.encode(request.prompt, add_special_tokens=True))

    def _check_length(self, prompt_tokens: int, max_tokens: int | None) -> int:
        limit = self.context_length
        if prompt_tokens == 0:
            raise InvalidRequestError(
                "The prompt is empty: the model needs at least one token to continue from.",
                param="prompt",
                code="empty_prompt",
            )
        if prompt_tokens >= limit:
            over = prompt_tokens - limit + 1
            raise InvalidRequestError(
                f"This model's maximum context length is {limit} tokens. Your prompt is {prompt_tokens} tokens, "
                f"{over} more than fit with room for one generated token. Shorten the prompt by at least {over} "
                "tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        if max_tokens is None:
            return limit - prompt_tokens
        if prompt_tokens + max_tokens > limit:
            over = prompt_tokens + max_tokens - limit
            raise InvalidRequestError(
                f"This model's maximum context length is {limit} tokens. You requested {prompt_tokens + max_tokens} "
                f"tokens ({prompt_tokens} in the prompt, {max_tokens} for the completion), {over} too many. "
                "Reduce the prompt or max_tokens.",
                param="max_tokens",
                code="context_length_exceeded",
            )
        return max_tokens

    # --- scheduler thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        batch = RunningBatch(self._model)
        running: list[_Sequence] = []
        waiting: deque[_Sequence] = deque()
        outbox: list[tuple[_Sequence, Delta | EngineError]] = []
        with torch.inference_mode():
            while not self._stopping:
                self._intake(waiting, running, outbox)
                if not running and not waiting:
                    self._flush(outbox)
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                try:
                    running = self._drop_finished(batch, running)
                    running = self._admit(batch, running, waiting, outbox)
                    running = self._drop_finished(batch, running)
                    if running:
                        logits = batch.step([s.last_token for s in running])
                        self._advance(running, logits, outbox)
                        self.stats.steps += 1
                    self.stats.peak_batch = max(self.stats.peak_batch, len(running))
                except Exception:
                    # The decode forward pass itself failed: the shared cache may be half-updated and no row can
                    # be blamed, so every running row fails and the batch starts afresh. Failures that belong to
                    # one sequence (its sampling, its text, its prefill) never get here: see _advance and _admit.
                    log.exception("CPU engine step failed; failing the %d running requests", len(running))
                    for seq in running:
                        self._finish_with_error(seq, EngineError("the engine failed while generating"), outbox)
                    running = []
                    batch = RunningBatch(self._model)
                self.stats.running, self.stats.waiting = len(running), len(waiting)
                self._flush(outbox)
        shutdown = EngineUnavailableError(f"model {self.name!r} is shutting down", retry_after=5)
        for seq in [*running, *waiting]:
            self._finish_with_error(seq, shutdown, outbox)
        self._intake(waiting, running, outbox)
        for seq in waiting:
            self._finish_with_error(seq, shutdown, outbox)
        self._flush(outbox)

    def _intake(self, waiting: deque[_Sequence], running: list[_Sequence], outbox: list[Any]) -> None:
        while True:
            try:
                op, seq = self._control.get_nowait()
            except queue.Empty:
                return
            if op == "submit":
                waiting.append(seq)
            elif not seq.finished:  # abort
                seq.finished = True
                self.stats.aborted += 1
                self._release(seq)
                if seq in waiting:
                    waiting.remove(seq)

    def _admit(
        self, batch: RunningBatch, running: list[_Sequence], waiting: deque[_Sequence], outbox: list[Any]
    ) -> list[_Sequence]:
        joiners: list[_Sequence] = []
        width = 0
        while waiting and len(running) + len(joiners) < self._config.max_batch:
            candidate = waiting[0]
            new_width = max(width, len(candidate.prompt_ids))
            if joiners and new_width * (len(joiners) + 1) > self._config.prefill_token_budget:
                break
            joiners.append(waiting.popleft())
            width = new_width
        if not joiners:
            return running
        running.extend(self._prefill(batch, joiners, outbox))  # rows stay in batch order, finished ones too
        return running

    def _prefill(self, batch: RunningBatch, joiners: list[_Sequence], outbox: list[Any]) -> list[_Sequence]:
        """Prefill ``joiners`` into ``batch`` together; if that fails, one by one, so only a request whose own
        prefill fails gets the error. ``RunningBatch.add`` changes the batch only once its forward pass is done,
        so a failed prefill leaves the running rows as they were. Returns the sequences now in the batch, in
        row order."""
        try:
            logits = batch.add([s.prompt_ids for s in joiners])
        except Exception:
            if len(joiners) == 1:
                log.exception("CPU engine prefill failed; failing request %s", joiners[0].request.request_id)
                self._finish_with_error(joiners[0], EngineError("the engine failed while reading the prompt"), outbox)
                return []
            log.warning("CPU engine prefill of %d requests failed; retrying them one by one", len(joiners))
            return [added for seq in joiners for added in self._prefill(batch, [seq], outbox)]
        self._advance(joiners, logits, outbox)
        return joiners

    def _drop_finished(self, batch: RunningBatch, running: list[_Sequence]) -> list[_Sequence]:
        keep = [i for i, s in enumerate(running) if not s.finished]
        if len(keep) != len(running):
            batch.keep(keep)
            running = [running[i] for i in keep]
        return running

    def _advance(self, seqs: list[_Sequence], logits: torch.Tensor, outbox: list[Any]) -> None:
        """Pick and accept each row's next token. A row that fails here (no finite logit, a failing detokenizer
        or stop matcher) fails its own request only; it is marked finished and leaves before the next step."""
        greedy = logits.argmax(dim=-1).tolist()
        finite = torch.isfinite(logits).all(dim=-1).tolist()
        for row, seq in enumerate(seqs):
            if seq.finished:
                continue
            sampler = seq.sampler
            try:
                token = greedy[row] if sampler.plain_greedy and finite[row] else sampler.choose(logits[row])
                self._accept(seq, token, outbox)
            except SamplingError as exc:
                log.warning("CPU engine: %s; failing request %s", exc, seq.request.request_id)
                self._finish_with_error(seq, EngineError("the engine failed while generating"), outbox)
            except Exception:
                log.exception("CPU engine: choosing the next token failed; failing request %s", seq.request.request_id)
                self._finish_with_error(seq, EngineError("the engine failed while generating"), outbox)

    def _accept(self, seq: _Sequence, token: int, outbox: list[Any]) -> None:
        seq.sampler.observe(token)
        seq.generated += 1
        seq.last_token = token
        if token in self._eos_ids and not seq.request.sampling.ignore_eos:
            self._finish(seq, "", "stop", outbox)
            return
        text, hit = seq.stops.push(seq.detokenizer.push(token))
        if hit:
            self._finish(seq, text, "stop", outbox, flush=False)
        elif seq.generated >= seq.max_tokens or len(seq.prompt_ids) + seq.generated >= self.context_length:
            self._finish(seq, text, "length", outbox)
        elif text:
            outbox.append((seq, Delta(text, len(seq.prompt_ids), seq.generated)))

    def _finish(
        self, seq: _Sequence, text: str, reason: FinishReason, outbox: list[Any], *, flush: bool = True
    ) -> None:
        if flush:
            tail, hit = seq.stops.push(seq.detokenizer.flush())
            text += tail
            if hit:
                reason = "stop"
            else:
                text += seq.stops.flush()
        seq.finished = True
        self.stats.completed += 1
        self._release(seq)
        outbox.append((seq, Delta(text, len(seq.prompt_ids), seq.generated, reason)))

    def _finish_with_error(self, seq: _Sequence, error: EngineError, outbox: list[Any]) -> None:
        if not seq.finished:
            seq.finished = True
            self._release(seq)
            outbox.append((seq, error))

    def _release(self, seq: _Sequence) -> None:
        with self._live_lock:
            self._live.discard(seq)

    @staticmethod
    def _flush(outbox: list[tuple[_Sequence, Delta | EngineError]]) -> None:
        if not outbox:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Sequence, Delta | EngineError]]] = {}
        for seq, item in outbox:
            by_loop.setdefault(seq.loop, []).append((seq, item))
        outbox.clear()
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody is listening
                loop.call_soon_threadsafe(_dispatch, items)


def _dispatch(items: list[tuple[_Sequence, Delta | EngineError]]) -> None:
    for seq, item in items:
        seq.queue.put_nowait(item)


def _load_checkpoint(path: Path, config: CPUEngineConfig) -> tuple[Any, Any]:
    transformers = transformers_offline()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"checkpoint directory {path} has no config.json")
    torch.set_num_threads(config.threads or default_threads())
    with LOAD_LOCK:  # transformers' loading is not thread-safe (see models/hf.py)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, config.dtype))
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model.eval()
    return model, tokenizer


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)
