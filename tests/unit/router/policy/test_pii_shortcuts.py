"""The PII scan's shortcuts give the answers of the definitions they stand in for."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.router.policy.pii import _looks_random, find_pii, luhn_valid
from modelplane.router.policy.types import PiiType

digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=40)
# Token-like values: few distinct characters (placeholders, repeated runs) to many (keys).
token_values = st.text(alphabet=st.sampled_from("aaaaAB01xyzXYZ789_-"), max_size=60) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60
)


def textbook_luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def textbook_looks_random(value: str, min_length: int) -> bool:
    if len(value) < min_length:
        return False
    classes = (
        any(char.isdigit() for char in value)
        + any(char.islower() for char in value)
        + any(char.isupper() for char in value)
    )
    counts = Counter(value).values()
    entropy = -sum(count / len(value) * math.log2(count / len(value)) for count in counts)
    return classes >= 2 and entropy >= 3.0 - 1e-9


@settings(max_examples=500, deadline=None)
@given(digit_strings)
def test_luhn_check_is_the_textbook_one(digits: str) -> None:
    assert luhn_valid(digits) is textbook_luhn(digits)


@settings(max_examples=500, deadline=None)
@given(token_values, st.sampled_from([12, 16, 20]))
def test_randomness_check_is_entropy_and_character_classes(value: str, min_length: int) -> None:
    assert _looks_random(value, min_length=min_length) is textbook_looks_random(value, min_length)


def test_an_ssn_is_found_only_in_its_three_two_four_layout() -> None:
    assert [m.value for m in find_pii("ssn 536-22-1234 ok", {PiiType.US_SSN})] == ["536-22-1234"]
    assert find_pii("ref 5362-21-234 and 53-622-1234", {PiiType.US_SSN}) == []
