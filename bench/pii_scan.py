"""PII scan throughput: MB/s of `detect_pii` over realistic prompts of 1 KB, 10 KB and 100 KB.

The prompts are generated deterministically: prose, code, JSON and log lines with numeric
look-alikes (dates, times, versions, UUIDs, hashes, order numbers, prices, ports), which is what
makes a validating scanner work hardest. "clean" prompts contain no PII, with a number-like token
in 30% of prose sentences; "pii" prompts are the same kind of text with one instance of each PII
type placed at random positions, so the scan finds every type; "dense" is a stress case, clean
but with a look-alike in every sentence.
Each figure is the best of several timed rounds of the production call, `detect_pii(text)` with
every type wanted (the native scanner, `router/policy/piiscan/`); "full" additionally reports
`find_pii`, which never exits early and builds every hit; "python" is `python_detect_pii`, the
pure-Python reference (and fallback where no C compiler is available), measured in the same run
on the same prompts. Time is this process's CPU time, so other work on a shared machine does not
distort the figure.

    .venv/bin/python -m bench.pii_scan [--quick]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from modelplane.router.policy.pii import (
    NATIVE_SCANNER_AVAILABLE,
    detect_pii,
    find_pii,
    python_detect_pii,
)
from modelplane.router.policy.types import PiiType

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
# Share of prose sentences carrying a number-like token (date, version, id, amount...). "Mixed"
# prompts are already far denser in numbers than chat or documents; "dense" is a stress case
# where every sentence has one.
MIXED = 0.3
DENSE = 1.0

_PROSE = (
    "the model should summarise the quarterly report and explain why revenue grew while costs "
    "stayed flat please answer in three bullet points using the data below as context for a "
    "customer support reply about the delayed shipment and refund policy of our online store "
    "consider latency throughput memory budget cluster deployment replica token prompt"
)
_WORDS = tuple(_PROSE.split())

_NUMERIC_LOOKALIKES = (
    "2024-03-15",
    "15.03.2024",
    "03/15/2024",
    "10:42:17",
    "2024-03-15T10:42:17Z",
    "v1.2.3",
    "1.2.3.4.5",
    "version 3.11.4",
    "order 0123-456-789",
    "invoice #4411-2093-7781",
    "$1,299.00",
    "42%",
    "port 8080",
    "1700000000",
    "123e4567-e89b-12d3-a456-426614174000",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "4111 1111 1111 1112",
    "999.10.20.30",
    "std::vector<int>",
    "page 12 of 340",
    "3.14159",
    "x = 1024 * 768",
)

_CODE = (
    "def handler(event, context):\n"
    "    items = [int(x) for x in event['ids'][:100]]\n"
    "    return {'statusCode': 200, 'body': json.dumps(items)}\n"
)
_LOG = "2024-03-15 10:42:17,532 INFO worker-3 processed batch 8812 in 143 ms (retries=0)\n"
_JSON = '{"id": 88123, "sku": "AB-1932-X", "price": 19.99, "qty": 3, "created": "2024-03-15"}\n'

_PII = {
    PiiType.EMAIL: "write to jane.doe@example.org",
    PiiType.PHONE: "call +44 20 7946 0958",
    PiiType.PAYMENT_CARD: "card 4111 1111 1111 1111",
    PiiType.IBAN: "IBAN DE89 3704 0044 0532 0130 00",
    PiiType.US_SSN: "SSN 536-22-1234",
    PiiType.IP_ADDRESS: "host 192.168.10.42",
    PiiType.CREDENTIAL: "key sk-proj-Ab3dEf7hIj9kLm2nOp4qRs6tUv8wXyZ1",
}


def clean_prompt(size: int, rng: random.Random, lookalike_rate: float = MIXED) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.1:
            chunk = _CODE
        elif roll < 0.18:
            chunk = _LOG
        elif roll < 0.24:
            chunk = _JSON
        else:
            words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 20))]
            if rng.random() < lookalike_rate:
                words.insert(rng.randrange(len(words)), rng.choice(_NUMERIC_LOOKALIKES))
            chunk = " ".join(words).capitalize() + ". "
        parts.append(chunk)
        length += len(chunk)
    text = "".join(parts)
    # Cut at a word boundary, so no look-alike is truncated into something else ("1.2.3.4.").
    return text[: text.rfind(" ", 0, size) + 1]


def pii_prompt(size: int, rng: random.Random) -> str:
    items = list(_PII.values())
    filler = clean_prompt(size - sum(len(item) + 2 for item in items), rng, MIXED)
    cuts = sorted(rng.randrange(len(filler)) for _ in items)
    pieces: list[str] = []
    previous = 0
    for cut, item in zip(cuts, items, strict=True):
        # Place each item at a word boundary so it reads as part of a sentence.
        boundary = filler.rfind(" ", previous, cut)
        if boundary <= previous:
            boundary = filler.find(" ", cut)
        cut = boundary if boundary > previous else cut
        pieces.append(filler[previous:cut])
        pieces.append(f" {item} ")
        previous = cut
    pieces.append(filler[previous:])
    return "".join(pieces)


def _megabytes_per_second(scan: Callable[[str], object], texts: list[str], rounds: int) -> float:
    total_bytes = sum(len(text.encode()) for text in texts)
    timings = []
    for _ in range(rounds):
        started = time.process_time()
        for text in texts:
            scan(text)
        timings.append(time.process_time() - started)
    return total_bytes / min(timings) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts and rounds")
    args = parser.parse_args()
    rng = random.Random(20261123)
    rounds = 5 if args.quick else 15
    volume = 400_000 if args.quick else 2_000_000  # bytes of prompts per size and kind

    figures: dict[str, float] = {}
    print(f"PII scanner: {'native' if NATIVE_SCANNER_AVAILABLE else 'pure Python (not built)'}")
    print(
        f"{'prompt':>8} {'kind':>6} {'prompts':>8} {'detect MB/s':>12} {'full MB/s':>10}"
        f" {'python MB/s':>12} {'speed-up':>9}"
    )
    kinds = {
        "clean": lambda size: clean_prompt(size, rng, MIXED),
        "pii": lambda size: pii_prompt(size, rng),
        "dense": lambda size: clean_prompt(size, rng, DENSE),
    }
    for label, size in SIZES.items():
        count = max(3, volume // size)
        for kind, make in kinds.items():
            texts = [make(size) for _ in range(count)]
            if kind == "pii":
                missed = [text for text in texts if detect_pii(text) != frozenset(_PII)]
                if missed:
                    raise SystemExit(f"benchmark prompt lost some of its PII: {missed[0][:200]}")
            elif any(detect_pii(text) for text in texts):
                raise SystemExit("a clean benchmark prompt was flagged as containing PII")
            detect = _megabytes_per_second(detect_pii, texts, rounds)
            full = _megabytes_per_second(find_pii, texts, rounds)
            python = _megabytes_per_second(python_detect_pii, texts, rounds)
            figures[f"pii_mb_s_{label}_{kind}"] = detect
            figures[f"pii_full_mb_s_{label}_{kind}"] = full
            figures[f"pii_python_mb_s_{label}_{kind}"] = python
            print(
                f"{label:>8} {kind:>6} {count:>8} {detect:>12.1f} {full:>10.1f}"
                f" {python:>12.1f} {detect / python:>8.1f}x"
            )
    print(" ".join(f"{name}={value:.1f}" for name, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
