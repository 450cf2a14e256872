"""The native PII scanner gives pii.py's answers, hit for hit, on generated and mutated texts.

pii.py is the reference (and the fallback where no C compiler is available); the router scans
with the native build. Texts come from every string the detector tests use, their mutations,
and Hypothesis compositions of PII, look-alikes and awkward characters.
"""

from __future__ import annotations

import ast
import random
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.router.policy.pii import (
    NATIVE_SCANNER_AVAILABLE,
    native_detect_pii,
    native_find_pii,
    python_detect_pii,
    python_find_pii,
)
from modelplane.router.policy.types import PiiType

pytestmark = pytest.mark.skipif(
    not NATIVE_SCANNER_AVAILABLE, reason="the native PII scanner is not built"
)

_TEST_FILES = ("test_pii.py", "test_pii_shortcuts.py", "test_features.py")


def _strings_of_the_detector_tests() -> list[str]:
    """Every string literal the detector tests hold: positives, look-alikes, edge cases."""
    found: set[str] = set()
    for name in _TEST_FILES:
        tree = ast.parse((Path(__file__).parent / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
                found.add(node.value)
    return sorted(found)


EXAMPLES = _strings_of_the_detector_tests()

PII_FRAGMENTS = (
    "jane.doe@example.org",
    "a.b+c@sub.example.co.uk",
    "icon@2x.png",
    "+44 20 7946 0958",
    "+1 415 555 2671",
    "(415) 555-2671",
    "415-555-2671",
    "1 415 555 2671",
    "020 7946 0958",
    "01 23 45 67 89",
    "(030) 1234567",
    "0049 30 1234567",
    "+44 (0)20 7946 0958",
    "+49 30/1234",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "378282246310005",
    "3782 822463 10005",
    "6011111111111117",
    "4111111111111",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "536-22-1234",
    "536 22 1234",
    "SSN 536221234",
    "social security 536221234",
    "192.168.10.42",
    "10.0.0.1",
    "127.0.0.1",
    "2001:db8::1",
    "fe80::1ff:fe23:4567:890a",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "::ffff:192.168.1.1",
    "sk-proj-Ab3dEf7hIj9kLm2nOp4qRs6tUv8wXyZ1",
    "sk-ant-api03-Ab3dEf7hIj9kLm2nOp4qRs6tUv8wXyZ1",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "aB3" * 12,
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA7Zq3vR5yX8pL2mN4kJ9hG6fD1sA0qW3eR5tY7uI9oP1aS2dF4gH6jK8lZ0xC\n"
    "-----END RSA PRIVATE KEY-----",
    'api_key = "Zx8vQ2mN7pL4kJ9hG6fD"',
    "OPENAI_API_KEY=Zx8vQ2mN7pL4kJ9hG6fD1sA0",
    "password: hunter2hunter2",
    "secret => 'Ab3dEf7hIj9kLm2nOp'",
)
LOOKALIKES = (
    "2024-03-15",
    "15.03.2024",
    "03/15/2024",
    "10:42:17",
    "2024-03-15T10:42:17Z",
    "v1.2.3.4",
    "version 1.2.3.4",
    "1.2.3.4.5",
    "order 0123-456-789",
    "invoice #4411-2093-7781",
    "order no. 0123 456 789",
    "$1,299.00",
    "1700000000",
    "123e4567-e89b-12d3-a456-426614174000",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "4111 1111 1111 1112",
    "999.10.20.30",
    "std::vector<int>",
    "dead::beef",
    "3+4 5678 9012",
    "YOUR_API_KEY",
    "token = <token>",
    "x = 1024 * 768",
)
# Characters the detectors treat specially: separators, word characters, non-ASCII letters and
# digits (Python's classes, not ASCII's), whitespace of several kinds, the Kelvin sign (which
# lowercases to "k").
AWKWARD = "0123456789 .-/()+:@_=#\"'`\n\t\u00a0\u2003é\u0660\uff11K\u212aİ\ud800xX"


def assert_same_answers(text: str) -> None:
    assert native_find_pii(text) == python_find_pii(text), text
    assert native_detect_pii(text) == python_detect_pii(text), text


def test_native_scanner_is_built() -> None:
    # CI builds it; a silent fallback to pure Python would only show as a slower router.
    assert NATIVE_SCANNER_AVAILABLE


@pytest.mark.parametrize("text", EXAMPLES)
def test_native_scanner_agrees_on_every_detector_test_string(text: str) -> None:
    assert_same_answers(text)


def _mutations(text: str, rng: random.Random, count: int) -> list[str]:
    mutated = []
    for _ in range(count):
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(chars) + 1)
            action = rng.random()
            if action < 0.4 and chars:
                del chars[min(position, len(chars) - 1)]
            elif action < 0.7:
                chars.insert(position, rng.choice(AWKWARD))
            elif chars:
                chars[min(position, len(chars) - 1)] = rng.choice(AWKWARD)
        mutated.append("".join(chars))
    return mutated


def test_native_scanner_agrees_on_mutated_pii_and_lookalikes() -> None:
    rng = random.Random(20261123)
    sources = [*EXAMPLES, *PII_FRAGMENTS, *LOOKALIKES]
    texts = [mutation for text in sources for mutation in _mutations(text, rng, 25)]
    disagreements = [
        text
        for text in texts
        if native_find_pii(text) != python_find_pii(text)
        or native_detect_pii(text) != python_detect_pii(text)
    ]
    assert disagreements == [], f"{len(disagreements)} of {len(texts)}: {disagreements[:5]!r}"


fragments = st.sampled_from(PII_FRAGMENTS + LOOKALIKES) | st.text(alphabet=AWKWARD, max_size=12)
joiners = st.sampled_from(["", " ", "\n", ", ", ":", "=", "(", ")", "-", "."])


@settings(max_examples=600, deadline=None)
@given(parts=st.lists(st.tuples(fragments, joiners), max_size=10))
def test_native_scanner_agrees_on_composed_texts(parts: list[tuple[str, str]]) -> None:
    assert_same_answers("".join(fragment + joiner for fragment, joiner in parts))


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.tuples(fragments, joiners), max_size=8),
    types=st.frozensets(st.sampled_from(list(PiiType))),
)
def test_native_scanner_agrees_when_limited_to_some_types(
    parts: list[tuple[str, str]], types: frozenset[PiiType]
) -> None:
    text = "".join(fragment + joiner for fragment, joiner in parts)
    assert native_find_pii(text, types) == python_find_pii(text, types), text
    assert native_detect_pii(text, types) == python_detect_pii(text, types), text


