"""The feedback export on the shared Redis (every key under a random prefix): exactly once in the output across
passes and crashes, tombstones skipped and purged, preference pairs, the manifest, the trainer reading the files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from guardserve.app.feedback import layout
from guardserve.app.feedback.export import (
    MANIFEST_FILE,
    PAIRS_FILE,
    RATINGS_FILE,
    SFT_FILE,
    STATE_FILE,
    ExportError,
    ExportResult,
    FeedbackExporter,
    OutputDir,
    parse_since,
)
from guardserve.app.feedback.model import Rating
from tests.support import feedback_data as data


@pytest.fixture
def sync(shared_redis: tuple[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(shared_redis[0], socket_timeout=10)
    yield client
    client.close()


@pytest.fixture
async def client(shared_redis: tuple[str, str]) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(shared_redis[0], socket_timeout=10)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(shared_redis: tuple[str, str]) -> str:
    return shared_redis[1]


def rows(out: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / name).read_text().splitlines() if line.strip()]


async def export(client: redis.asyncio.Redis, prefix: str, out: Path, **options: Any) -> ExportResult:
    return await FeedbackExporter(client, prefix, out, **options).run()


def rated(sync: redis.Redis, prefix: str, tenant: str, n: int, **response: Any) -> list[str]:
    """``n`` responses, each kept and rated up; returns the feedback ids."""
    ids = []
    for i in range(n):
        record = data.response(tenant, f"question {i}?", f"answer {i}", **response)
        data.put_response(sync, prefix, record)
        fb = data.feedback(record, "up")
        data.add_feedback(sync, prefix, fb)
        ids.append(fb.id)
    return ids


async def test_a_pass_writes_dialogues_ratings_pairs_and_a_manifest_and_the_next_pass_nothing_new(
    sync: redis.Redis, client: redis.asyncio.Redis, prefix: str, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    up = data.response("acme", "Mail <EMAIL_ADDRESS> about the invoice", "Done: I wrote to <EMAIL_ADDRESS>.")
    down = data.response("acme", "Mail <EMAIL_ADDRESS> about the invoice", "No.")
    scored = data.response("acme", "What is 2 + 2?", "5").model_copy(update={"model_version": "v7"})
    bare = data.response("acme", prompt=None)  # retention metadata: no dialogue
    for record in (up, down, scored, bare):
        data.put_response(sync, prefix, record)
    expired = "chatcmpl-expired"  # a feedback on a record that is gone
    feedbacks = [
        data.feedback(up, "up", categories=()),
        data.feedback(down, "down", categories=("unhelpful",), comment="Rude, ask <PERSON>"),
        data.feedback(scored, 2, categories=("inaccurate",), preferred="4"),
        data.feedback(bare, 5),
        data.feedback(up.model_copy(update={"id": expired}), "down", categories=("other",), record_kept=False),
    ]
    for fb in feedbacks:
        data.add_feedback(sync, prefix, fb)

    first = await export(client, prefix, out)
    assert (first.exported, first.dialogues, first.pairs, first.read) == (5, 3, 2, 5)
    assert first.tenants == ["acme"]

    sft = rows(out, SFT_FILE)
    assert [r["feedback_id"] for r in sft] == [feedbacks[0].id, feedbacks[1].id, feedbacks[2].id]
    assert sft[0]["messages"] == [
        {"role": "user", "content": "Mail <EMAIL_ADDRESS> about the invoice"},
        {"role": "assistant", "content": "Done: I wrote to <EMAIL_ADDRESS>."},
    ]
    assert [(r["rating"], r["score"]) for r in sft] == [("up", None), ("down", None), ("down", 2)]
    assert {r["checkpoint_sha256"] for r in sft} == {"ab" * 32} and sft[0]["version"] == 1
    assert [r["model_version"] for r in sft] == [None, None, "v7"]  # the version that answered, as recorded

    pairs = {p["source"]: p for p in rows(out, PAIRS_FILE)}
    assert pairs["ratings"]["prompt"] == [{"role": "user", "content": "Mail <EMAIL_ADDRESS> about the invoice"}]
    assert pairs["ratings"]["chosen"] == [{"role": "assistant", "content": "Done: I wrote to <EMAIL_ADDRESS>."}]
    assert pairs["ratings"]["rejected"] == [{"role": "assistant", "content": "No."}]
    assert pairs["ratings"]["feedback_ids"] == [feedbacks[0].id, feedbacks[1].id]
    assert pairs["preferred"]["chosen"] == [{"role": "assistant", "content": "4"}]
    assert pairs["preferred"]["rejected"] == [{"role": "assistant", "content": "5"}]

    ratings = {r["feedback_id"]: r for r in rows(out, RATINGS_FILE)}
    assert len(ratings) == 5
    assert ratings[feedbacks[3].id]["has_dialogue"] is False and ratings[feedbacks[3].id]["rating"] == "up"
    assert ratings[feedbacks[4].id]["record_kept"] is False and ratings[feedbacks[4].id]["model"] is None
    assert ratings[feedbacks[1].id]["comment"] == "Rude, ask <PERSON>"

    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["schema_version"] == 1 and manifest["feedback"] == 5
    assert manifest["ratings"] == {"down": 3, "up": 2}
    assert manifest["scores"] == {"2": 1, "5": 1}
    assert manifest["categories"] == {"inaccurate": 1, "other": 1, "unhelpful": 1}
    assert manifest["checkpoints"] == {"ab" * 32: 4} and manifest["tenants"] == {"acme": 5}
    for name in (SFT_FILE, PAIRS_FILE, RATINGS_FILE):
        entry = manifest["files"][name]
        assert entry["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert entry["rows"] == len(rows(out, name))

    before = {name: (out / name).read_bytes() for name in (SFT_FILE, PAIRS_FILE, RATINGS_FILE)}
    second = await export(client, prefix, out)
    assert (second.read, second.exported) == (0, 0)
    assert {name: (out / name).read_bytes() for name in before} == before

    # a later rating of the same prompt pairs with the one exported by the earlier pass
    later = data.response("acme", "What is 2 + 2?", "4")
    data.put_response(sync, prefix, later)
    data.add_feedback(sync, prefix, data.feedback(later, "up"))
    third = await export(client, prefix, out)
    assert (third.exported, third.pairs) == (1, 1)
    newest = rows(out, PAIRS_FILE)[-1]
    assert newest["chosen"][0]["content"] == "4" and newest["rejected"][0]["content"] == "5"
    pending = await client.xpending(layout.stream_key(prefix, "acme"), layout.EXPORT_GROUP)
    assert pending["pending"] == 0


@pytest.mark.parametrize("crash", ["after_write", "after_commit"])
async def test_a_crashed_pass_resumes_and_every_feedback_is_in_the_output_once(
    sync: redis.Redis,
    client: redis.asyncio.Redis,
    prefix: str,
    tmp_path: Path,
    crash: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "export"
    ids = rated(sync, prefix, "acme", 45) + rated(sync, prefix, "beta", 5)
    calls = {"commit": 0, "xack": 0}
    real_commit, real_xack = OutputDir.commit, redis.asyncio.Redis.xack

    def commit(self: OutputDir, batch: list[str]) -> None:
        calls["commit"] += 1
        if crash == "after_write" and calls["commit"] == 3:
            raise SystemExit("killed after the rows were written, before the commit")
        real_commit(self, batch)

    async def xack(self: redis.asyncio.Redis, *args: Any) -> Any:
        calls["xack"] += 1
        if crash == "after_commit" and calls["xack"] == 3:
            raise SystemExit("killed after the commit, before XACK")
        return await real_xack(self, *args)

    monkeypatch.setattr(OutputDir, "commit", commit)
    monkeypatch.setattr(redis.asyncio.Redis, "xack", xack)
    with pytest.raises(SystemExit):
        await export(client, prefix, out, batch_size=10)
    monkeypatch.undo()
    written = len(rows(out, RATINGS_FILE))
    assert 0 < written < len(ids)
    assert written == 30  # the third batch's rows are on disk: uncommitted (after_write) or not acknowledged

    # a new exporter (another consumer name: the old one is dead) picks the pending batch up
    resumed = await export(client, prefix, out, batch_size=10, consumer="exporter-2")
    if crash == "after_write":
        assert resumed.truncated_bytes > 0 and resumed.already_exported == 0
    else:
        assert resumed.truncated_bytes == 0 and resumed.already_exported == 10
    assert sorted(r["feedback_id"] for r in rows(out, RATINGS_FILE)) == sorted(ids)
    assert sorted(r["feedback_id"] for r in rows(out, SFT_FILE)) == sorted(ids)
    for tenant in ("acme", "beta"):
        pending = await client.xpending(layout.stream_key(prefix, tenant), layout.EXPORT_GROUP)
        assert pending["pending"] == 0
    again = await export(client, prefix, out)
    assert again.exported == 0 and len(rows(out, RATINGS_FILE)) == len(ids)


async def test_erased_feedback_is_skipped_and_purged_from_what_an_earlier_pass_wrote(
    sync: redis.Redis, client: redis.asyncio.Redis, prefix: str, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    records = [data.response("acme", "Same question?", f"answer {i}") for i in range(4)]
    for record in records:
        data.put_response(sync, prefix, record)
    ratings: list[Rating] = ["up", "down", "up", "down"]
    fbs = [data.feedback(r, rating) for r, rating in zip(records, ratings, strict=True)]
    for fb in fbs[:2]:
        data.add_feedback(sync, prefix, fb)
    first = await export(client, prefix, out)
    assert first.exported == 2 and len(rows(out, PAIRS_FILE)) == 1

    for fb in fbs[2:]:
        data.add_feedback(sync, prefix, fb)
    data.erase(sync, prefix, "acme", f"fb:{fbs[0].id}")  # exported by the first pass
    data.erase(sync, prefix, "acme", f"resp:{records[3].id}", f"fb:{fbs[3].id}")  # never exported
    second = await export(client, prefix, out)
    assert second.erase_ops == 2 and second.skipped_erased == 1 and second.exported == 1
    assert second.purged_rows == 1

    kept = {fbs[1].id, fbs[2].id}
    for name in (SFT_FILE, RATINGS_FILE):
        assert {r["feedback_id"] for r in rows(out, name)} == kept
    text = "".join((out / name).read_text() for name in (SFT_FILE, PAIRS_FILE, RATINGS_FILE, MANIFEST_FILE))
    for erased in (fbs[0].id, fbs[3].id, records[0].id, records[3].id, "answer 0", "answer 3"):
        assert erased not in text
    assert [p["feedback_ids"] for p in rows(out, PAIRS_FILE)] == [[fbs[2].id, fbs[1].id]]
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["feedback"] == 2
    assert manifest["files"][PAIRS_FILE]["sha256"] == hashlib.sha256((out / PAIRS_FILE).read_bytes()).hexdigest()
    # the state is consistent after the purge: another pass changes nothing
    third = await export(client, prefix, out)
    assert (third.exported, third.truncated_bytes, third.purged_rows) == (0, 0, 0)


async def test_since_and_tenant_choose_what_is_exported(
    sync: redis.Redis, client: redis.asyncio.Redis, prefix: str, tmp_path: Path
) -> None:
    record = data.response("acme")
    data.put_response(sync, prefix, record)
    old, new = data.feedback(record, "up", created=1_000), data.feedback(record, "down")
    data.add_feedback(sync, prefix, old)
    data.add_feedback(sync, prefix, new)
    rated(sync, prefix, "beta", 2)

    result = await export(client, prefix, tmp_path / "a", tenant="acme", since=parse_since("2001-01-01"))
    assert (result.tenants, result.exported, result.skipped_since) == (["acme"], 1, 1)
    assert [r["feedback_id"] for r in rows(tmp_path / "a", RATINGS_FILE)] == [new.id]
    beta = await export(client, prefix, tmp_path / "b", group="other")
    assert beta.exported == 4  # a group of its own sees everything, both tenants


def test_since_parses_epoch_and_iso_dates() -> None:
    assert parse_since("1714521600") == 1714521600
    assert parse_since("2024-05-01") == 1714521600
    assert parse_since("2024-05-01T02:00:00+02:00") == 1714521600
    assert parse_since("2024-05-01T00:00:00Z") == 1714521600
    with pytest.raises(ValueError, match="ISO date"):
        parse_since("yesterday")


async def test_one_folder_takes_one_export_at_a_time(client: redis.asyncio.Redis, prefix: str, tmp_path: Path) -> None:
    with OutputDir(tmp_path).opened(), pytest.raises(ExportError, match="another process"):
        await export(client, prefix, tmp_path)
    assert not (tmp_path / STATE_FILE).exists()


def test_the_cli_exports_and_the_trainer_reads_the_dialogues(
    sync: redis.Redis,
    shared_redis: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from guardserve.app.cli import main
    from guardserve.training.recipe import FeedbackSource
    from guardserve.training.sources.feedback import load_feedback

    url, prefix = shared_redis
    ids = rated(sync, prefix, "acme", 3)
    record = data.response("acme", "Card 4111 1111 1111 1111?", "It is <CREDIT_CARD>.")
    data.put_response(sync, prefix, record)
    data.add_feedback(sync, prefix, data.feedback(record, "down"))
    monkeypatch.setenv("GUARDSERVE_REDIS__PREFIX", prefix)
    out = tmp_path / "export"
    assert main(["feedback", "export", "--out", str(out), "--redis-url", url, "--tenant", "acme"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["exported"] == 4
    assert main(["feedback", "export", "--out", str(out), "--since", "someday", "--redis-url", url]) == 2

    spec = FeedbackSource(name="fb", kind="feedback", licence="ours", provenance="gateway", path=out / "sft")
    loaded = load_feedback(spec, out)
    assert len(loaded.records) == 3 and loaded.notes == {"ratings": {"down": 1, "up": 3}, "malformed_rows": 0}
    assert sorted(r["feedback_id"] for r in rows(out, SFT_FILE) if r["rating"] == "up") == sorted(ids)


async def test_the_export_holds_no_raw_pii_and_no_user_hash_or_key(
    sync: redis.Redis, client: redis.asyncio.Redis, prefix: str, tmp_path: Path
) -> None:
    """The gateway stores scrubbed text only; the export adds nothing personal (checked with the PII engine)."""
    from guardserve.guardrails import PIIConfig, PIIEngine

    record = data.response(
        "acme", "Pay <IBAN_CODE> from card <CREDIT_CARD>, mail <EMAIL_ADDRESS>", "Paid; receipt to <EMAIL_ADDRESS>."
    )
    record = record.model_copy(update={"user_hash": "u" * 32})
    data.put_response(sync, prefix, record)
    fb = data.feedback(
        record,
        "down",
        comment="Wrong, I am <PERSON> at <EMAIL_ADDRESS>",
        preferred="Sent to <EMAIL_ADDRESS>.",
        user_hash="u" * 32,
    )
    data.add_feedback(sync, prefix, fb)
    await export(client, prefix, tmp_path)
    engine = PIIEngine(PIIConfig(ner=False))
    for name in (SFT_FILE, PAIRS_FILE, RATINGS_FILE, MANIFEST_FILE, STATE_FILE):
        text = (tmp_path / name).read_text()
        assert text.strip(), name
        assert engine.analyze(text) == [], name
        assert "u" * 32 not in text and '"key_id"' not in text and '"user_hash"' not in text
    assert rows(tmp_path, PAIRS_FILE)[0]["chosen"] == [{"role": "assistant", "content": "Sent to <EMAIL_ADDRESS>."}]


async def test_a_folder_whose_state_file_is_lost_is_refused(
    sync: redis.Redis, client: redis.asyncio.Redis, prefix: str, tmp_path: Path
) -> None:
    rated(sync, prefix, "acme", 2)
    await export(client, prefix, tmp_path)
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(ExportError, match="holds export files but no"):
        await export(client, prefix, tmp_path)
    assert len(rows(tmp_path, RATINGS_FILE)) == 2


async def test_the_export_lag_counts_what_the_export_has_not_read(
    sync: redis.Redis, shared_redis: tuple[str, str], client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    """What ``guardserve_feedback_export_lag`` shows: a stream's length before any export, the group's lag after."""
    from guardserve.app.feedback.store import RedisFeedbackStore
    from guardserve.app.store.backend import RedisBackend
    from guardserve.app.store.connection import connect
    from guardserve.app.store.settings import RedisSettings

    url, prefix = shared_redis
    settings = RedisSettings(url=url, prefix=prefix)  # type: ignore[arg-type]
    backend = RedisBackend(connect(settings), settings)
    store = RedisFeedbackStore(backend)
    try:
        assert await store.export_lag() == 0
        rated(sync, prefix, "acme", 3)
        rated(sync, prefix, "globex", 2)
        assert await store.export_lag() == 5  # no export yet: every entry waits
        await export(client, prefix, tmp_path / "export")
        assert await store.export_lag() == 0
        rated(sync, prefix, "acme", 1)
        assert await store.export_lag() == 1
    finally:
        await backend.aclose()
