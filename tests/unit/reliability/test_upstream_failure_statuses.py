"""Which upstream answers make the router try the next backend, and which reach the client.

A status the backend answers for reasons of its own (its rate limit, its timeout, the router's
credentials or model name refused there, a server error) is a backend failure: the request moves
to the next eligible backend and the failure counts toward cooldown. A status about the request
itself is passed back to the client unchanged.
"""

from __future__ import annotations

import pytest
from modelplane.router.adapters.upstream import is_backend_failure


@pytest.mark.parametrize("status", [401, 403, 404, 408, 429, 500, 502, 503, 504, 599])
def test_statuses_the_backend_answers_for_its_own_reasons_are_backend_failures(
    status: int,
) -> None:
    assert is_backend_failure(status)


@pytest.mark.parametrize("status", [200, 400, 409, 413, 415, 422])
def test_statuses_about_the_request_itself_are_answers(status: int) -> None:
    assert not is_backend_failure(status)
