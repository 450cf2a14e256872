"""Local PII and secret detectors: no network, no model, every hit validated beyond its shape.

The router scans every prompt before deciding where it may go, so the scan is on the hot path.
It runs on the native scanner (`piiscan/*.c`, the extension module `_piiscan`), a port of this
module's detectors hit for hit, 11-23x faster (`python -m bench.pii_scan`); this module is its
reference, checked against it by tests/unit/router/policy/test_pii_native.py, and the fallback
where the extension was not built. Written for throughput over prompts of 1-100 KB:

* numbers (phone numbers, payment cards, IBANs, SSNs, IPv4) are found on a one-byte-per-character
  class map of the text (digits -> "0", capitals -> "A", separators kept), where a runs-of-digits
  pattern with a literal first byte and a literal "AA00" search (IBAN country + check digits) run
  at C speed. Cheap rejections there (too few digits, unseparated counters, ISO dates and
  timestamps) keep most numbers in prompts from reaching Python; each remaining cluster of digit
  groups is validated by every numeric detector still wanted.
* e-mail is looked for only around each `@`, IPv6 only around `::` or `:hex:` (and only where
  enough colons are near), credentials only where their literal prefix occurs (`sk-`, `IA`,
  `gh`, `xox`, `eyJ`, `earer`, `PRIVATE KEY`) or after an assignment keyword (`key`, `secret`,
  `token`, `passw`), and not at all without a run of 16 token characters (which every credential
  but a PEM block holds).
* every pattern is bounded or applied once per position, so hostile input scans in linear time.
* `detect_pii` stops looking for a type as soon as one validated hit of it is found.

Validation, per type:

* e-mail: local part of RFC 5322 "atom" characters without leading, trailing or doubled dots;
  a domain of LDH labels with an alphabetic top-level label; image-scale names such as
  `icon@2x.png` are not addresses.
* phone: `+` or `00` international numbers with a real ITU country calling code and an E.164
  length (8-15 digits; NANP numbers exactly 10 national digits with valid area code and exchange);
  national NANP numbers written `(415) 555-2671` / `415-555-2671` / `1 415 555 2671`; trunk-prefix
  national numbers (`020 7946 0958`, `01 23 45 67 89`, `(030) 1234567`) of 9-12 digits with one
  consistent separator. Unseparated digit runs (order numbers, timestamps), dates, and numbers after
  words such as "order", "invoice" or "#" are not phone numbers.
* payment card: 13-19 digits, unbroken or grouped like a card (4-4-4-4[-3], 4-6-5, 4-6-4), whose
  prefix belongs to a card scheme with that length, and which passes the Luhn check.
* IBAN: a known country code, that country's exact length, and the ISO 13616 mod-97 check.
* US SSN: `AAA-GG-SSSS` (dashes or spaces; unseparated only right after "SSN"/"social security"),
  area not 000, 666 or 9xx, group not 00, serial not 0000, and not one of the published sample
  numbers.
* IP address: dotted quads and IPv6 addresses that `ipaddress` accepts (octets 0-255, no leading
  zeros); no part of a longer dotted run (`1.2.3.4.5`), no version strings (`v1.2.3.4`, "version
  1.2.3.4"); loopback, unspecified and netmask values identify nobody and are skipped.
* credential: provider keys by prefix with their exact alphabet and length (OpenAI/Anthropic
  `sk-`, AWS `AKIA`/`ASIA` in base32, GitHub `ghp_`..., Slack `xox?-`), `Bearer` tokens, JWTs whose
  header decodes to JSON with an `alg`, PEM private key blocks with a base64 body, and
  `api_key = ...` style assignments of a random-looking value. Random-looking means mixed
  character classes and a Shannon entropy of at least 3 bits per character, so placeholders
  (`YOUR_API_KEY`, `<token>`) pass.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass

from modelplane.router.policy.types import PiiType

ALL_PII_TYPES: frozenset[PiiType] = frozenset(PiiType)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One validated hit: its type and the text that matched."""

    type: PiiType
    value: str


# --------------------------------------------------------------------------- shared helpers

_CONTEXT_CHARS = 24
_CONTEXT_PUNCTUATION = ".:#-=()[]'\""


def _words_before(text: str, start: int, count: int) -> list[str]:
    """The last `count` words before `start`, lowercased and without punctuation."""
    window = text[max(0, start - _CONTEXT_CHARS) : start].lower().split()[-count:]
    return [word.strip(_CONTEXT_PUNCTUATION) for word in window]


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


# Outside the text there is "nothing", which behaves like a space: a boundary, no separator.
def _char_before(text: str, index: int) -> str:
    return text[index - 1] if index > 0 else " "


def _char_at(text: str, index: int) -> str:
    return text[index] if index < len(text) else " "


# c * log2(c) for the character counts of values up to this long, computed once: a table lookup
# per distinct character instead of a Python-level multiply and log2, with identical floats.
_TABULATED_LENGTH = 256
_COUNT_WEIGHTS = tuple(
    count * math.log2(count) if count else 0.0 for count in range(_TABULATED_LENGTH + 1)
)


def _shannon_bits_per_char(value: str) -> float:
    # H = log2(n) - sum(c * log2(c)) / n over the character counts c.
    length = len(value)
    counts = Counter(value).values()
    if length <= _TABULATED_LENGTH:
        weighted = sum(map(_COUNT_WEIGHTS.__getitem__, counts))
    else:
        weighted = sum(count * math.log2(count) for count in counts)
    return math.log2(length) - weighted / length


_MIN_SECRET_BITS_PER_CHAR = 3.0


def _least_bits_per_char(length: int, distinct: int) -> float:
    """The lowest entropy any string of `length` characters, `distinct` of them different, has:
    one character repeated, every other once."""
    repeated = length - distinct + 1
    return math.log2(length) - repeated * math.log2(repeated) / length


def _looks_random(value: str, *, min_length: int = 16) -> bool:
    """A secret, not a word or placeholder: long, mixed character classes, high entropy."""
    length = len(value)
    if length < min_length:
        return False
    classes = any(map(str.isdigit, value)) + (value.upper() != value) + (value.lower() != value)
    if classes < 2:
        return False
    # Most keys have so many different characters that no arrangement of them could fall
    # below the threshold; counting each character's occurrences is then not needed.
    if _least_bits_per_char(length, len(set(value))) >= _MIN_SECRET_BITS_PER_CHAR:
        return True
    return _shannon_bits_per_char(value) >= _MIN_SECRET_BITS_PER_CHAR


