"""The privacy invariant, end to end: whatever the request and whatever state the backends are in,
nothing confidential or carrying PII reaches an external upstream, on the first attempt or on any
fallback.

Hypothesis generates both sides. Requests: data-class headers (none, one, or two), the tenant's
default class, PII of every type the detectors know (validated values: Luhn-valid cards, mod-97
IBANs, real country codes...), in ASCII, full-width or another script's digits, in the system
or developer prompt, a user message, a content part, an assistant turn or refusal, tool-call
arguments, a tool result, a tool definition, a response schema, predicted output or the `user`
field; `auto` or a pinned backend; streamed or not; images, tools, JSON mode.

Backend health: every upstream healthy, slow, answering 500/503/429, dropping the connection,
refusing it (server stopped), or cutting a stream before or after its first event; in-cluster
backends scaled to zero (and perhaps becoming ready while a request waits); failures seen just
before, which leave a backend in cooldown, one failure short of it, or past its end. The
upstreams' connections and the router's connection pool carry over from example to example; the
router's shared state does not, so that each example replays the same way.

Each example sends its requests, concurrently, through the real router app (`create_app`, in
process over `httpx.ASGITransport`) to real loopback upstreams on 127.0.0.1, then looks for each
request's sentinel (a unique word inside its prompt) in every body each upstream received, and
for the PII values themselves in every external one. The cheapest backend is external, so a
request that may leave the cluster normally does: the run asserts that many did reach an external
upstream, so the property is not vacuous.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import random
import string
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from modelplane.router.adapters.live import CatalogChanges
from modelplane.router.api.app import create_app
from modelplane.router.catalog import Catalog, CatalogSource, catalog_from_config
from modelplane.router.config import parse_config
from modelplane.router.policy.types import DataClass, Location, PiiType
from modelplane.router.service import RouterService
from modelplane.router.state import AttemptObservation, CooldownPolicy, InProcessState

from modelplane.testing.processes import free_port
from modelplane.testing.router_config import router_config_text
from modelplane.testing.telemetry import CapturedTelemetry
from modelplane.testing.upstream import LoopbackUpstream

MAX_EXAMPLES = 400
COOLDOWN = CooldownPolicy(failures=2, seconds=30.0)
IN_CLUSTER_TIMEOUT_S = 0.5  # also how long a request waits for a backend scaled to zero
EXTERNAL_TIMEOUT_S = 2.0
EXAMPLE_TIMEOUT_S = 20.0


# --------------------------------------------------------------------------- the deployment


@dataclass(frozen=True)
class BackendSpec:
    name: str
    location: Location
    capabilities: frozenset[str]
    usd_per_mtok: tuple[float, float]  # input, output

    @property
    def external(self) -> bool:
        return self.location is Location.EXTERNAL


ALL_CAPABILITIES = frozenset({"chat", "tools", "json", "images"})
BACKENDS = (
    # The cheapest backend is external: a request that may leave the cluster goes there first.
    BackendSpec("gpt-4o-mini", Location.EXTERNAL, ALL_CAPABILITIES, (0.01, 0.01)),
    BackendSpec("llama-small", Location.IN_CLUSTER, frozenset({"chat", "json"}), (0.05, 0.05)),
    BackendSpec(
        "llama-tools", Location.IN_CLUSTER, frozenset({"chat", "tools", "json"}), (0.1, 0.1)
    ),
    BackendSpec("llama-vision", Location.IN_CLUSTER, ALL_CAPABILITIES, (0.2, 0.2)),
    BackendSpec("gpt-4o", Location.EXTERNAL, ALL_CAPABILITIES, (2.5, 10.0)),
)
BACKEND_BY_NAME = {backend.name: backend for backend in BACKENDS}
IN_CLUSTER = tuple(backend.name for backend in BACKENDS if not backend.external)
EXTERNAL = tuple(backend.name for backend in BACKENDS if backend.external)


@dataclass(frozen=True)
class TenantSpec:
    name: str
    default_data_class: DataClass
    allowed_backends: frozenset[str] | None = None
    over_budget: bool = False  # a zero budget with `over_budget: in-cluster-only`

    @property
    def key(self) -> str:
        return f"key-{self.name}"


TENANTS = (
    TenantSpec("public-team", DataClass.PUBLIC),
    TenantSpec("internal-team", DataClass.INTERNAL),
    TenantSpec("secure-team", DataClass.CONFIDENTIAL),
    TenantSpec(
        "restricted-team", DataClass.PUBLIC, frozenset({"llama-small", "llama-tools", "gpt-4o"})
    ),
    TenantSpec("over-budget-team", DataClass.PUBLIC, over_budget=True),
)
TENANT_BY_NAME = {tenant.name: tenant for tenant in TENANTS}


def router_config(upstreams: dict[str, LoopbackUpstream]) -> str:
    backends = [
        {
            "name": spec.name,
            "model": f"{'openai' if spec.external else 'hosted_vllm'}/{spec.name}",
            "api_base": upstreams[spec.name].base_url,
            "location": spec.location.value,
            "context_window": 128_000 if spec.external else 16_384,
            "capabilities": sorted(spec.capabilities),
            "input_usd_per_mtok": spec.usd_per_mtok[0],
            "output_usd_per_mtok": spec.usd_per_mtok[1],
            "timeout_s": EXTERNAL_TIMEOUT_S if spec.external else IN_CLUSTER_TIMEOUT_S,
            **({"api_key": "sk-provider-key"} if spec.external else {}),
        }
        for spec in BACKENDS
    ]
    tenants: list[dict[str, Any]] = []
    for tenant in TENANTS:
        entry: dict[str, Any] = {
            "name": tenant.name,
            "api_keys": [tenant.key],
            "default_data_class": tenant.default_data_class.value,
        }
        if tenant.allowed_backends is not None:
            entry["allowed_backends"] = sorted(tenant.allowed_backends)
        if tenant.over_budget:
            entry |= {"daily_budget_usd": 0, "over_budget": "in-cluster-only"}
        tenants.append(entry)
    return router_config_text(
        backends,
        tenants,
        policy={"pii_detection": True},
        cooldown={"failures": COOLDOWN.failures, "seconds": COOLDOWN.seconds},
    )


# --------------------------------------------------------------------------- PII values

# Each form draws its random parts from a seeded generator: secrets must look random to be
# secrets (the detectors skip low-entropy placeholders), which shrunk Hypothesis text never does.
Form = Callable[[random.Random], str]

NAMES = ("jane", "omar", "li", "sofia", "kwame", "anna", "raj", "maria")
DOMAINS = ("example.com", "corp.example.org", "mail.example.de", "example.co.uk")
ALNUM = string.ascii_letters + string.digits
BASE32 = string.ascii_uppercase + "234567"
BASE64 = ALNUM + "+/"
BASE64URL = ALNUM + "-_"


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choices(string.digits, k=count))


def random_secret(rng: random.Random, alphabet: str, length: int) -> str:
    """Random characters with at least one digit, one capital and one small letter."""
    chars = rng.choices(alphabet, k=length - 3)
    chars += [rng.choice(string.digits), rng.choice("ABCDEFGHJK"), rng.choice("mnpqrs")]
    rng.shuffle(chars)
    return "".join(chars)


def luhn_completed(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + digits(rng, length - len(prefix) - 1)
    total = 0
    for index, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def grouped(value: str, sizes: tuple[int, ...], separator: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(value[start : start + size])
        start += size
    return separator.join(parts)


def iban(country: str, bban: str) -> str:
    numeric = (bban + country + "00").translate(
        str.maketrans({letter: str(ord(letter) - 55) for letter in string.ascii_uppercase})
    )
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def nanp(rng: random.Random) -> tuple[str, str, str]:
    area = str(rng.randint(2, 9)) + rng.choice("0257") + digits(rng, 1)
    exchange = str(rng.randint(2, 9)) + digits(rng, 2)
    return area, exchange, digits(rng, 4)


def ssn_digits(rng: random.Random) -> tuple[str, str, str]:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"


def ipv4(rng: random.Random) -> str:
    first = rng.choice([n for n in range(1, 224) if n != 127])
    return ".".join(str(octet) for octet in (first, *rng.choices(range(256), k=3)))


def ipv6(rng: random.Random) -> str:
    groups = ["2001", "db8", *(f"{rng.randrange(1, 0xFFFF):x}" for _ in range(3))]
    return ":".join(groups[:2]) + f":{rng.randint(1, 9)}::" + ":".join(groups[2:])


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    header = b64url({"alg": "HS256", "typ": "JWT"})
    claims = b64url({"sub": digits(rng, 8), "name": rng.choice(NAMES)})
    return f"{header}.{claims}.{random_secret(rng, BASE64URL, 43)}"


def pem_private_key(rng: random.Random) -> str:
    lines = [random_secret(rng, BASE64, 64) for _ in range(3)]
    return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----"


PII_FORMS: dict[PiiType, dict[str, Form]] = {
    PiiType.EMAIL: {
        "dotted": lambda r: f"{r.choice(NAMES)}.{r.choice(NAMES)}@{r.choice(DOMAINS)}",
        "plus-tag": lambda r: f"{r.choice(NAMES)}+{digits(r, 3)}@{r.choice(DOMAINS)}",
    },
    PiiType.PHONE: {
        "e164-uk": lambda r: f"+44 20 {digits(r, 4)} {digits(r, 4)}",
        "e164-de": lambda r: f"+49 30 {digits(r, 7)}",
        "nanp-parenthesised": lambda r: "({}) {}-{}".format(*nanp(r)),
        "nanp-dashed": lambda r: "{}-{}-{}".format(*nanp(r)),
        "nanp-international": lambda r: "+1 {} {} {}".format(*nanp(r)),
        "uk-trunk": lambda r: f"020 {digits(r, 4)} {digits(r, 4)}",
    },
    PiiType.PAYMENT_CARD: {
        "visa-spaced": lambda r: grouped(luhn_completed("4", 16, r), (4, 4, 4, 4), " "),
        "visa-unbroken": lambda r: luhn_completed("4", 16, r),
        "mastercard-dashed": lambda r: grouped(
            luhn_completed(str(r.randint(51, 55)), 16, r), (4, 4, 4, 4), "-"
        ),
        "amex": lambda r: grouped(luhn_completed("37", 15, r), (4, 6, 5), " "),
    },
    PiiType.IBAN: {
        "de-spaced": lambda r: grouped(iban("DE", digits(r, 18)), (4, 4, 4, 4, 4, 2), " "),
        "gb-compact": lambda r: iban("GB", "NWBK" + digits(r, 14)),
        "nl-compact": lambda r: iban("NL", "ABNA" + digits(r, 10)),
        "fr-spaced": lambda r: grouped(iban("FR", digits(r, 23)), (4, 4, 4, 4, 4, 4, 3), " "),
    },
    PiiType.US_SSN: {
        "dashed": lambda r: "-".join(ssn_digits(r)),
        "spaced": lambda r: " ".join(ssn_digits(r)),
        "after-ssn-word": lambda r: "SSN " + "".join(ssn_digits(r)),
    },
    PiiType.IP_ADDRESS: {"ipv4": ipv4, "ipv6": ipv6},
    PiiType.CREDENTIAL: {
        "aws-access-key": lambda r: "AKIA" + "".join(r.choices(BASE32, k=16)),
        "github-token": lambda r: "ghp_" + random_secret(r, ALNUM, 36),
        "openai-key": lambda r: "sk-proj-" + random_secret(r, ALNUM, 40),
        "slack-token": lambda r: (
            f"xoxb-{digits(r, 11)}-{digits(r, 12)}-" + random_secret(r, ALNUM, 24)
        ),
        "jwt": jwt,
        "bearer": lambda r: "Authorization: Bearer " + random_secret(r, ALNUM, 40),
        "assignment": lambda r: "DB_PASSWORD=" + random_secret(r, ALNUM, 20),
        "pem-private-key": pem_private_key,
    },
}

# Where in a request PII can sit.
PLACES = (
    "system",
    "developer",
    "user",
    "user-part",
    "assistant",
    "tool-arguments",
    "tool-result",
    "tool-result-part",
    "follow-up",
    # Outside the messages' content, and still sent to the provider:
    "refusal",  # an assistant turn's refusal
    "prediction",  # predicted output
    "tool-definition",  # a tool's description
    "response-schema",  # a JSON schema's description
    "end-user-id",  # the `user` field
)

# Prose around the PII and numbers that are not PII (references, dates, versions): a public
# request carrying them may still leave the cluster.
WORDS = (
    "please",
    "summarise",
    "the",
    "meeting",
    "notes",
    "draft",
    "a",
    "reply",
    "about",
    "quarterly",
    "plan",
    "customer",
    "contact",
    "is",
    "below",
    "thanks",
    "write",
    "to",
)
DECOYS = (
    "order no. 0123 456 789",
    "on 2024-05-17 at 10:42:17",
    "version 10.2.3.4",
    "invoice 4111 1111",
    "ISBN 978-3-16-148410-0",
    "room 1204, floor 12",
)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class PiiSample:
    type: PiiType
    form: str
    value: str
    place: str


@st.composite
def pii_samples(draw: st.DrawFn) -> PiiSample:
    kind = draw(st.sampled_from(sorted(PII_FORMS)))
    form = draw(st.sampled_from(sorted(PII_FORMS[kind])))
    seed = draw(st.integers(min_value=0, max_value=2**32))
    place = draw(st.sampled_from(PLACES))
    value = PII_FORMS[kind][form](random.Random(seed))
    # How people outside the ASCII world type the same value.
    script = draw(st.sampled_from(["ascii"] * 6 + ["full-width", *NATIVE_DIGITS]))
    if kind is not PiiType.CREDENTIAL and script == "full-width":
        form, value = f"{form}, full-width", full_width(value)
    elif kind is not PiiType.CREDENTIAL and script in NATIVE_DIGITS:
        form, value = f"{form}, {script} digits", value.translate(NATIVE_DIGITS[script])
    return PiiSample(kind, form, value, place)


NATIVE_DIGITS = {
    "arabic-indic": str.maketrans(string.digits, "".join(map(chr, range(0x0660, 0x066A)))),
    "devanagari": str.maketrans(string.digits, "".join(map(chr, range(0x0966, 0x0970)))),
}


def full_width(text: str) -> str:
    """`text` as a CJK input method in full-width mode types it (U+FF01-U+FF5E for ASCII)."""
    return text.translate({code: code + 0xFEE0 for code in range(0x21, 0x7F)})


DECLARED_VALUES = (
    *("public", "internal", "confidential") * 3,
    *("Confidential", " public "),
    "secret",  # no such class: 400
)


@dataclass(frozen=True)
class RequestCase:
    tenant: str
    declared: tuple[str, ...]  # x-modelplane-data-class headers, in order
    model: str
    stream: bool
    images: bool
    tools: bool
    json_mode: bool
    max_tokens: int | None
    pii: tuple[PiiSample, ...]
    decoy: str | None
    words: tuple[str, ...]

    @property
    def tenant_spec(self) -> TenantSpec:
        return TENANT_BY_NAME[self.tenant]

    def has_pii_at(self, place: str) -> bool:
        return any(sample.place == place for sample in self.pii)

    @property
    def uses_tools(self) -> bool:
        return self.tools or self.has_pii_at("tool-definition")

    @property
    def json_mode_used(self) -> bool:
        return self.json_mode or self.has_pii_at("response-schema")


request_cases = st.builds(
    RequestCase,
    tenant=st.sampled_from(sorted(TENANT_BY_NAME)),
    declared=st.lists(st.sampled_from(DECLARED_VALUES), max_size=2).map(tuple) | st.just(()),
    model=st.sampled_from(["auto"] * 10 + sorted(BACKEND_BY_NAME) + ["gpt-5"]),
    stream=st.booleans(),
    images=st.booleans(),
    tools=st.booleans(),
    json_mode=st.booleans(),
    max_tokens=st.none() | st.integers(min_value=1, max_value=512),
    pii=st.lists(pii_samples(), max_size=2).map(tuple) | st.just(()),
    decoy=st.none() | st.sampled_from(DECOYS),
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(tuple),
)

PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2O"
    "UAAAAABJRU5ErkJggg=="
)


def build_body(case: RequestCase, sentinel: str) -> dict[str, Any]:
    """The chat-completion body of `case`, with `sentinel` in its first user message."""

    def text_at(place: str, lead: str) -> str:
        found = [f"{sample.value}" for sample in case.pii if sample.place == place]
        return " ".join([lead, *found]) if found else lead

    prose = " ".join(case.words)
    messages: list[dict[str, Any]] = []
    system = text_at("system", "You are a careful assistant.")
    if system != "You are a careful assistant." or case.tools:
        messages.append({"role": "system", "content": system})
    if any(sample.place == "developer" for sample in case.pii):
        messages.append({"role": "developer", "content": text_at("developer", "Answer briefly.")})
    first = text_at("user", f"{sentinel} {prose}" + (f" {case.decoy}" if case.decoy else ""))
    part = text_at("user-part", "")
    if case.images or part:
        parts: list[dict[str, Any]] = [{"type": "text", "text": first}]
        if part:
            parts.append({"type": "text", "text": part.strip()})
        if case.images:
            parts.append({"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}})
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": first})
    places = {sample.place for sample in case.pii}
    if "assistant" in places:
        messages.append({"role": "assistant", "content": text_at("assistant", "Noted:")})
    if "refusal" in places:
        refusal = text_at("refusal", "I cannot share")
        messages.append({"role": "assistant", "content": None, "refusal": refusal})
    if places & {"tool-arguments", "tool-result", "tool-result-part"}:
        arguments = {
            "query": prose,
            **{
                f"field_{index}": sample.value
                for index, sample in enumerate(case.pii)
                if sample.place == "tool-arguments"
            },
        }
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": orjson.dumps(arguments).decode()},
        }
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        result = {
            "status": "ok",
            **{
                f"value_{index}": sample.value
                for index, sample in enumerate(case.pii)
                if sample.place == "tool-result"
            },
        }
        content: Any = orjson.dumps(result).decode()
        if "tool-result-part" in places:
            content = [{"type": "text", "text": text_at("tool-result-part", "Found:")}]
        messages.append({"role": "tool", "tool_call_id": "call_1", "content": content})
    messages.append({"role": "user", "content": text_at("follow-up", "Go on.")})
    body: dict[str, Any] = {"model": case.model, "messages": messages}
    if case.stream:
        body["stream"] = True
    if case.uses_tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": text_at("tool-definition", "Look a record up."),
                    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
                },
            }
        ]
    if case.has_pii_at("response-schema"):
        schema = {"type": "object", "description": text_at("response-schema", "An answer.")}
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema},
        }
    elif case.json_mode:
        body["response_format"] = {"type": "json_object"}
    if case.has_pii_at("prediction"):
        body["prediction"] = {"type": "content", "content": text_at("prediction", "Dear")}
    if case.has_pii_at("end-user-id"):
        body["user"] = text_at("end-user-id", "").strip()
    if case.max_tokens is not None:
        body["max_tokens"] = case.max_tokens
    return body


# --------------------------------------------------------------------------- backend health

FAULTS = (
    *(["healthy"] * 8),
    "slow",
    "http-500",
    "http-503",
    "http-429",
    "drop-connection",
    "refused",
    "cut-before-first-event",
    "cut-mid-stream",
)


@dataclass(frozen=True)
class Condition:
    fault: str
    ready: bool  # False: scaled to zero (in-cluster backends only)
    earlier_failures: int  # failed attempts observed just before the example

    def fails(self, stream: bool) -> bool:
        """Whether a request sent to it fails before its first byte (so the router moves on)."""
        if self.fault in ("healthy", "slow", "cut-mid-stream"):
            return False
        if self.fault == "cut-before-first-event":
            return stream
        return True


@dataclass(frozen=True)
class World:
    conditions: dict[str, Condition]
    clock_advance_s: float
    ready_later: bool  # every backend scaled to zero becomes ready while the requests run


@st.composite
def worlds(draw: st.DrawFn) -> World:
    conditions = {}
    for spec in BACKENDS:
        conditions[spec.name] = Condition(
            fault=draw(st.sampled_from(FAULTS)),
            ready=spec.external or draw(st.sampled_from([True, True, True, False])),
            earlier_failures=draw(st.sampled_from([0, 0, 0, 1, 2])),
        )
    return World(
        conditions=conditions,
        clock_advance_s=draw(st.sampled_from([0.0, 0.0, 1.0, COOLDOWN.seconds + 1])),
        # Mostly: a request that waits for one sees it become ready (each wait that ends
        # unanswered costs the backend's whole timeout).
        ready_later=draw(st.sampled_from([True, True, True, False])),
    )


# --------------------------------------------------------------------------- the oracle


def declared_class(case: RequestCase) -> DataClass | None:
    """The class the headers declare (the most restrictive of them), None when they declare none.

    Raises ValueError for a value the router must reject."""
    classes = [DataClass(value.strip().lower()) for value in case.declared]
    order = list(DataClass)
    return max(classes, key=order.index) if classes else None


def must_stay_in_cluster(case: RequestCase) -> bool:
    declared = declared_class(case)
    tenant_confidential = case.tenant_spec.default_data_class is DataClass.CONFIDENTIAL
    return (
        declared is DataClass.CONFIDENTIAL
        or tenant_confidential  # the tenant's class is a floor no header lowers
        or bool(case.pii)
        or case.tenant_spec.over_budget
    )


def request_kind(case: RequestCase) -> str:
    """The reason a request must stay in the cluster, or that it may leave."""
    declared = declared_class(case)
    if case.pii:
        return "pii"
    if declared is DataClass.CONFIDENTIAL:
        return "confidential (header)"
    if case.tenant_spec.default_data_class is DataClass.CONFIDENTIAL:
        return "confidential (tenant default)"
    if case.tenant_spec.over_budget:
        return "over budget (in-cluster only)"
    return "may leave"


def needed_capabilities(case: RequestCase) -> frozenset[str]:
    return frozenset(
        name
        for name, used in (
            ("images", case.images),
            ("tools", case.uses_tools),
            ("json", case.json_mode_used),
        )
        if used
    )


@dataclass(frozen=True)
class Expectation:
    status: int | None  # an exact status, or None for "200 or 503"
    allowed: frozenset[str]  # the backends the request may reach at all


def expect(
    case: RequestCase, world: World, cooling_down: frozenset[str], ready_later: bool
) -> Expectation:
    nothing = frozenset[str]()
    try:
        stays = must_stay_in_cluster(case)
    except ValueError:
        return Expectation(400, nothing)
    tenant = case.tenant_spec
    if case.model != "auto" and case.model not in BACKEND_BY_NAME:
        return Expectation(404, nothing)
    candidates = [case.model] if case.model != "auto" else list(BACKEND_BY_NAME)
    candidates = [
        name
        for name in candidates
        if tenant.allowed_backends is None or name in tenant.allowed_backends
    ]
    if not candidates:  # a tenant cannot see the backends it may not use
        return Expectation(404, nothing)
    permitted = [name for name in candidates if not (stays and BACKEND_BY_NAME[name].external)]
    if not permitted:
        return Expectation(403, nothing)
    needed = needed_capabilities(case)
    capable = frozenset(name for name in permitted if needed <= BACKEND_BY_NAME[name].capabilities)
    healthy = frozenset(name for name in capable if name not in cooling_down)
    eligible_now = frozenset(name for name in healthy if world.conditions[name].ready)
    # With nothing eligible, the request waits for a backend scaled to zero to become ready.
    later = (healthy - eligible_now) if ready_later and not eligible_now else nothing
    if any(not world.conditions[name].fails(case.stream) for name in eligible_now | later):
        return Expectation(200, capable)
    return Expectation(None, capable)


# --------------------------------------------------------------------------- the harness


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Outcome:
    case: RequestCase
    sentinel: str
    status: int
    backend: str | None
    body: bytes


@dataclass
class Tally:
    """What the run did, for the final assertions and the report."""

    examples: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    reached_external: Counter[str] = dataclasses.field(default_factory=Counter)
    pii_types: Counter[str] = dataclasses.field(default_factory=Counter)
    pii_places: Counter[str] = dataclasses.field(default_factory=Counter)
    pii_scripts: Counter[str] = dataclasses.field(default_factory=Counter)
    faults: Counter[str] = dataclasses.field(default_factory=Counter)
    # Requests that had a fault-free backend they could use, and those of them answered 200.
    healthy_path: Counter[str] = dataclasses.field(default_factory=Counter)
    healthy_path_served: Counter[str] = dataclasses.field(default_factory=Counter)

    def report(self) -> str:
        lines = [f"examples: {self.examples}, requests: {sum(self.requests.values())}"]
        lines += [f"  {key}: {count}" for key, count in sorted(self.requests.items())]
        lines.append("requests whose sentinel reached an external upstream, by kind:")
        lines += [f"  {key}: {count}" for key, count in sorted(self.reached_external.items())]
        lines += [
            f"with a fault-free path, {kind}: {self.healthy_path_served[kind]} of {count} served"
            for kind, count in sorted(self.healthy_path.items())
        ]
        lines.append(f"PII types: {dict(sorted(self.pii_types.items()))}")
        lines.append(f"PII places: {dict(sorted(self.pii_places.items()))}")
        lines.append(f"PII written in: {dict(sorted(self.pii_scripts.items()))}")
        lines.append(f"backend conditions: {dict(sorted(self.faults.items()))}")
        return "\n".join(lines)


class Harness:
    """The router app and its upstreams on one event loop that outlives each example."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner
        self.clock = ManualClock()
        self.state = InProcessState(clock=self.clock, cooldown=COOLDOWN)
        # Fixed ports, so a stopped upstream (connection refused) comes back where it was.
        self.upstreams = {
            spec.name: LoopbackUpstream(model=spec.name, port=free_port()) for spec in BACKENDS
        }
        self.running: dict[str, bool] = dict.fromkeys(self.upstreams, False)
        self.tally = Tally()
        self.captured = CapturedTelemetry()
        self._sentinels = 0
        self._stack = AsyncExitStack()

    async def start(self) -> None:
        for name in self.upstreams:
            await self._set_running(name, True)
        config = parse_config(router_config(self.upstreams))
        self.base_catalog = catalog_from_config(config, price_map={})
        self.source = CatalogSource(self.base_catalog)
        app = create_app(
            self.source,
            self.state,
            max_attempts=len(BACKENDS),  # every eligible backend may be tried
            telemetry=self.captured.telemetry,  # as `router serve` runs: traces, metrics, audit
            catalog_changes=CatalogChanges(self.source),
        )
        self.service: RouterService = app.state.router
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://router",
                timeout=EXAMPLE_TIMEOUT_S,
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self.captured.shutdown()
        for upstream in self.upstreams.values():
            await upstream.stop()

    async def _set_running(self, name: str, running: bool) -> None:
        if self.running[name] == running:
            return
        upstream = self.upstreams[name]
        await (upstream.start() if running else upstream.stop())
        self.running[name] = running

    def catalog_with_readiness(self, ready: dict[str, bool]) -> Catalog:
        base = self.base_catalog
        backends = {
            name: dataclasses.replace(
                backend, snapshot=dataclasses.replace(backend.snapshot, ready=ready[name])
            )
            for name, backend in base.backends.items()
        }
        return Catalog(
            backends=backends,
            tenants_by_key_hash=base.tenants_by_key_hash,
            settings=base.settings,
            revision=f"example-{self.tally.examples}",
        )

    async def apply(self, world: World) -> None:
        """Set every upstream's fault, then the router's health and readiness view.

        Each example starts from fresh router state, so that a failing example replays the
        same way while Hypothesis shrinks it; the cooldowns and failure counts earlier traffic
        would have left are part of the generated world instead.
        """
        self.state = InProcessState(clock=self.clock, cooldown=COOLDOWN)
        self.service.state = self.state
        for name, condition in world.conditions.items():
            upstream = self.upstreams[name]
            upstream.reset()
            fault = condition.fault
            faults = upstream.faults
            faults.status = {"http-500": 500, "http-503": 503, "http-429": 429}.get(fault)
            faults.drop_connection = fault == "drop-connection"
            faults.fail_stream_after_events = {
                "cut-before-first-event": 0,
                "cut-mid-stream": 2,
            }.get(fault)
            upstream.behaviour.ttft_s = 0.02 if fault == "slow" else 0.0
            await self._set_running(name, fault != "refused")
            for _ in range(condition.earlier_failures):
                await self.state.observe(AttemptObservation(backend=name, ok=False))
        self.clock.now += world.clock_advance_s  # past a cooldown's end, or not
        self.source.replace(
            self.catalog_with_readiness(
                {name: condition.ready for name, condition in world.conditions.items()}
            )
        )

    async def cooling_down(self) -> frozenset[str]:
        health = await self.state.backend_health()
        return frozenset(name for name, entry in health.items() if entry.in_cooldown)

    def next_sentinel(self) -> str:
        self._sentinels += 1
        number, letters = self._sentinels, ""
        while number:
            number, digit = divmod(number, 26)
            letters += string.ascii_lowercase[digit]
        return f"sentinel{letters}"

    async def send(self, case: RequestCase) -> Outcome:
        sentinel = self.next_sentinel()
        headers = [("authorization", f"Bearer {case.tenant_spec.key}")]
        headers += [("x-modelplane-data-class", value) for value in case.declared]
        response = await self.client.post(
            "/v1/chat/completions",
            content=orjson.dumps(build_body(case, sentinel)),
            headers=headers,
        )
        return Outcome(
            case,
            sentinel,
            response.status_code,
            response.headers.get("x-modelplane-backend"),
            response.content,
        )

    async def run_example(
        self, world: World, cases: list[RequestCase]
    ) -> tuple[list[Outcome], frozenset[str], frozenset[str]]:
        await self.apply(world)
        before = await self.cooling_down()
        becoming_ready: asyncio.Task[None] | None = None
        if world.ready_later and not all(c.ready for c in world.conditions.values()):
            becoming_ready = asyncio.create_task(self._become_ready(world))
        async with asyncio.timeout(EXAMPLE_TIMEOUT_S):
            outcomes = await asyncio.gather(*(self.send(case) for case in cases))
            if becoming_ready is not None:
                await becoming_ready
        return outcomes, before, await self.cooling_down()

    async def _become_ready(self, world: World) -> None:
        await asyncio.sleep(0.02)
        self.source.replace(self.catalog_with_readiness(dict.fromkeys(world.conditions, True)))

    def reached(self, sentinel: str) -> frozenset[str]:
        """The backends whose upstream received a body holding `sentinel`."""
        return frozenset(
            name
            for name, upstream in self.upstreams.items()
            if any(sentinel in text for text in received_texts(upstream))
        )

    def external_pii(self, cases: list[RequestCase]) -> set[str]:
        """The PII values of `cases` that any external upstream received, in any request."""
        values = {sample.value for case in cases for sample in case.pii}
        return {
            value
            for name in EXTERNAL
            for text in received_texts(self.upstreams[name])
            for value in values
            if value in text
        }


