"""Usage taken out of an upstream's SSE events: reading only the events that mention usage gives
what splitting every event does, and the client gets the usage-only event only if it asked."""

from __future__ import annotations

import random
from typing import cast

import orjson
import pytest
from modelplane.router.adapters.http1 import StreamingResponse
from modelplane.router.adapters.openai_http import _HttpStream
from modelplane.router.adapters.upstream import Usage

USAGE_ONLY = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}'
WITH_CHOICE = (
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":2}}'
)
PIECES = [
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}',
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"\\"usage\\""}}]}',
    USAGE_ONLY,
    WITH_CHOICE,
    b'data: {"usage": broken json',
    b': a comment about "usage"',
    b"data: [DONE]",
    b"event: ping",
    b"",
    b"\n",
]


def _stream(client_wants_usage: bool) -> _HttpStream:
    return _HttpStream(cast(StreamingResponse, None), client_wants_usage)


def _events(*events: bytes) -> bytes:
    return b"".join(event + b"\n\n" for event in events)


@pytest.mark.parametrize("client_wants_usage", [False, True])
def test_the_usage_only_event_reaches_only_a_client_that_asked_for_it(
    client_wants_usage: bool,
) -> None:
    stream = _stream(client_wants_usage)
    first, done = PIECES[0], b"data: [DONE]"
    taken = stream._take_usage(_events(first, USAGE_ONLY, done))
    expected = (first, USAGE_ONLY, done) if client_wants_usage else (first, done)
    assert taken == _events(*expected)
    assert stream.usage == Usage(input_tokens=7, output_tokens=3)


def test_usage_on_an_event_with_choices_is_read_and_the_event_kept() -> None:
    stream = _stream(False)
    assert stream._take_usage(_events(WITH_CHOICE)) == _events(WITH_CHOICE)
    assert stream.usage == Usage(input_tokens=5, output_tokens=2)


@pytest.mark.parametrize("client_wants_usage", [False, True])
def test_reading_the_usage_events_alone_agrees_with_splitting_every_event(
    client_wants_usage: bool,
) -> None:
    generator = random.Random(6)
    for _ in range(3000):
        complete = b"\n\n".join(generator.choices(PIECES, k=generator.randint(1, 6))) + b"\n\n"
        if generator.random() < 0.1:
            complete = b"\n\n" + complete
        split, fast = _stream(client_wants_usage), _stream(client_wants_usage)
        assert fast._take_usage(complete) == split._take_usage_by_split(complete), complete
        assert fast.usage == split.usage, complete


def test_the_payload_of_a_kept_usage_event_is_forwarded_unchanged() -> None:
    stream = _stream(True)
    taken = stream._take_usage(_events(PIECES[0], USAGE_ONLY))
    assert orjson.loads(taken.split(b"\n\n")[1][6:])["usage"]["prompt_tokens"] == 7
