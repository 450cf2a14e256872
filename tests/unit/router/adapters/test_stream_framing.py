"""How the pass-through cuts an upstream's SSE stream into events: whatever the line endings and
however the network splits the bytes, the client gets whole LF-framed events, and only the
`[DONE]` event ends the stream."""

from __future__ import annotations

import asyncio
import random
from typing import cast

import orjson
import pytest
from modelplane.router.adapters.http1 import StreamingResponse
from modelplane.router.adapters.openai_http import _HttpStream
from modelplane.router.adapters.upstream import Usage


class _Reads:
    """An upstream response body delivered in the given network reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = list(reads)

    async def read_chunk(self) -> bytes:
        return self._reads.pop(0) if self._reads else b""

    async def aclose(self, drain: bool = False) -> None:
        return None


def _chunk(content: str) -> bytes:
    delta = {"choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + orjson.dumps(delta)


USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}'
EVENTS = [_chunk("Hello"), _chunk(", world"), USAGE, b"data: [DONE]"]


def _relay(reads: list[bytes], client_wants_usage: bool = True) -> tuple[bytes, _HttpStream]:
    stream = _HttpStream(cast(StreamingResponse, _Reads(reads)), client_wants_usage)

    async def collect() -> bytes:
        await stream.read_first_events()
        return b"".join([events async for events in stream.events()])

    return asyncio.run(collect()), stream


def _split_at_random(body: bytes, generator: random.Random) -> list[bytes]:
    cuts = sorted(generator.sample(range(1, len(body)), generator.randint(1, 12)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_events_arrive_whole_and_lf_framed_however_the_reads_split_them(line_end: bytes) -> None:
    body = b"".join(event + line_end + line_end for event in EVENTS)
    expected = b"".join(event + b"\n\n" for event in EVENTS)
    generator = random.Random(11)
    for _ in range(300):
        relayed, stream = _relay(_split_at_random(body, generator))

        assert relayed == expected
        assert stream.usage == Usage(input_tokens=9, output_tokens=4)


def test_a_read_ending_between_cr_and_lf_does_not_end_the_event() -> None:
    event = _chunk("two") + b"\r\n"
    reads = [event, b"\r", b"\n", b"data: [DONE]\r", b"\n\r\n"]

    relayed, _ = _relay(reads)

    assert relayed == _chunk("two") + b"\n\n" + b"data: [DONE]\n\n"


def test_the_text_of_the_done_event_inside_a_chunk_does_not_end_the_stream() -> None:
    quoted = _chunk("the stream ends with the line data: [DONE]")
    reads = [event + b"\n\n" for event in [quoted, _chunk("!"), USAGE, b"data: [DONE]"]]

    relayed, stream = _relay(reads)

    assert relayed == b"".join(reads)
    assert stream.usage == Usage(input_tokens=9, output_tokens=4)


def test_a_stream_that_closes_before_done_is_broken_not_finished() -> None:
    with pytest.raises(Exception, match="before \\[DONE\\]"):
        _relay([_chunk("cut") + b"\r\n\r\n"])


def test_the_chunks_passed_on_are_counted_for_a_stream_that_never_reports_usage() -> None:
    reads = [event + b"\n\n" for event in [_chunk("a"), _chunk("b"), _chunk("c"), b"data: [DONE]"]]

    _, stream = _relay(reads)

    assert stream.usage is None
    assert stream.chunks_relayed == 3