def received_texts(upstream: LoopbackUpstream) -> Iterator[str]:
    """Every string in every body `upstream` received, as it arrived (JSON escapes decoded)."""
    for received in upstream.received:
        pending = [received.body]
        while pending:
            value = pending.pop()
            if isinstance(value, str):
                yield value
            elif isinstance(value, dict):
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with asyncio.Runner() as runner:
        harness = Harness(runner)
        runner.run(harness.start())
        try:
            yield harness
        finally:
            runner.run(harness.close())


# --------------------------------------------------------------------------- the property

ALL_HEALTHY = World(
    conditions={spec.name: Condition("healthy", True, 0) for spec in BACKENDS},
    clock_advance_s=0.0,
    ready_later=False,
)


def public_request_with(
    sample: PiiSample | None = None, declared: tuple[str, ...] = ()
) -> RequestCase:
    return RequestCase(
        tenant="public-team",
        declared=declared,
        model="auto",
        stream=False,
        images=False,
        tools=True,
        json_mode=False,
        max_tokens=None,
        pii=(sample,) if sample is not None else (),
        decoy=None,
        words=("please",),
    )


# Requests the property found leaving the cluster, replayed on every run. A header sent twice,
# `confidential` then `public`: the router read the last copy only. PII the scan did not cover:
# inside JSON (tool-call arguments, tool results) a private key's line breaks are escapes and
# "ssn" is glued to its quotes, so the raw text did not match; refusals, predicted output, tool
# definitions, response schemas and the `user` field were not scanned at all; full-width digits
# and symbols (CJK input) and the digits of other scripts matched no detector.
FOUND_LEAKS = [
    public_request_with(declared=("confidential", "public")),
    public_request_with(
        PiiSample(
            PiiType.CREDENTIAL,
            "pem-private-key",
            pem_private_key(random.Random(0)),
            "tool-arguments",
        )
    ),
    public_request_with(
        PiiSample(PiiType.US_SSN, "after-ssn-word", "SSN 866506891", "tool-result")
    ),
    public_request_with(PiiSample(PiiType.EMAIL, "dotted", "li.anna@example.com", "prediction")),
    public_request_with(
        PiiSample(PiiType.IBAN, "gb-compact", "GB82WEST12345698765432", "tool-definition")
    ),
    public_request_with(
        PiiSample(PiiType.PAYMENT_CARD, "visa-unbroken", "4111111111111111", "response-schema")
    ),
    public_request_with(PiiSample(PiiType.PHONE, "e164-uk", "+44 20 7946 0958", "refusal")),
    public_request_with(PiiSample(PiiType.EMAIL, "dotted", "raj.li@example.org", "end-user-id")),
    public_request_with(
        PiiSample(PiiType.PHONE, "e164-uk, full-width", full_width("+44 20 7946 0958"), "user")
    ),
    public_request_with(
        PiiSample(
            PiiType.PAYMENT_CARD,
            "visa-spaced, arabic-indic digits",
            "4111 1111 1111 1111".translate(NATIVE_DIGITS["arabic-indic"]),
            "user",
        )
    ),
]


