"""An upstream's Retry-After, read the way providers send it."""

from __future__ import annotations

import email.utils
import time

import pytest
from modelplane.router.adapters.upstream import MAX_RETRY_AFTER_S, retry_after_from


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, [(b"Retry-After", b"7")], 7.0),
        (503, [(b"retry-after", b" 12 ")], 12.0),
        (429, [(b"retry-after-ms", b"1500")], 1.5),
        # OpenAI sends both; the finer one wins whatever the order.
        (429, [(b"retry-after", b"2"), (b"retry-after-ms", b"1250")], 1.25),
        (429, [(b"retry-after-ms", b"1250"), (b"retry-after", b"2")], 1.25),
        (429, [(b"retry-after", b"100000")], MAX_RETRY_AFTER_S),
        (429, [(b"retry-after", b"0")], None),
        (429, [(b"retry-after", b"-3")], None),
        (429, [(b"retry-after", b"soon")], None),
        (429, [(b"retry-after-ms", b"nan")], None),
        (429, [(b"content-type", b"application/json")], None),
        (500, [(b"retry-after", b"7")], None),  # Retry-After means nothing on a 500
        (401, [(b"retry-after", b"7")], None),
    ],
)
def test_retry_after_is_read_from_429_and_503_only(
    status: int, headers: list[tuple[bytes, bytes]], expected: float | None
) -> None:
    assert retry_after_from(status, headers) == expected


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True).encode()

    waited = retry_after_from(503, [(b"Retry-After", when)])

    assert waited is not None
    assert 28 <= waited <= 31


def test_retry_after_as_a_past_http_date_asks_for_no_wait() -> None:
    when = email.utils.formatdate(time.time() - 30, usegmt=True).encode()

    assert retry_after_from(503, [(b"Retry-After", when)]) is None