# --------------------------------------------------------------------------- e-mail

_EMAIL_ATOM = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-"
_EMAIL_LOCAL_MAX = 64
# Everything up to the last character that cannot be in a local part: the local part is what
# follows it. (Searching for "atom characters up to the @" instead tries every start position
# in the 64 characters before each @, which costs more than the rest of the e-mail scan.)
_BEFORE_EMAIL_LOCAL = re.compile(rf"(?s:.*)[^{_EMAIL_ATOM}]")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
_EMAIL_MAX_DOMAIN = 253
_IMAGE_SCALE_LABEL = re.compile(r"[0-9]+(?:\.[0-9]+)?x\.", re.IGNORECASE)


def _scan_email(text: str) -> Iterator[str]:
    at = text.find("@")
    while at != -1:
        window_start = max(0, at - _EMAIL_LOCAL_MAX)
        before_local = _BEFORE_EMAIL_LOCAL.match(text, window_start, at)
        local_start = before_local.end() if before_local is not None else window_start
        domain_match = _EMAIL_DOMAIN.match(text, at + 1, at + 1 + _EMAIL_MAX_DOMAIN)
        if local_start < at and domain_match:
            local = text[local_start:at]
            # The local part found may have started mid-token ("x<>a@b.c"); trim leading dots.
            local = local.lstrip(".")
            domain = domain_match.group()
            after = _char_at(text, domain_match.end())
            if (
                local
                and not local.endswith(".")
                and ".." not in local
                and len(domain) <= 253
                and not (after.isalnum() or after in "-_@")
                and not _IMAGE_SCALE_LABEL.match(domain)
            ):
                yield f"{local}@{domain}"
        at = text.find("@", at + 1)


# --------------------------------------------------------------------------- digit clusters

# Numeric candidates are found on a "class map" of the text: one byte per character, digits
# mapped to "0", capital letters to "A", the separators kept, everything else "x". Searching that
# for a literal "0" or "AA00" runs at C speed instead of testing a character class at every
# position. Encoding as ASCII with "?" for anything else keeps one byte per character, so
# positions in the map are positions in the text.
_CLASS_MAP = bytes(
    ord("0") if chr(code).isdigit() and code < 128
    else ord("A") if "A" <= chr(code) <= "Z"
    else code if chr(code) in " .-/()"
    else ord("x")
    for code in range(256)
)  # fmt: skip
_MAPPED_CANDIDATE = re.compile(rb"0[0 .\-/()]{6,}")  # the shortest numeric PII: 1.1.1.1
_MAPPED_IBAN_START = b"AA00"
_MAPPED_ISO_DATE = re.compile(rb"0000-00-00(?: 00)?")
# Digit groups joined by single separators; "(" and ")" appear in phone area codes and "(0)".
_CLUSTER = re.compile(r"[0-9]+(?:(?:[ .\-/]|\) ?| ?\()[0-9]+)*")
_SPLIT_GROUPS = re.compile(r"([^0-9]+)")  # split() alternates digit groups and separators
_MIN_NUMERIC_CLUSTER = 7

# Numbers right after these words are references, not phone numbers ("order no. 0123 456 789").
_ORDER_NUMBER_WORDS = frozenset(
    {"order", "invoice", "ref", "reference", "tracking", "ticket", "serial", "isbn", "sku"}
    | {"part", "case", "account"}
)
_NUMBER_WORDS = frozenset({"no", "nr", "number", "id", "#", ""})
_VERSION_WORDS = frozenset({"v", "version", "release", "build"})


def _after_order_word(text: str, start: int) -> bool:
    words = _words_before(text, start, 2)
    if not words:
        return False
    if words[-1] in _NUMBER_WORDS and len(words) == 2:
        return words[0] in _ORDER_NUMBER_WORDS
    return words[-1] in _ORDER_NUMBER_WORDS


def _after_version_word(text: str, start: int) -> bool:
    # Every version word but "release" and "build" holds a "v"; most windows hold none of them,
    # which three substring tests tell before any splitting into words.
    window = text[max(0, start - _CONTEXT_CHARS) : start].lower()
    if "v" not in window and "release" not in window and "build" not in window:
        return False
    words = _words_before(text, start, 1)
    return bool(words) and words[0] in _VERSION_WORDS


# An enum member's `name` is a Python-level property; this lookup is one dict probe.
_WANTED_ATTRIBUTE = {kind: kind.name.lower() for kind in PiiType}


class _Wanted:
    """Which types are still looked for, as plain attributes.

    Set membership of enum members costs a Python-level `__hash__` call, which adds up over
    thousands of digit clusters; attribute reads do not.
    """

    __slots__ = ("credential", "email", "iban", "ip_address", "payment_card", "phone", "us_ssn")

    def __init__(self, types: Set[PiiType]) -> None:
        if types is ALL_PII_TYPES:  # every production scan: no membership tests at all
            self.email = self.phone = self.payment_card = self.iban = True
            self.us_ssn = self.ip_address = self.credential = True
            return
        self.email = PiiType.EMAIL in types
        self.phone = PiiType.PHONE in types
        self.payment_card = PiiType.PAYMENT_CARD in types
        self.iban = PiiType.IBAN in types
        self.us_ssn = PiiType.US_SSN in types
        self.ip_address = PiiType.IP_ADDRESS in types
        self.credential = PiiType.CREDENTIAL in types

    def discard(self, found: PiiType) -> None:
        setattr(self, _WANTED_ATTRIBUTE[found], False)

    def wants(self, kind: PiiType) -> bool:
        """Re-read after a hit was handed out (the consumer may have discarded the type)."""
        return bool(getattr(self, _WANTED_ATTRIBUTE[kind]))

    def numeric(self) -> bool:
        return self.phone or self.payment_card or self.iban or self.us_ssn or self.ip_address

    def anything(self) -> bool:
        return self.numeric() or self.email or self.credential


