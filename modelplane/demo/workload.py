"""The demo's mixed workload: what an application team would send through the router.

Every request carries a reference (`D-007`) in its system message, and every sensitive request
carries literal values (PII, a confidential code name) that the demo later looks for in what the
simulated GPT-4o received. That check does not trust the router's own account of where it sent
anything.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DATA_CLASS_HEADER = "x-modelplane-data-class"
REFERENCE_PATTERN = re.compile(r"\bD-\d{3,}\b")
MAX_TOKENS = 48


class Kind(StrEnum):
    PUBLIC = "public question"
    CONFIDENTIAL = "confidential"
    PII = "contains PII"
    IMAGE = "image"
    LONG_CONTEXT = "long context"
    BURST = "burst"


@dataclass(frozen=True, slots=True)
class WorkloadItem:
    reference: str
    kind: Kind
    messages: list[dict[str, Any]]
    data_class: str | None  # the x-modelplane-data-class header, when the caller declares one
    sensitive: bool  # confidential or carrying PII: must never reach an external provider
    stream: bool
    secrets: tuple[str, ...] = field(default=())  # literal values that must not leave

    @property
    def headers(self) -> dict[str, str]:
        return {DATA_CLASS_HEADER: self.data_class} if self.data_class else {}


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    phase: list[WorkloadItem]  # sent one after another
    burst: list[WorkloadItem]  # sent all at once, to saturate the self-hosted model

    @property
    def items(self) -> list[WorkloadItem]:
        return self.phase + self.burst


PUBLIC_QUESTIONS = (
    "What is the capital of Australia, and why was it chosen?",
    "Explain in two sentences what a hash map is.",
    "Give me three tips for writing a clear commit message.",
    "What is the difference between TCP and UDP?",
    "Suggest a name for a friendly robot that waters plants.",
    "Why is the sky blue? Answer briefly.",
    "List three healthy breakfast ideas.",
    "What does HTTP status code 429 mean?",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "How many minutes are there in a week?",
    "What is a Kubernetes pod?",
    "Translate 'good morning' into French and Spanish.",
)

CONFIDENTIAL_TASKS = (
    "Summarise the board memo on Project {codename}: we plan to acquire a competitor in Q3.",
    "Draft an internal note about the {codename} layoffs planned for next month.",
    "Rewrite our unreleased pricing strategy ({codename}) as three bullet points.",
    "List the risks in the {codename} merger term sheet we received today.",
    "Write a status update on the {codename} security incident for the executive team.",
)
CODENAMES = ("KESTREL", "BLUEFIN", "OSPREY", "MARLIN", "CONDOR", "PEREGRINE")

# Fictional people and documented test values: card numbers pass the Luhn check, the IBAN
# passes mod-97, the phone number is in a range reserved for drama.
PII_TEMPLATES = (
    ("Write a polite reply to {email} saying her refund is on its way.", "email"),
    ("The customer paid with card {card}. Draft a receipt e-mail for them.", "card"),
    ("Call me back on {phone} to confirm the delivery slot, please summarise.", "phone"),
    ("Set up a transfer to IBAN {iban} and write the confirmation text.", "iban"),
)
EMAILS = ("jane.doe@example.com", "omar.khan@example.org", "li.wei@example.net")
CARDS = ("4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005")
PHONES = ("+44 20 7946 0958", "+1 202-555-0143", "+33 1 70 36 39 55")
IBANS = ("GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00")

# A 1x1 PNG: the point is the image part, not the picture.
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201d2a2d9"
        "4a0000000049454e44ae426082"
    )
).decode()

# SmolLM2's context is 8192 tokens; this document is about 11,000 tokens of log lines.
LONG_CONTEXT_LINES = 520


def system_message(reference: str) -> dict[str, Any]:
    return {
        "role": "system",
        "content": f"You are a concise assistant. (modelplane demo request {reference})",
    }


def long_document() -> str:
    lines = [
        f"2026-11-23T10:{minute % 60:02d}:{minute * 7 % 60:02d}Z service=checkout "
        f"level={'WARN' if minute % 9 == 0 else 'INFO'} latency_ms={40 + minute * 13 % 200} "
        f"route=/api/cart/{minute % 17} status={503 if minute % 23 == 0 else 200}"
        for minute in range(LONG_CONTEXT_LINES)
    ]
    return "\n".join(lines)


def plan_counts(total: int) -> dict[Kind, int]:
    """How many requests of each kind a workload of `total` requests holds.

    Small workloads get one of each kind in order of interest; from eight requests on there is
    one image and one long-context request, a quarter is the burst, and the rest is split
    between public questions, confidential requests and PII.
    """
    if total < 1:
        raise ValueError("the workload needs at least one request")
    counts = dict.fromkeys(Kind, 0)
    if total < 8:
        order = (Kind.PUBLIC, Kind.CONFIDENTIAL, Kind.PII, Kind.IMAGE, Kind.LONG_CONTEXT)
        for kind in order[:total]:
            counts[kind] = 1
        if total == 6:
            counts[Kind.PUBLIC] = 2
        elif total == 7:
            counts[Kind.BURST] = 2  # a burst of one saturates nothing
        return counts
    counts[Kind.IMAGE] = 1
    counts[Kind.LONG_CONTEXT] = 1
    counts[Kind.BURST] = max(2, total // 4)
    rest = total - 2 - counts[Kind.BURST]
    counts[Kind.PUBLIC] = math.ceil(rest * 0.4)
    counts[Kind.CONFIDENTIAL] = (rest - counts[Kind.PUBLIC]) // 2
    counts[Kind.PII] = rest - counts[Kind.PUBLIC] - counts[Kind.CONFIDENTIAL]
    return counts


def build_workload(total: int) -> WorkloadPlan:
    counts = plan_counts(total)
    serial = 0

    def next_reference() -> str:
        nonlocal serial
        serial += 1
        return f"D-{serial:03d}"

    def chat(reference: str, content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [system_message(reference), {"role": "user", "content": content}]

    by_kind: dict[Kind, list[WorkloadItem]] = {kind: [] for kind in Kind}
    for index in range(counts[Kind.PUBLIC]):
        reference = next_reference()
        question = PUBLIC_QUESTIONS[index % len(PUBLIC_QUESTIONS)]
        by_kind[Kind.PUBLIC].append(
            WorkloadItem(
                reference,
                Kind.PUBLIC,
                chat(reference, question),
                None,
                False,
                stream=index % 3 == 1,
            )
        )
    for index in range(counts[Kind.CONFIDENTIAL]):
        reference = next_reference()
        codename = f"{CODENAMES[index % len(CODENAMES)]}-{4821 + index}"
        task = CONFIDENTIAL_TASKS[index % len(CONFIDENTIAL_TASKS)].format(codename=codename)
        by_kind[Kind.CONFIDENTIAL].append(
            WorkloadItem(
                reference,
                Kind.CONFIDENTIAL,
                chat(reference, task),
                "confidential",
                True,
                stream=index % 2 == 1,
                secrets=(codename,),
            )
        )
    for index in range(counts[Kind.PII]):
        reference = next_reference()
        template, field_name = PII_TEMPLATES[index % len(PII_TEMPLATES)]
        value = {
            "email": EMAILS[index % len(EMAILS)],
            "card": CARDS[index % len(CARDS)],
            "phone": PHONES[index % len(PHONES)],
            "iban": IBANS[index % len(IBANS)],
        }[field_name]
        prompt = template.format(**{field_name: value})
        # Declared public on purpose: only the router's PII detection keeps these in-house.
        by_kind[Kind.PII].append(
            WorkloadItem(
                reference,
                Kind.PII,
                chat(reference, prompt),
                "public",
                True,
                stream=index % 2 == 0,
                secrets=(value,),
            )
        )
    for _ in range(counts[Kind.IMAGE]):
        reference = next_reference()
        parts: list[dict[str, Any]] = [
            {"type": "text", "text": "What colour is this pixel?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}},
        ]
        by_kind[Kind.IMAGE].append(
            WorkloadItem(reference, Kind.IMAGE, chat(reference, parts), None, False, stream=False)
        )
    for _ in range(counts[Kind.LONG_CONTEXT]):
        reference = next_reference()
        prompt = "Which routes returned 503 in this log?\n\n" + long_document()
        by_kind[Kind.LONG_CONTEXT].append(
            WorkloadItem(
                reference, Kind.LONG_CONTEXT, chat(reference, prompt), None, False, stream=False
            )
        )
    for index in range(counts[Kind.BURST]):
        reference = next_reference()
        stream = index % 2 == 0
        if index % 4 == 3:
            # Confidential requests in the burst must wait for the busy in-house model: spilling
            # over is for public traffic only.
            codename = f"{CODENAMES[index % len(CODENAMES)]}-{7100 + index}"
            task = CONFIDENTIAL_TASKS[index % len(CONFIDENTIAL_TASKS)].format(codename=codename)
            item = WorkloadItem(
                reference,
                Kind.BURST,
                chat(reference, task),
                "confidential",
                True,
                stream,
                secrets=(codename,),
            )
        else:
            question = PUBLIC_QUESTIONS[(index + 5) % len(PUBLIC_QUESTIONS)]
            item = WorkloadItem(
                reference, Kind.BURST, chat(reference, question), None, False, stream
            )
        by_kind[Kind.BURST].append(item)
    return WorkloadPlan(phase=interleave(by_kind), burst=by_kind[Kind.BURST])


def interleave(by_kind: dict[Kind, list[WorkloadItem]]) -> list[WorkloadItem]:
    """Mix the non-burst kinds the way real traffic arrives, not in blocks."""
    queues = [list(items) for kind, items in by_kind.items() if kind is not Kind.BURST]
    mixed: list[WorkloadItem] = []
    while any(queues):
        for queue in queues:
            if queue:
                mixed.append(queue.pop(0))
    return mixed