def check(
    outcome: Outcome, reached: frozenset[str], expected: Expectation, exact: bool, world: World
) -> None:
    case = outcome.case
    label = request_kind(case) if expected.status != 400 else "invalid header"
    left = reached & set(EXTERNAL)
    if expected.status == 400 or must_stay_in_cluster(case):
        # The invariant itself, whatever the outcome.
        assert not left, f"{label} request reached external {sorted(left)}: {case}"
    if expected.status in (400, 403, 404):
        assert outcome.status == expected.status, (outcome.status, outcome.body, case)
        assert not reached, f"a refused request reached {sorted(reached)}: {case}"
        return
    # Only the backends the policy allows, whatever failed on the way.
    assert reached <= expected.allowed, (sorted(reached), sorted(expected.allowed), case)
    if outcome.status == 200:
        assert outcome.backend in expected.allowed, (outcome.backend, case)
        assert outcome.backend in reached, (outcome.backend, sorted(reached), case)
        if case.stream:
            # A stream either completes or, cut after its first event, ends in an error event.
            cut = world.conditions[outcome.backend].fault == "cut-mid-stream"
            ending = b"stream_interrupted" if cut else b'"finish_reason":"stop"'
            assert ending in outcome.body, (outcome.body, case)
            assert outcome.body.rstrip().endswith(b"data: [DONE]"), (outcome.body, case)
    if exact and expected.status == 200 and b"timed out" not in outcome.body:
        # A healthy path existed: the request must have been served (unless a busy machine
        # made a healthy upstream miss its timeout, which the 503 then names).
        assert outcome.status == 200, (outcome.status, outcome.body, case)
    assert outcome.status in (200, 503), (outcome.status, outcome.body, case)
    if outcome.status == 503:
        assert orjson.loads(outcome.body)["error"]["code"] == "no_eligible_backend"