def _scan_numeric(text: str, ascii_text: bytes, wanted: _Wanted) -> Iterator[PiiMatch]:
    """Validate every digit cluster against each numeric type still wanted."""
    class_map = ascii_text.translate(_CLASS_MAP)
    # The digits of an IBAN found here are not checked again as some other number.
    iban_spans: list[tuple[int, int]] = []
    if wanted.iban:
        position = class_map.find(_MAPPED_IBAN_START)
        while position != -1:
            iban = _iban_at(text, position)
            if iban is not None:
                iban_spans.append((position, position + len(iban)))
                yield PiiMatch(PiiType.IBAN, iban)
                if not wanted.wants(PiiType.IBAN):
                    break
            position = class_map.find(_MAPPED_IBAN_START, position + 1)
    hits: list[PiiMatch] = []
    for candidate in _MAPPED_CANDIDATE.finditer(class_map):
        start, end = candidate.span()
        if _cannot_be_numeric_pii(text, start, candidate.group()):
            continue
        # A candidate starting inside a found IBAN resumes after it (after the last such IBAN).
        candidate_start = start
        for first, last in iban_spans:
            if first <= candidate_start < last and last > start:
                start = last
        # The clusters of the candidate, as finditer would give them, without building an
        # iterator for the one cluster most candidates are.
        cluster_match = _CLUSTER.search(text, start, end)
        while cluster_match is not None:
            cluster_start, cluster_end = cluster_match.span()
            if cluster_end - cluster_start >= _MIN_NUMERIC_CLUSTER:
                _validate_cluster(
                    text, cluster_start, cluster_end, cluster_match.group(), wanted, hits
                )
            cluster_match = _CLUSTER.search(text, cluster_end, end)
        if hits:
            yield from hits
            hits.clear()
            if not wanted.numeric():
                return


def _cannot_be_numeric_pii(text: str, start: int, mapped: bytes) -> bool:
    """Cheap rejections on the class map, before any cluster is parsed.

    Most digit runs in prompts are dates, timestamps, counters and ids; this keeps them from
    reaching the validators. Under 9 digits only a dotted quad or an international phone number
    fits; an unseparated run only as an SSN (9 digits), a card (13-19) or an international
    number; an ISO date, with or without the hour, is never anything else.
    """
    core = mapped.rstrip(b" .-/()")
    if core.count(b".") >= 3:
        return False
    digit_count = core.count(b"0")
    if digit_count < 8:
        return True
    # Whether the number is written international ("+..." or "00..."), read only when it matters.
    if digit_count == 8:
        return not (text[start - 1 : start] == "+" or text.startswith("00", start))
    if digit_count == len(core):
        if digit_count == 9 or 13 <= digit_count <= 19:
            return False
        return not (text[start - 1 : start] == "+" or text.startswith("00", start))
    return _MAPPED_ISO_DATE.fullmatch(core) is not None


def _validate_cluster(
    text: str, start: int, end: int, cluster: str, wanted: _Wanted, hits: list[PiiMatch]
) -> None:
    # A first or last group glued to letters ("0f00a08 536-22-1234") belongs to some identifier,
    # hash or hex string, not to the number: drop it, or the whole cluster if nothing remains.
    before = text[start - 1] if start else " "
    if before.isalnum() or before == "_":
        first_space = cluster.find(" ")
        if first_space == -1:
            return
        dropped = first_space + 1
        before = " "
        if cluster[dropped : dropped + 1] == "(":
            dropped += 1
            before = "("
        start += dropped
        cluster = cluster[dropped:]
    after = text[end] if end < len(text) else " "
    if after.isalnum() or after == "_":
        last_separator = max(cluster.rfind(separator) for separator in " .-/()")
        if last_separator <= 0:
            return
        cluster = cluster[:last_separator].rstrip(" .-/(")
    if len(cluster) < _MIN_NUMERIC_CLUSTER or not cluster[0].isdigit():
        return
    parts = _SPLIT_GROUPS.split(cluster)
    groups, separators = parts[::2], parts[1::2]
    if wanted.ip_address and cluster.count(".") >= 3:  # a dotted quad's three dots
        for address in _ipv4_in_cluster(text, start, cluster):
            hits.append(PiiMatch(PiiType.IP_ADDRESS, address))
    digit_count = sum(map(len, groups))
    international = before == "+" or cluster.startswith("00")
    if digit_count < (8 if international else 9):
        return  # shorter than any card, SSN or phone number
    if wanted.payment_card and digit_count >= 13:
        for card in _cards_in_groups(groups, separators):
            hits.append(PiiMatch(PiiType.PAYMENT_CARD, card))
    if wanted.us_ssn and (_SSN_LAYOUT.search(cluster) or digit_count == 9):
        for ssn in _ssns_in_groups(text, start, groups, separators):
            hits.append(PiiMatch(PiiType.US_SSN, ssn))
    if wanted.phone and (before == "+" or _PHONE_LAYOUT.search(cluster)):
        phone = _phone_in_cluster(text, start, groups, separators)
        if phone is not None:
            hits.append(PiiMatch(PiiType.PHONE, phone))


def _join(groups: list[str], separators: list[str], first: int, last: int) -> str:
    parts = [groups[first]]
    for index in range(first + 1, last + 1):
        parts.append(separators[index - 1])
        parts.append(groups[index])
    return "".join(parts)


# --------------------------------------------------------------------------- payment cards

# Card numbers are printed unbroken or in groups of 4-4-4-4[-3], 4-6-5, 4-6-4 or 4-4-4-(1..3)
# digits, one separator (space or dash) throughout.


# Each digit doubled, the digits of the result summed (Luhn's second, fourth... digit from the end).
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_valid(digits: str) -> bool:
    """The Luhn check of a string of ASCII digits."""
    summed = (digits[-1::-2] + digits[-2::-2].translate(_LUHN_DOUBLED)).encode()
    # The digits' values added at C speed: their ASCII codes' sum, less ord("0") for each.
    return (sum(summed) - ord("0") * len(summed)) % 10 == 0