# Seeded generators that pile up near-misses where the detectors' rules are densest: digit groups
# and separators around context words (numeric), and PEM blocks and e-mail addresses with
# Unicode whitespace and broken parts (text). Bounded: a few thousand texts, about a second.
_CONTEXT_WORDS = (
    "order", "Order no.", "invoice #", "ref:", "SSN", "ssn:", "social security", "v", "version",
    "release", "build", "no", "id", "#", "call", "IBAN", "\u212aey", "r\u212aef", "\u0130d",
    "part no", "account number", '"ssn"',
)  # fmt: skip
_DIGIT_GROUPS = (
    "DE89", "3704", "0044", "0532", "0130", "00", "GB82", "WEST", "1234", "4111", "1111",
    "378282246310005", "6011111111111117", "536", "22", "536221234", "415", "555", "2671", "020",
    "7946", "0958", "01", "23", "45", "030", "1234567", "0049", "+44", "+1", "(0)", "192", "168",
    "10", "42", "127", "0", "255", "999", "2024", "03", "15", "\u0660", "\uff11", "\u00e9",
    "\U0001f600", "\U0001d7d9", "\u00b2", "a", "Z", "AB",
)  # fmt: skip
_SEPARATORS = (" ", ".", "-", "/", "(", ")", ") ", " (", "  ", "+", "#", ":", "\u00a0", "_", "K")
_BLANKS = (" ", "\n", "\t", "\r", "\u2003", "\u00a0", "\x1c", "\u3000", "\u2028", "\x85")


def _numeric_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 14)):
        roll = rng.random()
        if roll < 0.15:
            parts.append(rng.choice(_CONTEXT_WORDS) + rng.choice([" ", ": ", "#", ""]))
        elif roll < 0.75:
            parts.append(rng.choice(_DIGIT_GROUPS))
        elif roll < 0.85:
            parts.append(rng.choice(PII_FRAGMENTS[3:30]))
        else:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20))))
        parts.append(rng.choice(_SEPARATORS) if rng.random() < 0.8 else "")
    return "".join(parts)


def _token(
    rng: random.Random, length: int, alphabet: str = string.ascii_letters + "0123456789"
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _pem_or_email_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        local = rng.choice(["jane.doe", "a", ".a", "a.", "x<>a", "é.b", "a+b", _token(rng, 70)])
        labels = [rng.choice([_token(rng, 5), _token(rng, 63), "a-b", "-a", "2x", "1.5x"])]
        tail = rng.choice(["", " ", "-", "_", "@", ".", "é", "1", "\u0660"])
        return f"{local}@{'.'.join(labels)}.{rng.choice(['com', 'c', 'png', 'uk'])}{tail}"
    blank = "".join(rng.choice(_BLANKS) for _ in range(rng.randint(0, 3)))
    body = "".join(
        _token(rng, rng.randint(0, 64), string.ascii_letters + "0123456789+/=")
        + rng.choice(_BLANKS)
        for _ in range(rng.randint(0, 4))
    )
    kind = rng.choice(["RSA ", "ENCRYPTED ", "", "OPENSSH "])
    header = rng.choice(["", "Proc-Type: 4,ENCRYPTED\n", "DEK-Info: AES\n"])
    return f"-----BEGIN {kind}PRIVATE KEY-----{blank}\n{header}{body}-----END PRIVATE KEY-----"


@pytest.mark.parametrize(("generate", "count"), [(_numeric_text, 4000), (_pem_or_email_text, 2000)])
def test_native_scanner_agrees_on_generated_near_misses(
    generate: Callable[[random.Random], str], count: int
) -> None:
    rng = random.Random(f"{generate.__name__}-20261123")
    texts = [generate(rng) for _ in range(count)]
    found = [python_find_pii(text) for text in texts]
    disagreements = [
        text
        for text, hits in zip(texts, found, strict=True)
        if native_find_pii(text) != hits or native_detect_pii(text) != python_detect_pii(text)
    ]
    assert disagreements == [], f"{len(disagreements)} of {count}: {disagreements[:5]!r}"
    assert sum(map(len, found)) > count // 10, "the generator stopped producing hits"