@pytest.mark.timeout(120)
def test_no_confidential_or_pii_request_ever_reaches_an_external_upstream(
    harness: Harness,
) -> None:
    tally = harness.tally

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=worlds(), cases=st.lists(request_cases, min_size=1, max_size=3))
    @example(world=ALL_HEALTHY, cases=FOUND_LEAKS)
    def one_example(world: World, cases: list[RequestCase]) -> None:
        tally.examples += 1
        outcomes, cooling_before, cooling_after = harness.runner.run(
            harness.run_example(world, cases)
        )
        # The decisions saw `cooling_before`; if the requests' own failures changed it, a
        # later request may have seen fewer backends, so only the privacy part is exact.
        exact = cooling_before == cooling_after
        for outcome in outcomes:
            case = outcome.case
            reached = harness.reached(outcome.sentinel)
            expected = expect(case, world, cooling_before, world.ready_later)
            check(outcome, reached, expected, exact, world)
            kind = "invalid header" if expected.status == 400 else request_kind(case)
            where = ""
            if outcome.status == 200 and outcome.backend is not None:
                where = " external" if BACKEND_BY_NAME[outcome.backend].external else " in-cluster"
            tally.requests[f"{kind} -> {outcome.status}{where}"] += 1
            if reached & set(EXTERNAL):
                tally.reached_external[kind] += 1
            if exact and expected.status == 200:
                confined = "must stay" if must_stay_in_cluster(case) else "may leave"
                tally.healthy_path[confined] += 1
                tally.healthy_path_served[confined] += outcome.status == 200
            for sample in case.pii:
                tally.pii_types[sample.type.value] += 1
                tally.pii_places[sample.place] += 1
                tally.pii_scripts[sample.form.partition(", ")[2] or "ascii"] += 1
            event(f"{kind} -> {outcome.status}{where}")
        # Whatever request a value came from, no external upstream may see PII.
        assert not harness.external_pii(cases)
        for condition in world.conditions.values():
            tally.faults[condition.fault if condition.ready else "scaled-to-zero"] += 1

    one_example()
    print(tally.report())
    may_leave = sum(count for key, count in tally.requests.items() if key.startswith("may leave"))
    # Not vacuous: many requests that may leave the cluster did reach an external upstream (the
    # others pinned an in-cluster or unknown backend, or met faults), and every kind of
    # confined request met both outcomes, served in the cluster and refused.
    assert tally.reached_external["may leave"] >= max(50, may_leave // 4)
    assert set(tally.reached_external) <= {"may leave"}
    for kind in ("pii", "confidential (header)", "confidential (tenant default)"):
        assert tally.requests[f"{kind} -> 200 in-cluster"] > 0, kind
        assert tally.requests[f"{kind} -> 503"] + tally.requests[f"{kind} -> 403"] > 0, kind
    assert set(tally.pii_types) == {kind.value for kind in PiiType}
    assert set(tally.pii_places) == set(PLACES)