def _card_scheme_accepts(digits: str) -> bool:
    """Whether some card scheme issues numbers with this prefix (IIN) and this length."""
    length = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return length == 16
    if two in (34, 37):  # American Express
        return length == 15
    if 2200 <= four <= 2204:  # Mir
        return 16 <= length <= 19
    if 300 <= int(digits[:3]) <= 305 or two in (36, 38, 39):  # Diners Club
        return 14 <= length <= 19
    if 3528 <= four <= 3589:  # JCB
        return 16 <= length <= 19
    if four == 6011 or 644 <= int(digits[:3]) <= 649 or two == 65 or 622126 <= six <= 622925:
        return 16 <= length <= 19  # Discover
    if two == 62 or two == 81:  # UnionPay
        return 16 <= length <= 19
    if two == 50 or 56 <= two <= 69:  # Maestro and domestic debit schemes
        return 12 <= length <= 19
    return False


def is_payment_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _card_scheme_accepts(digits) and luhn_valid(digits)


def _cards_in_groups(groups: list[str], separators: list[str]) -> Iterator[str]:
    """Unbroken card numbers, and the printed card groupings that start with a 4-digit group.

    Every grouping is 4-6-(4|5) or 4-4-4-(1..4)[-3] with one separator throughout, so the
    groups after a 4 are read by position instead of extending a run group by group: this runs
    for every cluster of every prompt.
    """
    count = len(groups)
    for first, group in enumerate(groups):
        if len(group) != 4:
            if 13 <= len(group) <= 19 and is_payment_card(group):
                yield group
            continue
        if first + 2 >= count:
            continue
        separator = separators[first]
        if separator not in (" ", "-") or separators[first + 1] != separator:
            continue
        second, third = len(groups[first + 1]), len(groups[first + 2])
        if second == 6:
            last_candidates: tuple[int, ...] = (first + 2,) if third in (4, 5) else ()
        elif (
            second == 4 and third == 4 and first + 3 < count and separators[first + 2] == separator
        ):
            fourth = len(groups[first + 3])
            last_candidates = (first + 3,) if 1 <= fourth <= 3 else ()
            if fourth == 4:
                last_candidates = (first + 3,)
                if (
                    first + 4 < count
                    and separators[first + 3] == separator
                    and len(groups[first + 4]) == 3
                ):
                    last_candidates = (first + 3, first + 4)
        else:
            continue
        for last in last_candidates:
            if is_payment_card("".join(groups[first : last + 1])):
                yield _join(groups, separators, first, last)


# --------------------------------------------------------------------------- US SSN

_SAMPLE_SSNS = frozenset({"078051120", "219099999", "123456789"})
# Groups of 3, 2 and 4 digits joined by one dash or space each: what _ssns_in_groups looks for,
# found at C speed before it splits anything.
_SSN_LAYOUT = re.compile(r"(?<![0-9])[0-9]{3}([- ])[0-9]{2}\1[0-9]{4}(?![0-9])")
_SSN_WORDS = frozenset({"ssn", "ssn#", "security"})  # "SSN:", "social security (number)"


def _after_ssn_word(text: str, start: int) -> bool:
    return not _SSN_WORDS.isdisjoint(_words_before(text, start, 3))


def is_us_ssn(digits: str) -> bool:
    if len(digits) != 9 or not digits.isdigit() or digits in _SAMPLE_SSNS:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area != "000" and area != "666" and area[0] != "9" and group != "00" and serial != "0000"


def _ssns_in_groups(
    text: str, start: int, groups: list[str], separators: list[str]
) -> Iterator[str]:
    for first in range(len(groups) - 2):
        if (len(groups[first]), len(groups[first + 1]), len(groups[first + 2])) != (3, 2, 4):
            continue
        separator = separators[first]
        if separator not in ("-", " ") or separators[first + 1] != separator:
            continue
        # A longer run joined by the same separator is some other number (e.g. a phone number).
        if first > 0 and separators[first - 1] == separator:
            continue
        if first + 3 < len(groups) and separators[first + 2] == separator:
            continue
        digits = groups[first] + groups[first + 1] + groups[first + 2]
        if is_us_ssn(digits):
            yield _join(groups, separators, first, first + 2)
    if (
        len(groups) == 1
        and len(groups[0]) == 9
        and is_us_ssn(groups[0])
        and _after_ssn_word(text, start)
    ):
        yield groups[0]


# --------------------------------------------------------------------------- IBAN

# ISO 13616 registry: country code -> IBAN length.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


# ISO 13616 turns letters into two digits (A=10 ... Z=35) before the mod-97 check.
_IBAN_LETTER_DIGITS = str.maketrans({chr(code): str(code - 55) for code in range(65, 91)})
# One pattern per IBAN length, so a match ends exactly where an IBAN of that country ends.
_IBAN_OF_LENGTH = {
    length: re.compile(rf"[A-Z]{{2}}[0-9]{{2}}(?: ?[A-Z0-9]){{{length - 4}}}")
    for length in set(_IBAN_LENGTHS.values())
}


