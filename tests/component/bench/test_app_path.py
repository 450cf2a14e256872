"""The in-process request-path benchmark times real answers, never an error path."""

from __future__ import annotations

import pytest
import uvloop

from bench.app_path import check, measure, sse_events


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_app_path_serves_every_timed_request_with_a_complete_answer(stream: bool) -> None:
    per_request_us = uvloop.run(measure(stream, telemetry=True, requests=20, rounds=2))

    assert len(per_request_us) == 2
    assert all(value > 0 for value in per_request_us)


def test_app_path_refuses_to_time_an_error_answer() -> None:
    answers = [
        {"type": "http.response.start", "status": 401, "headers": []},
        {"type": "http.response.body", "body": b'{"error": {}}'},
    ]

    with pytest.raises(RuntimeError, match="answered 401"):
        check(answers, stream=False)


def test_app_path_stream_events_are_the_upstream_stream_without_chunk_framing() -> None:
    events = sse_events("bench")

    assert events.startswith(b"data: {")
    assert events.endswith(b"data: [DONE]\n\n")
    assert b"\r\n" not in events
    assert events.count(b"\n\ndata: ") == 9  # 8 content chunks, the usage chunk, [DONE]
