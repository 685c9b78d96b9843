"""Feedback posted the moment an answer arrives finds its record: the record's write, queued when the answer
ended, is awaited rather than answered with a 404 (a closed-loop client rates faster than a busy gateway writes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from guardserve.app.context import RequestContext
from guardserve.app.feedback.filestore import FileFeedbackStore
from guardserve.app.feedback.model import ResponseRecord
from guardserve.app.feedback.service import FeedbackService
from guardserve.app.feedback.settings import FeedbackSettings


class SlowStore(FileFeedbackStore):
    """Writes a response record only once ``release`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = asyncio.Event()

    async def put_response(self, record: ResponseRecord, ttl_ms: int, owner_ttl_ms: int) -> None:
        await self.release.wait()
        await super().put_response(record, ttl_ms, owner_ttl_ms)


class NoScrub:
    async def scrub(self, texts: list[str]) -> list[str]:
        return list(texts)

    def close(self) -> None:
        return None


async def test_feedback_waits_for_the_record_being_written(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "f.jsonl")
    service = FeedbackService(FeedbackSettings(file=tmp_path / "f.jsonl"), store, NoScrub(), b"secret")
    await service.start({})
    ctx = RequestContext(request_id="r", route="/v1/chat/completions", response_id="chatcmpl-1", status=200)
    ctx.tenant, ctx.key_id = "acme", "k1"
    await service.response_finished()(ctx)  # the answer is out; its record is queued
    rating = asyncio.create_task(service.submit(ctx, {"response_id": "chatcmpl-1", "rating": "up"}, None))
    await asyncio.sleep(0)  # the rating starts while the write is held
    assert not rating.done()
    store.release.set()
    feedback, replay = await asyncio.wait_for(rating, timeout=30)
    assert feedback.record_kept and not replay
    await service.aclose()


async def test_a_record_says_which_version_answered_and_that_versions_checkpoint(tmp_path: Path) -> None:
    from guardserve.app.rollout import version_key

    store = FileFeedbackStore(tmp_path / "f.jsonl")
    service = FeedbackService(FeedbackSettings(file=tmp_path / "f.jsonl"), store, NoScrub(), b"secret")
    await service.start({})
    service.checkpoints |= {version_key("m", "stable"): "aaa", version_key("m", "v2"): "bbb"}
    for response_id, version in (("chatcmpl-s", "stable"), ("chatcmpl-c", "v2")):
        ctx = RequestContext(request_id=response_id, route="/v1/chat/completions", response_id=response_id, status=200)
        ctx.tenant, ctx.key_id, ctx.model, ctx.model_version = "acme", "k1", "m", version
        await service.response_finished()(ctx)

    async def written(response_id: str) -> ResponseRecord:
        for _ in range(3000):  # the write runs in a task of its own, after the answer
            record = await store.get_response("acme", response_id)
            if record is not None:
                return record
            await asyncio.sleep(0.01)
        raise AssertionError(f"no record for {response_id}")

    stable, candidate = await written("chatcmpl-s"), await written("chatcmpl-c")
    assert (stable.model_version, stable.checkpoint_sha256) == ("stable", "aaa")
    assert (candidate.model_version, candidate.checkpoint_sha256) == ("v2", "bbb")
    await service.aclose()