def iban_checksum_valid(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    return int(rearranged.translate(_IBAN_LETTER_DIGITS)) % 97 == 1


def is_iban(value: str) -> bool:
    compact = value.replace(" ", "")
    expected = _IBAN_LENGTHS.get(compact[:2])
    return (
        expected is not None
        and len(compact) == expected
        and compact.isalnum()
        and compact.isascii()
        and compact[2:4].isdigit()
        and compact.upper() == compact
        and iban_checksum_valid(compact)
    )


def _iban_at(text: str, start: int) -> str | None:
    if start < 0 or _is_word_char(_char_before(text, start)):
        return None
    expected = _IBAN_LENGTHS.get(text[start : start + 2])
    if expected is None:
        return None
    # The country's length must end where the IBAN's text ends, not inside a longer token.
    match = _IBAN_OF_LENGTH[expected].match(text, start)
    if match is None or _is_word_char(_char_at(text, match.end())):
        return None
    candidate = match.group()
    # The pattern already holds everything is_iban checks but the checksum: the country's
    # length, upper-case ASCII letters and digits, digits after the country code.
    return candidate if iban_checksum_valid(candidate.replace(" ", "")) else None


# --------------------------------------------------------------------------- IP addresses

_NOT_DOT = re.compile(r"[ \-/()]+")
# A dotted quad as `ipaddress` accepts it: octets 0-255 without leading zeros ("01.02.03.04"
# is refused). Loopback (127.0.0.0/8), "this network" (0.0.0.0/8, the unspecified address
# included) and netmask values (255.x) identify nobody, so they are refused here too.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_HOST_IPV4 = re.compile(rf"(?!127\.|0\.|255\.){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\Z")


def is_ipv4(value: str) -> bool:
    """A dotted quad that `ipaddress` accepts, naming a host.

    One regular expression gives the same answer as `ipaddress` without building an address
    object or raising and catching its ValueError for the many look-alikes (versions, dotted
    dates), which cost more than the rest of the scan.
    """
    return _HOST_IPV4.match(value) is not None


def _ipv4_in_cluster(text: str, start: int, cluster: str) -> list[str]:
    found = []
    for index, token in enumerate(_NOT_DOT.split(cluster)):
        if token.count(".") == 3 and is_ipv4(token):
            # The first token is no address inside a longer dotted run, as the IPv4 tail of an
            # IPv6 address, or after a version word.
            if index == 0 and (
                _char_before(text, start) in ".:" or _after_version_word(text, start)
            ):
                continue
            found.append(token)
    return found


_IPV6_ANCHOR = re.compile(r":(?:[0-9A-Fa-f]{1,4})?:")
_IPV6_HEAD = re.compile(r"[0-9A-Fa-f:]*\Z")
_IPV6_TAIL = re.compile(r"[0-9A-Fa-f:.]*")
_IPV6_MAX_LENGTH = 45  # the longest textual IPv6 address, with an embedded IPv4 tail


def is_ipv6(value: str) -> bool:
    colons = value.count(":")
    if colons < 2 or ("::" not in value and colons != 7 and not (colons == 6 and "." in value)):
        return False
    if not any(char.isdigit() for char in value):
        return False  # "dead::beef", "a::b": C++ scopes and the like, not addresses
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


def _scan_ipv6(text: str) -> Iterator[str]:
    position = 0
    while True:
        anchor = _IPV6_ANCHOR.search(text, position)
        if anchor is None:
            return
        anchor_start, anchor_end = anchor.span()
        position = anchor_end
        # Without "::" an address needs 6 or 7 colons: times such as 10:42:17 stop here.
        window_start = max(0, anchor_start - _IPV6_MAX_LENGTH)
        if anchor_end - anchor_start > 2 and (
            text.count(":", window_start, anchor_end + _IPV6_MAX_LENGTH) < 6
            and text.find("::", window_start, anchor_end + _IPV6_MAX_LENGTH) == -1
        ):
            continue
        head = _IPV6_HEAD.search(text, window_start, anchor_start)
        first = head.start() if head is not None else anchor_start
        tail = _IPV6_TAIL.match(text, anchor_end, anchor_end + _IPV6_MAX_LENGTH)
        last = tail.end() if tail is not None else anchor_end
        candidate = text[first:last].rstrip(".")
        bounded = not _is_word_char(_char_before(text, first)) and not _is_word_char(
            _char_at(text, first + len(candidate))
        )
        if bounded and is_ipv6(candidate):
            yield candidate
        position = max(last, anchor_end)


# --------------------------------------------------------------------------- phone numbers

# ITU-T E.164 country calling codes (prefix-free: no code is a prefix of another).
_COUNTRY_CODES = frozenset(
    {"1", "7"}
    | {
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
        "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
        "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94",
        "95", "98",
    }
    | {"211", "212", "213", "216", "218", "290", "291", "297", "298", "299"}
    | {str(code) for code in range(220, 259)}
    | {str(code) for code in range(260, 270)}
    | {str(code) for code in range(350, 360)}
    | {str(code) for code in range(370, 380)}
    | {"380", "381", "382", "383", "385", "386", "387", "389", "420", "421", "423"}
    | {str(code) for code in range(500, 510)}
    | {str(code) for code in range(590, 600)}
    | {"670"}
    | {str(code) for code in range(672, 693)}
    | {"800", "808", "850", "852", "853", "855", "856", "870", "878"}
    | {"880", "881", "882", "883", "886", "888"}
    | {str(code) for code in range(960, 969)}
    | {str(code) for code in range(970, 978)}
    | {"979"}
    | {str(code) for code in range(992, 999)}
)  # fmt: skip
_DATE = re.compile(
    r"(?:[0-9]{4}[./\-][0-9]{1,2}[./\-][0-9]{1,2}|[0-9]{1,2}[./\-][0-9]{1,2}[./\-][0-9]{2,4})\Z"
)


def _nanp_valid(national: str) -> bool:
    """North American numbering plan: NXX area code (not N11), NXX exchange, 10 digits."""
    return (
        len(national) == 10
        and national[0] not in "01"
        and national[1:3] != "11"
        and national[3] not in "01"
    )


def is_international_phone(digits: str) -> bool:
    """E.164 digits after the `+`: a real country code and a plausible national number."""
    if not 8 <= len(digits) <= 15 or digits[0] == "0":
        return False
    for code_length in (1, 2, 3):
        code = digits[:code_length]
        if code in _COUNTRY_CODES:
            national = digits[code_length:]
            if code == "1":
                return _nanp_valid(national)
            if code == "7":
                return len(national) == 10
            return 6 <= len(national) <= 13
    return False


def _looks_like_date(value: str) -> bool:
    if _DATE.match(value) is None:
        return False
    first, second, third = (int(part) for part in re.split(r"[./\-]", value))
    if first > 999:  # year first: YYYY-MM-DD
        first, second = third, second
    day_month = 1 <= first <= 31 and 1 <= second <= 12
    month_day = 1 <= first <= 12 and 1 <= second <= 31
    return day_month or month_day


_MAX_PHONE_GROUPS = 8
# What every phone number without a "+" holds (see _national_phone): a group starting with 0
# (trunk prefix, or "00" international prefix) or the NANP 3-3-4 layout. Looked for at C speed,
# so cards, IP addresses and most references never reach the phone parser.
_PHONE_LAYOUT = re.compile(r"(?<![0-9])(?:0|[0-9]{3}[^0-9]+[0-9]{3}[^0-9]+[0-9]{4}(?![0-9]))")


def _phone_in_cluster(
    text: str, start: int, groups: list[str], separators: list[str]
) -> str | None:
    before = _char_before(text, start)
    if before == "+" and not _is_word_char(_char_before(text, start - 1)):
        # ("3+4 5678 9012" is arithmetic: a "+" after a digit or letter starts no number.)
        phone = _international_phone(
            groups[:_MAX_PHONE_GROUPS], separators[:_MAX_PHONE_GROUPS], prefix="+"
        )
        if phone is not None:
            return phone
    # A number may follow other digits in the same cluster ("2 (415) 555-2671"): try every
    # group that starts after a space and could begin a number (country, area or trunk code).
    for first, group in enumerate(groups):
        if first == 0:
            if before in ("+", "#"):
                continue  # "#0123 456 789" is a reference; "+..." was tried above
            before_group = before
        elif separators[first - 1] in (" ", " (", ") "):
            before_group = separators[first - 1][-1]
        else:
            continue
        if len(group) not in (1, 3) and group[0] != "0":
            continue
        # No number spans more groups than this; the bound keeps long digit runs linear.
        last = first + _MAX_PHONE_GROUPS
        phone = _national_phone(before_group, groups[first:last], separators[first:last])
        if phone is not None and not (first == 0 and _after_order_word(text, start)):
            return phone
    return None


def _national_phone(before: str, groups: list[str], separators: list[str]) -> str | None:
    """A number written with an international `00` prefix, or in NANP or trunk-prefix style."""
    if groups[0].startswith("00") and not groups[0].startswith("000"):
        stripped = [groups[0][2:], *groups[1:]] if len(groups[0]) > 2 else groups[1:]
        stripped_separators = separators if len(groups[0]) > 2 else separators[1:]
        if stripped:
            return _international_phone(stripped, stripped_separators, prefix="00")
        return None
    return _nanp_phone(before, groups, separators) or _trunk_phone(before, groups, separators)


def _international_phone(groups: list[str], separators: list[str], prefix: str) -> str | None:
    # "+44 (0)20 ..." writes the national trunk prefix in parentheses; it is not dialled.
    kept = [
        (group, separators[index - 1] if index else "")
        for index, group in enumerate(groups)
        if not (group == "0" and index and separators[index - 1].endswith("("))
    ]
    digits = ""
    best: str | None = None
    for index, (group, _separator) in enumerate(kept):
        digits += group
        if len(digits) > 15:
            break
        if index + 1 < len(kept) and kept[index + 1][1] in ("/",):
            break  # "+49 30/1234" style extensions end the number
        if is_international_phone(digits):
            best = prefix + digits
    return best


def _nanp_phone(before: str, groups: list[str], separators: list[str]) -> str | None:
    lengths = tuple(len(group) for group in groups[:4])
    if lengths[:3] == (3, 3, 4):
        first = 0
    elif lengths == (1, 3, 3, 4) and groups[0] == "1":
        first = 1
    else:
        return None
    area_separator, line_separator = separators[first], separators[first + 1]
    if len(groups) > first + 3 and separators[first + 2] == line_separator:
        return None  # the same layout runs on into more digits: some longer number
    parenthesised = (before == "(" if first == 0 else separators[0].endswith("(")) and (
        area_separator in (")", ") ")
    )
    if not parenthesised and (area_separator != line_separator or area_separator == "/"):
        return None
    if line_separator not in (" ", "-", "."):
        return None
    national = "".join(groups[first : first + 3])
    return national if _nanp_valid(national) else None


def _trunk_phone(before: str, groups: list[str], separators: list[str]) -> str | None:
    if len(groups) < 2 or not groups[0].startswith("0") or groups[0].startswith("00"):
        return None
    if tuple(len(group) for group in groups[:3]) == (3, 2, 4):
        return None  # the US SSN layout, never a national phone layout
    # "(030) 1234567": a parenthesised area code, then groups joined by one separator.
    parenthesised = before == "(" and separators[0] in (")", ") ")
    separator = separators[1] if parenthesised and len(separators) > 1 else separators[0]
    if separator not in (" ", "-", ".", "/", ")", ") "):
        return None
    # The longest run of groups with 9-12 digits: a trailing unrelated number ("... 0958 6")
    # does not hide the phone number before it.
    digits = len(groups[0])
    last = 0
    for index in range(1, len(groups)):
        joined_by = separators[index - 1]
        if joined_by != separator and not (index == 1 and parenthesised):
            break
        if not 2 <= len(groups[index]) <= 8:
            break
        digits += len(groups[index])
        if digits > 12:
            break
        if digits >= 9:
            last = index
    if not last:
        return None
    value = _join(groups, separators, 0, last)
    if _looks_like_date(value):
        return None
    return f"({value}" if parenthesised else value


# --------------------------------------------------------------------------- credentials

_OPENAI_KEY = re.compile(
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)[0-9]{2}-)?([A-Za-z0-9_\-]+)"
)
_AWS_ACCESS_KEY = re.compile(r"(?:AKIA|ASIA)[A-Z2-7]{16}")
# Written with the common literal "gh" first, so the regex engine scans for it at C speed.
_GITHUB_TOKEN = re.compile(r"gh[pousr]_[A-Za-z0-9]{36}")
_GITHUB_FINE_GRAINED_TOKEN = re.compile(r"github_pat_[A-Za-z0-9_]{82}")
_SLACK_TOKEN = re.compile(r"xox[abposre]-[A-Za-z0-9\-]+")
_BEARER = re.compile(r"[Bb]earer[ \t]+([A-Za-z0-9\-._~+/]+=*)")
# Bounded repeats: a failed attempt must not rescan the rest of a long run at every "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{1,1024}\.eyJ[A-Za-z0-9_\-]{1,16384}\.[A-Za-z0-9_\-]{16,1024}")
_PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----\s+(?:[A-Za-z\-]+:[^\n]*\n\s*)*"
    r"([A-Za-z0-9+/=\s]{40,16384})"
)
# Substrings of the names secrets are assigned to: api_key, SECRET_KEY, auth_token, password.
_ASSIGNMENT_KEYWORDS = ("key", "secret", "token", "passw")
_IDENTIFIER_TAIL = re.compile(r"[A-Za-z0-9_.\-]*")
_ASSIGNED_VALUE = re.compile(
    r"[\"']?[ \t]*(?::=|=|:|=>)[ \t]*[\"'`]?([A-Za-z0-9/+_\-.~=!@#$%^&*]{12,200})"
)
# The same keyword, identifier tail and assignment, lowercased, as one search with a literal
# prefix: prose says "token" and "key" often, and only this C-level search sees those that are
# never followed by "= value", instead of a Python iteration for each occurrence. The tail is
# read possessively and at most _GATED_TAIL characters far, so the search stays linear on any
# input ("keykeykey..."); a longer identifier passes the gate and is read by the exact scan.
_GATED_TAIL = 64
_ASSIGNMENT_GATES = tuple(
    (
        keyword,
        re.compile(
            re.escape(keyword)
            + rf"[a-z0-9_.\-]{{0,{_GATED_TAIL}}}+"
            + r"(?:[\"']?[ \t]*(?::=|=|:|=>)[ \t]*[\"'`]?[a-z0-9/+_\-.~=!@#$%^&*]{12}|[a-z0-9_.\-])"
        ),
    )
    for keyword in _ASSIGNMENT_KEYWORDS
)


