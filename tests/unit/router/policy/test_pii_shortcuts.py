"""The PII scan's shortcuts give the answers of the definitions they stand in for."""

from __future__ import annotations

import ipaddress
import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.router.policy.pii import (
    _cards_in_groups,
    _looks_random,
    find_pii,
    is_ipv4,
    is_payment_card,
    luhn_valid,
)
from modelplane.router.policy.types import PiiType

digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=40)
# Token-like values: few distinct characters (placeholders, repeated runs) to many (keys).
token_values = st.text(alphabet=st.sampled_from("aaaaAB01xyzXYZ789_-"), max_size=60) | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60
)

# Dotted strings whose parts are octets, out-of-range numbers, leading zeros or empty.
octet_parts = st.sampled_from(["0", "9", "10", "99", "127", "199", "249", "255", "256", "999"]) | (
    st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "007", "0255", ""])
)
dotted_values = st.lists(octet_parts, min_size=3, max_size=5).map(".".join)
# Valid card numbers of every grouping's length (13-19 digits), printed in some grouping.
GROUPABLE_CARDS = ["4111111111113", "4111111111111004", "378282246310005", "4111111111111111003"]
GROUPINGS_TRIED = [(4, 4, 4, 1), (4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 5)]


def split_into(digits: str, lengths: tuple[int, ...]) -> list[str]:
    groups, position = [], 0
    for length in lengths:
        groups.append(digits[position : position + length])
        position += length
    return [group for group in groups if group] + ([digits[position:]] if digits[position:] else [])


@st.composite
def card_clusters(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Digit groups and their separators: a card in some grouping among other groups."""
    other = st.text(alphabet="0123456789", min_size=1, max_size=6)
    card = split_into(
        draw(st.sampled_from(GROUPABLE_CARDS)), draw(st.sampled_from(GROUPINGS_TRIED))
    )
    groups = draw(st.lists(other, max_size=2)) + card + draw(st.lists(other, max_size=2))
    separator = draw(st.sampled_from([" ", "-"]))
    separators = [
        draw(st.sampled_from([separator] * 6 + [" ", "-", ".", ") "])) for _ in groups[1:]
    ]
    return groups, separators


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


def textbook_host_ipv4(value: str) -> bool:
    parts = value.split(".")
    if len(parts) != 4 or any(not part.isascii() or not part.isdigit() for part in parts):
        return False
    if any(len(part) > 1 and part.startswith("0") for part in parts):
        return False  # ipaddress refuses leading zeros
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return not (address.is_loopback or value.startswith(("0.", "255.")))


# The card groupings, read by extending a run of groups one group at a time.
CARD_GROUPINGS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2)}
CARD_GROUPINGS |= {(4, 4, 4, 3)}


def textbook_cards(groups: list[str], separators: list[str]) -> list[str]:
    cards = []
    for first, group in enumerate(groups):
        if 13 <= len(group) <= 19 and is_payment_card(group):
            cards.append(group)
            continue
        if len(group) != 4 or first >= len(separators) or separators[first] not in (" ", "-"):
            continue
        separator = separators[first]
        for last in range(first + 1, len(groups)):
            if separators[last - 1] != separator:
                break
            lengths = tuple(len(group) for group in groups[first : last + 1])
            digits = "".join(groups[first : last + 1])
            if lengths in CARD_GROUPINGS and is_payment_card(digits):
                cards.append(separator.join(groups[first : last + 1]))
    return cards


@settings(max_examples=1000, deadline=None)
@given(dotted_values)
def test_dotted_quad_check_is_what_ipaddress_accepts_for_a_host(value: str) -> None:
    assert is_ipv4(value) is textbook_host_ipv4(value)


@settings(max_examples=1000, deadline=None)
@given(card_clusters())
def test_card_groupings_are_read_as_the_textbook_run_of_groups(
    cluster: tuple[list[str], list[str]],
) -> None:
    groups, separators = cluster
    assert list(_cards_in_groups(groups, separators)) == textbook_cards(groups, separators)


def test_an_ssn_is_found_only_in_its_three_two_four_layout() -> None:
    assert [m.value for m in find_pii("ssn 536-22-1234 ok", {PiiType.US_SSN})] == ["536-22-1234"]
    assert find_pii("ref 5362-21-234 and 53-622-1234", {PiiType.US_SSN}) == []
