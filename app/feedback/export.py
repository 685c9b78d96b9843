"""``guardserve feedback export``: one pass over the tenants' feedback Streams into a folder the trainer reads.

One pass, per tenant stream, in batches::

    read (XREADGROUP in the group ``layout.EXPORT_GROUP``: this run's pending entries first, then new ones)
      -> filter (``op=erase`` entries, tombstoned feedback/responses, ids already exported, ``--since``)
      -> join (each feedback to its :class:`ResponseRecord`, when one was kept)
      -> write + fsync (the JSONL files), then commit (one line in the state file, fsync'd)
      -> XACK

Delivery is at-least-once (an entry is acknowledged only after its rows are on disk and committed) and the output
is exactly-once by feedback id: the state file ``export-state.log`` lists every exported id and how long each file
was at its last commit. A run that crashed after writing but before committing left bytes past those lengths: the
next run cuts them off, re-reads the still pending entries and writes them again; a run that crashed after
committing but before XACK re-reads entries whose ids are already listed, and only acknowledges them.

The folder (``SCHEMA_VERSION`` in every file name and row)::

    DIR/sft/feedback-v1.jsonl         rated dialogues: what ``training/sources/feedback.py`` reads (point a
                                      ``kind: feedback`` recipe source at ``DIR/sft``)
    DIR/preference/pairs-v1.jsonl     preference pairs: {"prompt": [...], "chosen": [...], "rejected": [...]}
    DIR/ratings/ratings-v1.jsonl      every exported feedback, metadata only (with or without a dialogue)
    DIR/manifest.json                 counts per rating/category, checkpoints rated, sha256 of every file
    DIR/export-state.log              the commit log (ids exported, committed file lengths)

Erasure: every pass reads the tenants' tombstones (``layout.tombstones_key``) and, besides skipping tombstoned
entries, rewrites the files without any row that an erasure reached since an earlier pass, so the folder never
keeps erased data after the next export. A tenant stream trimmed by ``MAXLEN ~`` before its entries were exported
loses them (counted as ``trimmed``): export more often than the bound fills.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from redis.exceptions import ResponseError

from guardserve.app.feedback import layout
from guardserve.app.feedback.model import SCHEMA_VERSION, FeedbackRecord, Rating, ResponseRecord
from guardserve.app.store.connection import RedisClient
from guardserve.models.checkpoint import sha256_file

SFT_FILE = f"sft/feedback-v{SCHEMA_VERSION}.jsonl"
PAIRS_FILE = f"preference/pairs-v{SCHEMA_VERSION}.jsonl"
RATINGS_FILE = f"ratings/ratings-v{SCHEMA_VERSION}.jsonl"
FILES = (SFT_FILE, PAIRS_FILE, RATINGS_FILE)
STATE_FILE = "export-state.log"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".export.lock"
CONSUMER = "exporter"
TRAINER_ROLES = ("system", "user", "assistant")  # training.records.ROLES (the trainer drops other roles' rows)
MAX_PAIRS_PER_FEEDBACK = 8  # a popular prompt ("hi") must not make a quadratic number of pairs


class ExportError(RuntimeError):
    """The export cannot run (the folder is locked by another export, or its state file is not ours)."""


def parse_since(text: str) -> int:
    """``--since``: epoch seconds (``1714521600``) or an ISO date/time (``2024-05-01``, ``2024-05-01T10:00Z``;
    naive means UTC). Returns epoch seconds."""
    text = text.strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: not an epoch time or an ISO date (2024-05-01[T10:00:00Z])") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def rating_label(rating: Rating) -> str:
    """The trainer's rating string: ``up``/``down`` as given; a 1-5 score is ``up`` (4-5), ``neutral`` (3) or
    ``down`` (1-2) (the score itself is kept in the row's ``score``)."""
    if isinstance(rating, str):
        return rating
    return "up" if rating >= 4 else "down" if rating <= 2 else "neutral"


def rating_value(rating: Rating) -> float:
    """For ordering two answers: ``up`` 1, ``down`` -1, a score s maps to (s - 3) / 2 (so 5 is ``up``, 1 ``down``)."""
    if isinstance(rating, str):
        return 1.0 if rating == "up" else -1.0
    return (rating - 3) / 2


def dialogue_of(record: ResponseRecord | None) -> tuple[list[dict[str, str]], str] | None:
    """The (prompt messages, answer) a record kept (retention ``scrubbed``), or None."""
    if record is None or record.messages is None or record.answer is None:
        return None
    prompt = [{"role": m.role, "content": m.content} for m in record.messages if m.role in TRAINER_ROLES]
    if not any(m["role"] == "user" for m in prompt):
        return None
    return prompt, record.answer


def prompt_key(tenant: str, prompt: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps([tenant, prompt], sort_keys=True).encode()).hexdigest()


@dataclass
class ExportResult:
    """What one pass did (counts only)."""

    read: int = 0  # stream entries read (pending and new)
    exported: int = 0  # feedback newly written
    dialogues: int = 0  # of which with a dialogue (sft rows)
    pairs: int = 0  # preference pairs written
    already_exported: int = 0  # re-read entries whose ids were committed earlier (a crash before XACK)
    skipped_erased: int = 0  # tombstoned feedback or response
    skipped_since: int = 0  # older than --since (acknowledged: this group never exports them)
    erase_ops: int = 0
    purged_rows: int = 0  # rows of earlier passes removed because an erasure reached them
    malformed: int = 0
    trimmed: int = 0  # pending entries the stream had trimmed
    truncated_bytes: int = 0  # uncommitted bytes of a crashed pass cut off at start
    tenants: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Answer:
    feedback_id: str
    response_id: str
    value: float
    answer: str


@dataclass
class _Batch:
    ids: list[str] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {name: [] for name in FILES})