def _bounded(text: str, start: int, end: int) -> bool:
    before = _char_before(text, start)
    after = _char_at(text, end)
    return not (_is_word_char(before) or before == "-") and not (
        _is_word_char(after) or after == "-"
    )


def _scan_openai_keys(text: str) -> Iterator[str]:
    for match in _OPENAI_KEY.finditer(text):
        if _bounded(text, match.start(), match.end()) and _looks_random(
            match.group(1), min_length=20
        ):
            yield match.group()


def _scan_aws_keys(text: str) -> Iterator[str]:
    for match in _AWS_ACCESS_KEY.finditer(text):
        if _bounded(text, match.start(), match.end()):
            yield match.group()


def _scan_github_tokens(text: str) -> Iterator[str]:
    for match in _GITHUB_TOKEN.finditer(text):
        value = match.group()
        if _bounded(text, match.start(), match.end()) and _looks_random(value[4:]):
            yield value


def _scan_github_fine_grained_tokens(text: str) -> Iterator[str]:
    for match in _GITHUB_FINE_GRAINED_TOKEN.finditer(text):
        value = match.group()
        if _bounded(text, match.start(), match.end()) and _looks_random(value[11:]):
            yield value


def _scan_slack_tokens(text: str) -> Iterator[str]:
    for match in _SLACK_TOKEN.finditer(text):
        segments = match.group()[5:].split("-")
        if (
            _bounded(text, match.start(), match.end())
            and len(segments) >= 3
            and segments[0].isdigit()
            and len(segments[0]) >= 6
            and len(segments[-1]) >= 16
            and segments[-1].isalnum()
        ):
            yield match.group()


