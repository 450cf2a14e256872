"""Each PII detector finds real instances and rejects look-alikes of the same shape."""

from __future__ import annotations

import base64
import json

import pytest
from modelplane.router.policy.pii import (
    NATIVE_SCANNER_AVAILABLE,
    PiiMatch,
    detect_pii,
    find_pii,
    iban_checksum_valid,
    is_payment_card,
    is_us_ssn,
    luhn_valid,
    native_detect_pii,
    native_find_pii,
    python_detect_pii,
    python_find_pii,
)
from modelplane.router.policy.types import PiiType


def values(text: str, pii_type: PiiType) -> list[str]:
    """The hits of one type, from pii.py and, when it is built, the native scanner (which must
    agree: the router scans with it)."""
    found = [match.value for match in python_find_pii(text, frozenset({pii_type}))]
    if NATIVE_SCANNER_AVAILABLE:
        assert [match.value for match in native_find_pii(text, frozenset({pii_type}))] == found
    return found


def types_present(text: str) -> frozenset[PiiType]:
    present = python_detect_pii(text)
    if NATIVE_SCANNER_AVAILABLE:
        assert native_detect_pii(text) == present
    return present


def assert_found(text: str, pii_type: PiiType) -> None:
    assert values(text, pii_type), f"{pii_type.value} not found in {text!r}"
    assert pii_type in types_present(text)


def assert_not_found(text: str, pii_type: PiiType) -> None:
    assert values(text, pii_type) == [], f"{pii_type.value} wrongly found in {text!r}"
    assert pii_type not in types_present(text)


# --------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize(
    "text",
    [
        "contact jane.doe@example.com for details",
        "mail: j.o'neil+billing@mail.example.co.uk.",
        "<ops-team@corp-internal.example.org>",
        "bob@example.com",
    ],
)
def test_email_addresses_are_found(text: str) -> None:
    assert_found(text, PiiType.EMAIL)


@pytest.mark.parametrize(
    "text",
    [
        "retina asset icon@2x.png",
        "npm install @types/node",
        "pin the package pkg@1.2.3",
        "ssh user@localhost",
        "decorators like @property and @dataclass",
        "double dot john..doe@example.com",
        "domain label -bad@-example.com",
        "the at sign @ alone",
    ],
)
def test_email_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.EMAIL)


def test_email_match_is_the_address_itself() -> None:
    assert values("write to <jane.doe@example.com>.", PiiType.EMAIL) == ["jane.doe@example.com"]


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    "text",
    [
        "call +1 (415) 555-2671 today",
        "E.164: +14155552671",
        "tel +44 20 7946 0958",
        "tel +44 (0)20 7946 0958",
        "international 0044 20 7946 0958",
        "Paris +33 1 23 45 67 89",
        "Berlin +49 30 12345678",
        "US (415) 555-2671",
        "US 415-555-2671",
        "US 415.555.2671",
        "US 1 415 555 2671",
        "UK 020 7946 0958",
        "FR 01 23 45 67 89",
        "DE (030) 1234567",
        "mobile 07700 900123",
    ],
)
def test_phone_numbers_are_found(text: str) -> None:
    assert_found(text, PiiType.PHONE)


@pytest.mark.parametrize(
    "text",
    [
        "released on 2024-01-15",
        "timestamp 2024-01-15 10:30:45",
        "due 15.01.2024",
        "due 01/15/2024",
        "version 1.2.3",
        "order 0123-456-789",
        "invoice #020 7946 0958",
        "unix time 1700000000",
        "a bare run 4155552671 without separators",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "area code cannot start with 1: 155-555-2671",
        "exchange cannot start with 0: 415-055-2671",
        "unknown country code +999 1234 5678",
        "too short +44 20 79",
        "arithmetic 3+4 5678 9012",
        "the SSN layout 078-05-1120",
        "ratio 1/2/3",
    ],
)
def test_phone_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.PHONE)


# --------------------------------------------------------------------------- payment cards


@pytest.mark.parametrize(
    "text",
    [
        "visa 4111 1111 1111 1111",
        "visa 4111-1111-1111-1111",
        "visa 4111111111111111",
        "mastercard 5555 5555 5555 4444",
        "mastercard 2-series 2223 0031 2200 3222",
        "amex 3782 822463 10005",
        "amex 378282246310005",
        "discover 6011 1111 1111 1117",
        "jcb 3530 1113 3330 0000",
        "diners 3056 930902 5904",
        "visa 19 digits 4111 1111 1111 1111 003",
    ],
)
def test_payment_cards_are_found(text: str) -> None:
    assert_found(text, PiiType.PAYMENT_CARD)