class OutputDir:
    """The export folder: its files, the commit log and the lock. Rows are appended and fsync'd, then a commit
    line records the new ids and file lengths; anything past the committed lengths is a crashed pass's and is
    cut off when the folder is opened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ids: set[str] = set()
        self.lengths: dict[str, int] = dict.fromkeys(FILES, 0)
        self._lock: IO[bytes] | None = None

    @contextlib.contextmanager
    def opened(self) -> Iterator[OutputDir]:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = (self.root / LOCK_FILE).open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ExportError(f"{self.root} is being exported to by another process") from None
        self._lock = lock
        try:
            yield self
        finally:
            self._lock = None
            lock.close()

    def path(self, name: str) -> Path:
        return self.root / name

    def recover(self) -> int:
        """Load the commit log and cut every file back to its committed length. Returns the bytes cut off."""
        state = self.path(STATE_FILE)
        if state.is_file():
            for line in state.read_bytes().splitlines():
                try:
                    commit = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line: that commit never happened
                if commit.get("schema") != SCHEMA_VERSION:
                    raise ExportError(f"{state}: schema {commit.get('schema')!r}, this export writes {SCHEMA_VERSION}")
                self.ids.update(commit["ids"])
                self.lengths.update(commit["files"])
            self._rewrite_state()  # drops a torn tail, so later appends start on a line of their own
        elif any(self.path(name).exists() and self.path(name).stat().st_size for name in FILES):
            # cutting the files back to "nothing committed" would drop rows whose entries were acknowledged
            raise ExportError(f"{self.root} holds export files but no {STATE_FILE}: export into a new folder")
        cut = 0
        for name in FILES:
            file = self.path(name)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch()
            size = file.stat().st_size
            committed = self.lengths[name]
            if size > committed:
                with file.open("r+b") as data:
                    data.truncate(committed)
                    _fsync(data)
                cut += size - committed
            elif size < committed:
                # only a purge shrinks a file, and it renames a whole new file into place: trust what is there
                self.lengths[name] = size
        return cut

    def rows(self, name: str) -> Iterator[dict[str, Any]]:
        file = self.path(name)
        if not file.exists():
            return
        with file.open("rb") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    def append(self, batch: _Batch) -> None:
        """Write a batch's rows and fsync them, then commit (a state line, fsync'd)."""
        for name, rows in batch.rows.items():
            if not rows:
                continue
            with self.path(name).open("ab") as data:
                data.write(b"".join(_line(row) for row in rows))
                _fsync(data)
        self.commit(batch.ids)

    def commit(self, ids: list[str]) -> None:
        lengths = {name: self.path(name).stat().st_size if self.path(name).exists() else 0 for name in FILES}
        line = json.dumps({"schema": SCHEMA_VERSION, "at": int(time.time()), "ids": ids, "files": lengths})
        with self.path(STATE_FILE).open("ab") as state:
            state.write(line.encode() + b"\n")
            _fsync(state)
        self.ids.update(ids)
        self.lengths = lengths

    def replace(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Rewrite one file (a purge): a new file fsync'd and renamed into place, then a commit."""
        file = self.path(name)
        temp = file.with_suffix(".tmp")
        with temp.open("wb") as data:
            data.write(b"".join(_line(row) for row in rows))
            _fsync(data)
        os.replace(temp, file)
        _fsync_dir(file.parent)
        self.commit([])

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        file = self.path(MANIFEST_FILE)
        temp = file.with_suffix(".tmp")
        temp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        with temp.open("rb") as data:
            _fsync(data)
        os.replace(temp, file)
        _fsync_dir(self.root)

    def _rewrite_state(self) -> None:
        line = json.dumps(
            {"schema": SCHEMA_VERSION, "at": int(time.time()), "ids": sorted(self.ids), "files": self.lengths}
        )
        file = self.path(STATE_FILE)
        temp = file.with_suffix(".tmp")
        with temp.open("wb") as data:
            data.write(line.encode() + b"\n")
            _fsync(data)
        os.replace(temp, file)
        _fsync_dir(self.root)