def _scan_bearer_tokens(text: str) -> Iterator[str]:
    for match in _BEARER.finditer(text):
        token = match.group(1)
        if not _is_word_char(_char_before(text, match.start())) and _looks_random(token):
            yield match.group()


def is_jwt(value: str) -> bool:
    header_segment = value.split(".", 1)[0]
    try:
        header = json.loads(
            base64.urlsafe_b64decode(header_segment + "=" * (-len(header_segment) % 4))
        )
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def _scan_jwts(text: str) -> Iterator[str]:
    for match in _JWT.finditer(text):
        if _bounded(text, match.start(), match.end()) and is_jwt(match.group()):
            yield match.group()


def _scan_private_keys(text: str) -> Iterator[str]:
    for match in _PEM_PRIVATE_KEY.finditer(text):
        body = "".join(match.group(1).split())
        if len(body) >= 40 and _looks_random(body, min_length=40):
            yield match.group().split("\n", 1)[0]


def _scan_assignments(text: str) -> Iterator[str]:
    folded = (
        text.lower() if text.isascii() else text.encode("ascii", "replace").decode("ascii").lower()
    )
    for keyword, gate in _ASSIGNMENT_GATES:
        if gate.search(folded) is None:
            continue
        position = folded.find(keyword)
        while position != -1:
            # The rest of the identifier holding the keyword ("OPENAI_API_KEY"), then "= value".
            # Each identifier is read once, so the scan stays linear on any input.
            tail = _IDENTIFIER_TAIL.match(text, position)
            identifier_end = tail.end() if tail is not None else position
            match = _ASSIGNED_VALUE.match(text, identifier_end)
            if match is not None and _looks_random(match.group(1)):
                yield match.group(1)
            position = folded.find(keyword, max(identifier_end, position + len(keyword)))


# Each scanner behind the literal its credentials start with, so a prompt without that literal
# costs one substring search and no generator. Every credential but a PEM block holds a run of
# at least 16 characters from _TOKEN_CHARS (the scanners require that much); the literals marked
# True lie inside that run (the whole match is token characters), so they are looked for in the
# long runs only, usually a few dozen characters instead of the whole prompt. "Bearer" is
# separated from its token by a space, so it is looked for in the whole text.
_TOKEN_CREDENTIAL_SCANNERS: tuple[tuple[str, bool, Callable[[str], Iterator[str]]], ...] = (
    ("sk-", True, _scan_openai_keys),
    ("IA", True, _scan_aws_keys),  # AKIA, ASIA
    ("gh", True, _scan_github_tokens),  # ghp_, gho_, ghu_, ghs_, ghr_
    ("github_pat_", True, _scan_github_fine_grained_tokens),
    ("xox", True, _scan_slack_tokens),
    ("eyJ", True, _scan_jwts),
    ("earer", False, _scan_bearer_tokens),
)
_TOKEN_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~!@#$%^&*"
)
_TOKEN_MAP = bytes(ord("w") if chr(code) in _TOKEN_CHARS else ord(" ") for code in range(256))
_LONG_TOKEN = b"w" * 16
# How far back from a run an assignment operator is looked for before giving up and scanning.
_OPERATOR_LOOKBACK = 64


def _long_token_runs(ascii_text: bytes) -> list[tuple[int, int]]:
    """The spans of runs of 16 or more token characters, found by bytes.find at C speed."""
    token_map = ascii_text.translate(_TOKEN_MAP)
    runs = []
    start = token_map.find(_LONG_TOKEN)
    while start != -1:
        end = token_map.find(b" ", start + len(_LONG_TOKEN))
        if end == -1:
            runs.append((start, len(token_map)))
            break
        runs.append((start, end))
        start = token_map.find(_LONG_TOKEN, end)
    return runs