@pytest.mark.parametrize(
    "text",
    [
        "luhn fails 4111 1111 1111 1112",
        "luhn fails 4111111111111112",
        "all zeros pass luhn but no scheme 0000 0000 0000 0000",
        "no scheme starts with 1: 1234 5678 9012 3452",
        "amex length is 15, not 16: 3782 8224 6310 0052",
        "odd grouping 41111 11111 111111",
        "inside a hash deadbeef4111111111111111cafe",
        "too short 4111 1111 111",
    ],
)
def test_payment_card_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.PAYMENT_CARD)


def test_luhn_check_matches_known_values() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert is_payment_card("4111111111111111")
    assert not is_payment_card("4111111111111112")


# --------------------------------------------------------------------------- IBAN


@pytest.mark.parametrize(
    "text",
    [
        "pay to DE89 3704 0044 0532 0130 00 today",
        "DE89370400440532013000",
        "UK account GB82 WEST 1234 5698 7654 32",
        "Dutch NL91 ABNA 0417 1643 00",
        "French FR14 2004 1010 0505 0001 3M02 606",
        "Norway has the shortest: NO93 8601 1117 947",
    ],
)
def test_ibans_are_found(text: str) -> None:
    assert_found(text, PiiType.IBAN)


@pytest.mark.parametrize(
    "text",
    [
        "bad checksum DE89 3704 0044 0532 0130 01",
        "bad check digits DE88 3704 0044 0532 0130 00",
        "wrong length for DE: DE89 3704 0044 0532 0130 0",
        "unknown country ZZ89 3704 0044 0532 0130 00",
        "part of a word XDE89370400440532013000",
        "a model name GPT4 1106 preview",
    ],
)
def test_iban_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.IBAN)


def test_iban_checksum_is_mod_97() -> None:
    assert iban_checksum_valid("GB82WEST12345698765432")
    assert not iban_checksum_valid("GB83WEST12345698765432")


# --------------------------------------------------------------------------- US SSN


@pytest.mark.parametrize(
    "text",
    ["ssn 536-22-1234", "SSN: 536 22 1234", "social security number 536221234"],
)
def test_us_ssns_are_found(text: str) -> None:
    assert_found(text, PiiType.US_SSN)


@pytest.mark.parametrize(
    "text",
    [
        "area 000: 000-12-3456",
        "area 666: 666-12-3456",
        "area 9xx: 912-12-3456",
        "group 00: 536-00-1234",
        "serial 0000: 536-22-0000",
        "published sample 078-05-1120",
        "mixed separators 536-22 1234",
        "a bare 9-digit run without context 536221234",
        "part of a longer number 1-536-22-1234",
    ],
)
def test_us_ssn_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.US_SSN)


def test_us_ssn_rules() -> None:
    assert is_us_ssn("536221234")
    assert not is_us_ssn("000221234")
    assert not is_us_ssn("666221234")
    assert not is_us_ssn("936221234")
    assert not is_us_ssn("536001234")
    assert not is_us_ssn("536220000")


# --------------------------------------------------------------------------- IP addresses


@pytest.mark.parametrize(
    "text",
    [
        "server at 192.168.1.20 is down",
        "connect to 10.1.2.3:8080",
        "http://203.0.113.7/path",
        "end of sentence 198.51.100.23.",
        "v6 2001:db8:85a3::8a2e:370:7334",
        "v6 full 2001:0db8:0000:0000:0000:ff00:0042:8329",
        "link local fe80::1%eth0",
        "mapped ::ffff:192.0.2.128",
    ],
)
def test_ip_addresses_are_found(text: str) -> None:
    assert_found(text, PiiType.IP_ADDRESS)


@pytest.mark.parametrize(
    "text",
    [
        "out of range 999.1.1.1",
        "out of range 256.10.10.10",
        "version string 1.2.3.4.5",
        "prefixed version v1.2.3.4",
        "version 1.2.3.4",
        "loopback 127.0.0.1",
        "bind 0.0.0.0",
        "netmask 255.255.255.0",
        "leading zeros 01.02.03.04",
        "a time 10:30:45",
        "C++ std::vector<int>",
        "hex words dead::beef",
        "a MAC 00:1A:2B:3C:4D:5E",
        "v6 loopback ::1",
        "a date 15.01.2024",
        "pi 3.14159",
    ],
)
def test_ip_address_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.IP_ADDRESS)


# --------------------------------------------------------------------------- credentials


def _jwt() -> str:
    def segment(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment({'sub': '1234567890'})}." + (
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )


