"""The SSE decoder and encoder (models/sse.py): WHATWG framing, whatever the chunk boundaries."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from guardserve.models.sse import DONE, Event, SSEDecoder, encode_comment, encode_data, encode_event


def decode(*chunks: bytes) -> list[Event]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(raw)) for c in cuts})
    edges = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(edges)]


# text without line ends (what one line of data, an event type or an id may hold)
line_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\0"), max_size=30)
data_text = st.lists(line_text, min_size=1, max_size=4).map("\n".join)
line_end = st.sampled_from([b"\n", b"\r\n", b"\r"])  # a bare \n right after a bare \r is drawn as \r\n


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Event]]:
    """A stream of events with comments, types, ids, retries and any mix of line ends, and the events it holds."""
    out, expected, last_id = b"", [], None
    for _ in range(draw(st.integers(0, 6))):
        lines: list[bytes] = []
        event = id = retry = None
        if draw(st.booleans()):
            lines.append(b":" + draw(line_text).encode())
        if draw(st.booleans()):
            event = draw(line_text)
            lines.append(b"event: " + event.encode())
        if draw(st.booleans()):
            id = last_id = draw(line_text)
            lines.append(b"id: " + id.encode())
        if draw(st.booleans()):
            retry = draw(st.integers(0, 10**6))
            lines.append(b"retry: " + str(retry).encode())
        data = draw(data_text)
        for part in data.split("\n"):  # the space after the colon is optional, unless the value opens with one
            space = b" " if part.startswith(" ") else draw(st.sampled_from([b"", b" "]))
            lines.append(b"data:" + space + part.encode())
        for line in [*lines, b""]:
            end = draw(line_end)
            out += line + (b"\r\n" if end == b"\n" and out.endswith(b"\r") and not line else end)
        expected.append(Event(data, event or "message", last_id, retry))
    return out, expected


@given(streams(), st.lists(st.integers(0, 2000), max_size=20))
def test_any_chunk_boundaries_give_the_stream_s_events(stream: tuple[bytes, list[Event]], cuts: list[int]) -> None:
    raw, expected = stream
    assert decode(raw) == expected
    assert decode(*split(raw, cuts)) == expected


@given(streams())
def test_byte_by_byte_gives_the_same_events(stream: tuple[bytes, list[Event]]) -> None:
    raw, expected = stream
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == expected


@given(data_text, st.one_of(st.none(), line_text), st.one_of(st.none(), line_text), st.lists(st.integers(0, 200)))
def test_encode_then_decode_round_trips(data: str, event: str | None, id: str | None, cuts: list[int]) -> None:
    raw = encode_event(data, event=event, id=id)
    events = decode(*split(raw, cuts))
    assert events == [Event(data, event or "message", id)]


@given(st.lists(data_text, max_size=5), st.lists(st.integers(0, 500)))
def test_a_stream_of_data_events_decodes_to_its_data(datas: list[str], cuts: list[int]) -> None:
    raw = b"".join(encode_data(d) for d in datas) + DONE
    assert [e.data for e in decode(*split(raw, cuts))] == [*datas, "[DONE]"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b"data: one\ndata:two\ndata:  three\n\n") == [Event("one\ntwo\n three")]
    assert encode_data("a\nb") == b"data: a\ndata: b\n\n"


def test_comments_and_unknown_fields_are_ignored() -> None:
    raw = b": keep-alive\n\n:x\ndata: a\nfoo: bar\n: more\n\n"
    assert decode(raw) == [Event("a")]
    assert decode(encode_comment("ping"), encode_comment()) == []


def test_event_id_and_retry_fields() -> None:
    events = decode(b"event: add\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\nretry: soon\nid: a\0b\ndata: z\n\n")
    assert events == [Event("x", "add", "7", 1500), Event("y", "message", "7"), Event("z", "message", "7")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\nid: 3\n\n\n\ndata: x\n\n") == [Event("x", "message", "3")]
    assert decode(b"data\n\n") == [Event("")]  # a data field with no value: an empty event


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    assert decode(b"data: a\r", b"\n\r", b"\n") == [Event("a")]
    assert decode(b"data: a\r", b"\r") == [Event("a")]  # two bare CRs: a line end and a blank line
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [Event("a\nb")]


def test_an_unfinished_event_is_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [Event("a")]
    assert decoder.feed(b"") == []


def test_bom_and_bad_utf8() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: a\n\n") == [Event("a")]
    assert decode(b"data: \xff\n\n") == [Event("\ufffd")]


def test_done_bytes() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert encode_data(b'{"a":1}') == b'data: {"a":1}\n\n'
