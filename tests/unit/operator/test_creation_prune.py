"""Which creation passes must prune: the decision reads the API server's creation stamp."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from modelplane.operator.handlers import _created_since

STARTED = datetime(2026, 11, 23, 18, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stamp", "since_start"),
    [
        ("2026-11-23T18:00:05Z", True),
        ("2026-11-23T18:00:00Z", True),
        ("2026-11-23T17:59:59Z", False),  # created before: a creation pass cut short
        ("2026-11-23T19:00:05+01:00", True),
        (None, False),  # unknown: take the careful path (prune)
        ("yesterday", False),
        ("2026-11-23T18:00:05", False),  # no zone: not an API server stamp
        (12345, False),
    ],
)
def test_a_creation_counts_as_since_start_only_with_a_readable_later_stamp(
    stamp: object, since_start: bool
) -> None:
    assert _created_since({"creationTimestamp": stamp}, STARTED) is since_start