PEM_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAv6bx8mZ3Q1k2lH9sT7aWq0pXy4NcRe5uVb3GdJf8LmKoPiHs\n"
    "Zt1Yw2Xv3Uu4Tt5Ss6Rr7Qq8Pp9Oo0Nn1Mm2Ll3Kk4Jj5Ii6Hh7Gg8Ff9Ee0Dd1Cc2\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "text",
    [
        "OPENAI_API_KEY=sk-Ab3dEf7hIj9kLm2nOp4qRs6tUv8wXyZ1aB2cD3eF4gH5iJ6k",
        "key sk-proj-Ab3dEf7hIj9kLm2nOp4qRs6tUv8wXyZ1_aB2cD3eF4gH5",
        "anthropic sk-ant-api03-Ab3dEf7hIj9kLm2nOp4qRs6tUv8wXyZ1aB2cD3",
        "aws AKIAIOSFODNN7EXAMPLE",
        "sts ASIAY34FZKBOKMUTVV7A",
        "github 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",
        "fine-grained github_pat_11U8JZpDE0iGXlD6gNCFba_EPFjbD0kH8Oool8DklZDOCj2ISaJiHkTj0rLGlkoMXG"
        "jtEkDnNfribxUdl7",
        "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "Authorization: Bearer 8fJ2kLq9ZxP4mN7rT1vW3yB6cD0eH5gA",
        f"token {_jwt()}",
        PEM_KEY,
        "api_key = 'q8Zr2LmX9vT4pK7wN3sB'",
        'client_secret: "Zq4Wm8Rt2Yp6Ks0Lx3Nv7Bc1"',
        "DB_PASSWORD=Tr0ub4dor&3xPl0s1ve",
    ],
)
def test_credentials_are_found(text: str) -> None:
    assert_found(text, PiiType.CREDENTIAL)


@pytest.mark.parametrize(
    "text",
    [
        "pip install sk-learn-is-not-a-key",
        "the Bearer <token> header",
        "Authorization: Bearer YOUR_TOKEN_HERE",
        "api_key = 'your-api-key-here'",
        "OPENAI_API_KEY=os.environ['OPENAI_API_KEY']",
        "password: changeme",
        "the key insight is that tokens are cheap",
        "AWS key ids look like AKIA followed by 16 characters",
        "not base32: AKIAIOSFODNN8EXAMPL1",
        "github ghp_ followed by too little: ghp_abc123",
        "fine-grained tokens start github_pat_11U8JZpDE0iGXlD6gNCFba and are longer",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAv6bx8mZ3Q1k2\n",
        "-----BEGIN RSA PRIVATE KEY----- (redacted)",
        "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    ],
)
def test_credential_look_alikes_are_rejected(text: str) -> None:
    assert_not_found(text, PiiType.CREDENTIAL)


# --------------------------------------------------------------------------- detect_pii


def test_detect_pii_reports_every_type_present() -> None:
    text = (
        "Jane (jane@example.com, +44 20 7946 0958) paid with 4111 1111 1111 1111 from "
        "DE89 3704 0044 0532 0130 00; SSN 536-22-1234; host 192.168.1.20; "
        "key AKIAIOSFODNN7EXAMPLE"
    )
    assert detect_pii(text) == frozenset(PiiType)


def test_detect_pii_limits_itself_to_the_types_asked_for() -> None:
    text = "jane@example.com at 192.168.1.20"
    assert detect_pii(text, frozenset({PiiType.IP_ADDRESS})) == {PiiType.IP_ADDRESS}
    assert detect_pii(text, frozenset()) == frozenset()


def test_detect_pii_finds_nothing_in_ordinary_technical_text() -> None:
    text = (
        "Release v2.3.1 (2024-03-15 10:42:17Z) fixes #4411; see commit 9f86d081884c7d65 and "
        "build 1700000000. Install with pip install numpy==1.26.4 and run on port 8080. "
        "Tokens per second rose 42% to 1,299.00; std::vector<int> x(1024 * 768);"
        "uuid 123e4567-e89b-12d3-a456-426614174000 at 10:30:45."
    )
    assert detect_pii(text) == frozenset()


def test_detect_pii_survives_non_ascii_and_lone_surrogates() -> None:
    text = "Grüße an jürgen@example.de — Telefon +49 30 12345678 \ud800 ünd 東京"
    assert detect_pii(text) == {PiiType.EMAIL, PiiType.PHONE}


@pytest.mark.parametrize(
    "text",
    [
        "1 " * 100_000,
        "1." * 100_000,
        "key" * 70_000,
        "api_key=" * 25_000,
        "eyJ" * 70_000,
        "eyJa." * 40_000,
        "sk-" * 70_000,
        "@a." * 70_000,
        "::" * 100_000,
        "a:" * 100_000,
        "DE89 " * 40_000,
        "+1 " * 70_000,
        "0" * 200_000,
        "-----BEGIN PRIVATE KEY-----\n" * 7_000,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_pathological_inputs_do_not_hang_the_scan(text: str) -> None:
    # Quadratic behaviour on 200 KB would run into the suite's timeout, not finish here.
    find_pii(text)
    detect_pii(text)


def test_iban_digits_are_not_reported_as_another_number() -> None:
    text = "pay DE89 3704 0044 0532 0130 00 or call 020 7946 0958"
    assert find_pii(text) == [
        PiiMatch(PiiType.IBAN, "DE89 3704 0044 0532 0130 00"),
        PiiMatch(PiiType.PHONE, "020 7946 0958"),
    ]