def _may_be_assigned(text: str, start: int, end: int) -> bool:
    """Whether a long run may hold the value of `name = value` (see _ASSIGNED_VALUE).

    The value (16+ token characters) either starts the run, right after an operator that may be
    followed by blanks and one quote, or follows a "=" inside the run ("key=value", ":=").
    """
    if text.find("=", start, end - len(_LONG_TOKEN)) != -1:
        return True
    window_start = max(0, start - _OPERATOR_LOOKBACK)
    before = text[window_start:start]
    if before.endswith(('"', "'", "`")):
        before = before[:-1]
    before = before.rstrip(" \t")
    if not before:
        return window_start > 0  # only blanks as far as looked: the operator may be further
    return before.endswith(("=", ":", ">"))


def _scan_credentials(text: str, ascii_text: bytes) -> Iterator[str]:
    if "PRIVATE KEY" in text:
        yield from _scan_private_keys(text)
    # One byte per character in ascii_text, so the map's spans are the text's.
    runs = _long_token_runs(ascii_text)
    if not runs:
        return
    long_runs = " ".join([text[start:end] for start, end in runs])
    for literal, inside_long_run, scanner in _TOKEN_CREDENTIAL_SCANNERS:
        if literal in (long_runs if inside_long_run else text):
            yield from scanner(text)
    # An assigned secret is a long run after an assignment operator; prose runs (hashes, ids,
    # addresses) mostly follow a word, which this tells without searching for the keywords.
    if any(_may_be_assigned(text, start, end) for start, end in runs):
        yield from _scan_assignments(text)


# --------------------------------------------------------------------------- the scan


def iter_pii(text: str, types: Set[PiiType] | None = None) -> Iterator[PiiMatch]:
    """Every validated hit of the wanted types (all types by default), in no particular order."""
    return _iter_pii(text, _Wanted(ALL_PII_TYPES if types is None else types))


def _iter_pii(text: str, wanted: _Wanted) -> Iterator[PiiMatch]:
    """Scan for what `wanted` asks; the caller may discard a type mid-scan to stop looking."""
    if wanted.email and "@" in text:
        for email in _scan_email(text):
            yield PiiMatch(PiiType.EMAIL, email)
            if not wanted.wants(PiiType.EMAIL):
                break
    # One byte per character ("?" for anything not ASCII), so positions match the text's.
    ascii_text = text.encode("ascii", "replace")
    if wanted.credential:
        for credential in _scan_credentials(text, ascii_text):
            yield PiiMatch(PiiType.CREDENTIAL, credential)
            if not wanted.wants(PiiType.CREDENTIAL):
                break
    if wanted.ip_address and ":" in text:
        for address in _scan_ipv6(text):
            yield PiiMatch(PiiType.IP_ADDRESS, address)
            if not wanted.wants(PiiType.IP_ADDRESS):
                break
    if wanted.numeric():
        yield from _scan_numeric(text, ascii_text, wanted)


def python_find_pii(text: str, types: Set[PiiType] | None = None) -> list[PiiMatch]:
    """find_pii in pure Python: the reference the native scanner is tested against."""
    return list(iter_pii(text, types))


def python_detect_pii(text: str, types: frozenset[PiiType] | None = None) -> frozenset[PiiType]:
    """detect_pii in pure Python: the reference the native scanner is tested against."""
    wanted = _Wanted(ALL_PII_TYPES if types is None else types)
    found: set[PiiType] = set()
    for match in _iter_pii(text, wanted):
        if match.type not in found:
            found.add(match.type)
            wanted.discard(match.type)
            if not wanted.anything():
                break
    return frozenset(found)


# --------------------------------------------------------------------------- native scanner

try:
    from modelplane.router.policy import _piiscan

    NATIVE_SCANNER_AVAILABLE = True
except ImportError:  # installed where no C compiler was available: pure Python, same answers
    NATIVE_SCANNER_AVAILABLE = False

# The native scanner reports types by index; it names each index's type itself.
_NATIVE_TYPES: tuple[PiiType, ...] = (
    tuple(PiiType(name) for name in _piiscan.TYPES) if NATIVE_SCANNER_AVAILABLE else ()
)
_NATIVE_BITS = {kind: 1 << index for index, kind in enumerate(_NATIVE_TYPES)}
_NATIVE_ALL = (1 << len(_NATIVE_TYPES)) - 1
# Every answer detect() can give, built once: a tuple index instead of a set per call.
_NATIVE_TYPE_SETS = tuple(
    frozenset(kind for index, kind in enumerate(_NATIVE_TYPES) if mask >> index & 1)
    for mask in range(1 << len(_NATIVE_TYPES))
)


def _native_mask(types: Set[PiiType] | None) -> int:
    if types is None:
        return _NATIVE_ALL
    return sum(_NATIVE_BITS[kind] for kind in types)


def native_find_pii(text: str, types: Set[PiiType] | None = None) -> list[PiiMatch]:
    """find_pii on the native scanner; requires NATIVE_SCANNER_AVAILABLE."""
    hits = _piiscan.find(text, _native_mask(types), is_jwt, is_ipv6)
    return [PiiMatch(_NATIVE_TYPES[index], value) for index, value in hits]


def native_detect_pii(text: str, types: frozenset[PiiType] | None = None) -> frozenset[PiiType]:
    """detect_pii on the native scanner; requires NATIVE_SCANNER_AVAILABLE."""
    return _NATIVE_TYPE_SETS[_piiscan.detect(text, _native_mask(types), is_jwt, is_ipv6)]


# --------------------------------------------------------------------------- public API


def find_pii(text: str, types: Set[PiiType] | None = None) -> list[PiiMatch]:
    """All validated hits, for explanations and tests."""
    if not NATIVE_SCANNER_AVAILABLE:
        return python_find_pii(text, types)
    return native_find_pii(text, types)


def detect_pii(text: str, types: frozenset[PiiType] | None = None) -> frozenset[PiiType]:
    """The PII types present in `text` (limited to `types` when given)."""
    if not NATIVE_SCANNER_AVAILABLE:
        return python_detect_pii(text, types)
    return native_detect_pii(text, types)