class FeedbackExporter:
    """One export pass over the tenants' feedback streams (all of them, or ``tenant``) into ``out``."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str,
        out: Path,
        *,
        tenant: str | None = None,
        since: int | None = None,
        group: str = layout.EXPORT_GROUP,
        consumer: str = CONSUMER,
        batch_size: int = 500,
    ) -> None:
        self.client, self.prefix, self.tenant, self.since = client, prefix, tenant, since
        self.group, self.consumer, self.batch_size = group, consumer, batch_size
        self.out = OutputDir(out)
        self.result = ExportResult()
        self._tombstones: dict[str, set[str]] = {}
        self._answers: dict[str, list[_Answer]] = defaultdict(list)  # prompt key -> rated answers exported

    async def run(self) -> ExportResult:
        with self.out.opened():
            self.result.truncated_bytes = self.out.recover()
            self._index_answers()
            tenants = [self.tenant] if self.tenant else await self._tenants()
            self.result.tenants = tenants
            await self._purge(tenants)
            for tenant in tenants:
                await self._export_tenant(tenant)
            if self.result.erase_ops:
                await self._purge(tenants)
            self.out.write_manifest(self._manifest())
        return self.result

    # -- read ----------------------------------------------------------------------------------------------

    async def _tenants(self) -> list[str]:
        members = await self.client.smembers(layout.tenants_key(self.prefix))
        return sorted(_text(m) for m in members)

    async def _export_tenant(self, tenant: str) -> None:
        stream = layout.stream_key(self.prefix, tenant)
        start = f"{self.since * 1000}-0" if self.since else "0"
        try:
            await self.client.xgroup_create(stream, self.group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._claim(stream)
        last = "0"  # this consumer's pending entries (a crashed pass's) first
        while entries := await self._read(stream, last):
            await self._pass(tenant, stream, entries)
            last = entries[-1][0].decode()
        while entries := await self._read(stream, ">"):
            await self._pass(tenant, stream, entries)

    async def _claim(self, stream: str) -> None:
        """Take over entries pending on other consumers of the group (one exporter per group: they are dead)."""
        cursor = "0-0"
        while True:
            reply = await self.client.xautoclaim(
                stream, self.group, self.consumer, min_idle_time=0, start_id=cursor, count=self.batch_size
            )
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if cursor == "0-0":
                return

    async def _read(self, stream: str, last: str) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        reply: Any = await self.client.xreadgroup(self.group, self.consumer, {stream: last}, count=self.batch_size)
        return list(reply[0][1]) if reply else []  # [[stream, [(id, fields or None), ...]]]

    async def _load_tombstones(self, tenant: str) -> set[str]:
        found: set[str] = set()
        async for member in self.client.sscan_iter(layout.tombstones_key(self.prefix, tenant), count=1000):
            found.add(_text(member))
        self._tombstones[tenant] = found
        return found

    # -- filter, join, write, ack --------------------------------------------------------------------------

    async def _pass(self, tenant: str, stream: str, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
        result = self.result
        result.read += len(entries)
        tombs = await self._load_tombstones(tenant)
        wanted: list[FeedbackRecord] = []
        batch_ids: set[str] = set()
        erasures = False
        for _, fields in entries:
            if not fields:
                result.trimmed += 1
                continue
            op = fields.get(b"op")
            if op == b"erase":
                result.erase_ops += 1
                erasures = True
                continue
            try:
                if op != b"add":
                    raise ValueError("unknown op")
                feedback = layout.load_feedback(fields[b"record"])
            except (KeyError, ValueError, ValidationError):
                result.malformed += 1
                continue
            if feedback.id in self.out.ids or feedback.id in batch_ids:
                result.already_exported += 1
            elif feedback.tenant != tenant:
                result.malformed += 1  # not this stream's tenant: never export it under another's name
            elif f"fb:{feedback.id}" in tombs or f"resp:{feedback.response_id}" in tombs:
                result.skipped_erased += 1
            elif self.since is not None and feedback.created < self.since:
                result.skipped_since += 1
            else:
                wanted.append(feedback)
                batch_ids.add(feedback.id)
        if erasures:  # an erasure in this batch may reach an entry read before it
            tombs = await self._load_tombstones(tenant)
            wanted = [f for f in wanted if f"fb:{f.id}" not in tombs and f"resp:{f.response_id}" not in tombs]
        records = await self._responses(tenant, [f.response_id for f in wanted])
        batch = _Batch()
        for feedback in wanted:
            self._rows(feedback, records.get(feedback.response_id), batch)
        batch.ids = [f.id for f in wanted]
        if batch.ids:
            self.out.append(batch)
        result.exported += len(batch.ids)
        await self.client.xack(stream, self.group, *[entry_id for entry_id, _ in entries])

    async def _responses(self, tenant: str, ids: list[str]) -> dict[str, ResponseRecord]:
        unique = sorted(set(ids))
        if not unique:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for response_id in unique:
                pipe.get(layout.response_key(self.prefix, tenant, response_id))
            values = await pipe.execute()
        records: dict[str, ResponseRecord] = {}
        for response_id, value in zip(unique, values, strict=True):
            if value is None:
                continue
            with contextlib.suppress(ValidationError, ValueError):
                records[response_id] = layout.load_response(value)
        return records

    def _rows(self, feedback: FeedbackRecord, record: ResponseRecord | None, batch: _Batch) -> None:
        label = rating_label(feedback.rating)
        common = {
            "version": SCHEMA_VERSION,
            "feedback_id": feedback.id,
            "response_id": feedback.response_id,
            "tenant": feedback.tenant,
            "model": record.model if record else None,
            "model_version": record.model_version if record else None,  # the registry's label (app.rollout)
            "checkpoint_sha256": record.checkpoint_sha256 if record else None,
            "rating": label,
            "score": feedback.rating if isinstance(feedback.rating, int) else None,
            "categories": list(feedback.categories),
            "created": feedback.created,
        }
        dialogue = dialogue_of(record)
        batch.rows[RATINGS_FILE].append(
            {
                **common,
                "comment": feedback.comment,
                "has_dialogue": dialogue is not None,
                "record_kept": record is not None,
            }
        )
        if dialogue is None:
            return
        prompt, answer = dialogue
        batch.rows[SFT_FILE].append({**common, "messages": [*prompt, {"role": "assistant", "content": answer}]})
        self.result.dialogues += 1
        pair_common = {"version": SCHEMA_VERSION, "tenant": feedback.tenant, "prompt": prompt}
        if feedback.preferred and feedback.preferred.strip() and feedback.preferred != answer:
            batch.rows[PAIRS_FILE].append(
                {
                    **pair_common,
                    "chosen": [{"role": "assistant", "content": feedback.preferred}],
                    "rejected": [{"role": "assistant", "content": answer}],
                    "source": "preferred",
                    "feedback_ids": [feedback.id],
                    "response_ids": [feedback.response_id],
                }
            )
            self.result.pairs += 1
        key = prompt_key(feedback.tenant, prompt)
        mine = _Answer(feedback.id, feedback.response_id, rating_value(feedback.rating), answer)
        made = 0
        for other in self._answers[key]:
            if made >= MAX_PAIRS_PER_FEEDBACK:
                break
            if other.value == mine.value or other.answer == mine.answer:
                continue
            chosen, rejected = (mine, other) if mine.value > other.value else (other, mine)
            batch.rows[PAIRS_FILE].append(
                {
                    **pair_common,
                    "chosen": [{"role": "assistant", "content": chosen.answer}],
                    "rejected": [{"role": "assistant", "content": rejected.answer}],
                    "source": "ratings",
                    "feedback_ids": [chosen.feedback_id, rejected.feedback_id],
                    "response_ids": [chosen.response_id, rejected.response_id],
                }
            )
            made += 1
        self.result.pairs += made
        self._answers[key].append(mine)

    def _index_answers(self) -> None:
        """The rated answers of earlier passes, by prompt (so a new rating pairs with an older one)."""
        for row in self.out.rows(SFT_FILE):
            *prompt, last = row["messages"]
            score, label = row.get("score"), row["rating"]
            value = (
                rating_value(score) if isinstance(score, int) else rating_value(label) if label != "neutral" else 0.0
            )
            answer = _Answer(row["feedback_id"], row["response_id"], value, last["content"])
            self._answers[prompt_key(row["tenant"], prompt)].append(answer)

    # -- erasure ---------------------------------------------------------------------------------------------

    async def _purge(self, tenants: list[str]) -> None:
        """Rewrite each file without the rows an erasure has reached (a tombstoned feedback or response)."""
        present = {row["tenant"] for row in self.out.rows(RATINGS_FILE)} | set(tenants)
        tombs = {tenant: await self._load_tombstones(tenant) for tenant in sorted(present)}
        if not any(tombs.values()):
            return
        dropped: set[str] = set()
        for name in FILES:
            kept: list[dict[str, Any]] = []
            removed = 0
            for row in self.out.rows(name):
                if _erased(row, tombs.get(row["tenant"], set())):
                    removed += 1
                    if name == SFT_FILE:
                        dropped.add(row["feedback_id"])
                else:
                    kept.append(row)
            if removed:
                self.out.replace(name, kept)
                if name == RATINGS_FILE:
                    self.result.purged_rows += removed
        if dropped:
            for answers in self._answers.values():
                answers[:] = [a for a in answers if a.feedback_id not in dropped]

    # -- manifest --------------------------------------------------------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        ratings: Counter[str] = Counter()
        scores: Counter[str] = Counter()
        categories: Counter[str] = Counter()
        checkpoints: Counter[str] = Counter()
        models: Counter[str] = Counter()
        tenants: Counter[str] = Counter()
        for row in self.out.rows(RATINGS_FILE):
            ratings[row["rating"]] += 1
            if row.get("score") is not None:
                scores[str(row["score"])] += 1
            categories.update(row["categories"])
            tenants[row["tenant"]] += 1
            if row.get("model"):
                models[row["model"]] += 1
            if row.get("checkpoint_sha256"):
                checkpoints[row["checkpoint_sha256"]] += 1
        files = {}
        for name in FILES:
            file = self.out.path(name)
            files[name] = {
                "rows": sum(1 for _ in self.out.rows(name)),
                "bytes": file.stat().st_size,
                "sha256": sha256_file(file),
            }
        return {
            "schema_version": SCHEMA_VERSION,
            "exported_at": int(time.time()),
            "group": self.group,
            "feedback": sum(ratings.values()),
            "ratings": dict(sorted(ratings.items())),
            "scores": dict(sorted(scores.items())),
            "categories": dict(sorted(categories.items())),
            "checkpoints": dict(sorted(checkpoints.items())),
            "models": dict(sorted(models.items())),
            "tenants": dict(sorted(tenants.items())),
            "files": files,
            "trainer": {"kind": "feedback", "path": "sft"},
            "last_pass": self.result.to_json(),
        }


def _erased(row: dict[str, Any], tombs: set[str]) -> bool:
    if not tombs:
        return False
    feedback_ids = row.get("feedback_ids") or [row.get("feedback_id")]
    response_ids = row.get("response_ids") or [row.get("response_id")]
    return any(f"fb:{i}" in tombs for i in feedback_ids) or any(f"resp:{i}" in tombs for i in response_ids)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _fsync(data: IO[bytes]) -> None:
    data.flush()
    os.fsync(data.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
