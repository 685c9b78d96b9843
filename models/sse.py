"""Server-Sent Events framing, in one place: an incremental decoder and the encoder helpers.

The decoder follows the WHATWG event-stream rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation): bytes arrive in
arbitrary chunks; lines end in ``\\n``, ``\\r\\n`` or ``\\r`` (a ``\\r\\n`` split across two chunks is one line
end); the ``data`` lines of one event are joined with ``\\n``; one space after the colon is stripped; a line starting
with ``:`` is a comment; ``event``, ``id`` and ``retry`` are parsed; unknown fields are ignored; a blank line
dispatches the event, unless it had no ``data`` field. A leading UTF-8 BOM is skipped and field values are decoded
as UTF-8 with U+FFFD for bad bytes. An event left without its blank line at the end of the stream is not dispatched
(:meth:`SSEDecoder.feed` never returns it).

The line splitting works on bytes (``\\r`` and ``\\n`` never occur inside a UTF-8 multi-byte sequence), so a chunk
costs a few splits and one decode per field.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"  # the type; "message" when the event set none
    id: str | None = None  # the last event ID so far (it carries over to later events, as in a browser)
    retry: int | None = None  # a valid ``retry`` value within this event, in milliseconds


class SSEDecoder:
    """Feed bytes, get complete events."""

    __slots__ = ("_buffer", "_data", "_event", "_id", "_retry", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = b""  # an unfinished line (never holds a line end)
        self._skip_lf = False  # the last chunk ended in \r: a \n opening the next one belongs to it
        self._started = False  # past the optional BOM
        self._data: list[bytes] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        text = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(text) < len(_BOM) and _BOM.startswith(text):
                self._buffer = text  # maybe a BOM, not complete yet
                return []
            self._started = True
            if text.startswith(_BOM):
                text = text[len(_BOM) :]
        if b"\r" in text:
            if text.endswith(b"\r"):
                self._skip_lf = True
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = text.split(b"\n")
        self._buffer = lines.pop()
        events: list[Event] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = self._retry = None
            elif line[0] != 0x3A:  # ":" opens a comment
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> Event:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = Event(data.decode("utf-8", "replace"), self._event or "message", self._id, self._retry)
        self._data = []
        self._event = self._retry = None
        return event


# --- encoding ---------------------------------------------------------------------------------------------------

DONE = b"data: [DONE]\n\n"  # the end of an OpenAI stream


def encode_data(data: bytes | str) -> bytes:
    """One event whose data is ``data`` (each of its lines a ``data:`` line): ``data: ...\\n\\n``."""
    raw = data.encode() if isinstance(data, str) else data
    if b"\n" not in raw and b"\r" not in raw:
        return b"data: " + raw + b"\n\n"
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def encode_event(
    data: bytes | str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """An event with its optional ``event``, ``id`` and ``retry`` fields (values with a line end are refused)."""
    head = b""
    if event is not None:
        head += b"event: " + _single_line(event, "event") + b"\n"
    if id is not None:
        if "\0" in id:
            raise ValueError("an SSE id cannot hold NUL")
        head += b"id: " + _single_line(id, "id") + b"\n"
    if retry is not None:
        if retry < 0:
            raise ValueError("an SSE retry is a non-negative number of milliseconds")
        head += b"retry: " + str(retry).encode() + b"\n"
    return head + encode_data(data)


def encode_comment(text: str = "") -> bytes:
    """A comment line (a keep-alive that clients ignore)."""
    return b":" + (b" " + _single_line(text, "comment") if text else b"") + b"\n\n"


def _single_line(value: str, what: str) -> bytes:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {what} cannot span lines")
    return value.encode()
