"""The docs quote names the code defines: reason codes, metrics, headers, error codes, CLI flags.

Each test reads the names out of the Markdown and checks them against the running code's own
definitions, so a rename on either side fails here instead of leaving the docs wrong.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from modelplane.router import errors
from modelplane.router.adapters.telemetry import METRIC_NAMES
from modelplane.router.policy import engine

from modelplane.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCS = REPO_ROOT / "docs"

# Flags of other programs the docs mention (vLLM's arguments, helm's and kubectl's options).
OTHER_PROGRAMS_FLAGS = {
    "--model",
    "--served-model-name",
    "--tensor-parallel-size",
    "--max-model-len",
    "--wait",
    "--set",
    "--server-side",
    "--create-namespace",
    "--reuse-values",
    "--replicas",
    "--skip-crds",
}


def _doc(name: str) -> str:
    return (DOCS / name).read_text()


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def test_every_reason_code_in_the_policy_doc_is_one_the_engine_emits_and_vice_versa() -> None:
    emitted = {
        value
        for name, value in vars(engine).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z-]+(:[a-z-]+)?", value)
    }
    assert "privacy:external-blocked" in emitted
    documented = {
        span
        for span in _code_spans(_doc("policy.md"))
        if re.fullmatch(r"[a-z]+(-[a-z]+)*:[a-z]+(-[a-z]+)*", span)
    }
    documented |= {span for span in _code_spans(_doc("policy.md")) if span == "no-eligible-backend"}
    assert documented - emitted == set()
    assert emitted - documented == set()


_PROMETHEUS_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_seconds", "_USD")


def test_every_metric_in_the_operations_doc_is_exported_and_every_exported_one_documented() -> None:
    exported = {name.replace(".", "_") for name in METRIC_NAMES}
    # The first column of the metrics table: | `name` | type | labels | meaning |
    documented = set()
    for name in re.findall(
        r"^\| `((?:gen_ai|modelplane)_[A-Za-z_]+)` \|", _doc("operations.md"), re.M
    ):
        for suffix in _PROMETHEUS_SUFFIXES:
            name = name.removesuffix(suffix)
        documented.add(name)
    assert documented - exported == set()
    assert exported - documented == set()


def test_the_decision_headers_in_the_docs_are_the_ones_the_router_sends() -> None:
    source = (REPO_ROOT / "router" / "api" / "chat.py").read_text()
    sent = set(re.findall(r'b"(x-modelplane-[a-z-]+)"', source))
    assert len(sent) == 3
    documented = set(re.findall(r"x-modelplane-[a-z-]+", _doc("quickstart.md")))
    assert sent <= documented
    assert documented <= sent | {"x-modelplane-data-class"}  # also the request header


def test_the_error_table_lists_every_error_code_the_router_answers() -> None:
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.RouterError)
        and cls is not errors.RouterError
    }
    table = _doc("quickstart.md").split("## Errors", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", table))
    assert codes <= documented, codes - documented


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    options: set[str] = set()
    for action in parser._actions:
        options.update(option for option in action.option_strings if option.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                options |= _option_strings(subparser)
    return options


def test_every_modelplane_flag_the_docs_mention_exists() -> None:
    known = _option_strings(build_parser())
    assert {"--kubernetes", "--all-namespaces", "--settings"} <= known
    mentioned = {
        flag
        for name in (
            "quickstart.md",
            "architecture.md",
            "policy.md",
            "operations.md",
            "security.md",
        )
        for span in _code_spans(_doc(name))
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", span)
    }
    assert mentioned - OTHER_PROGRAMS_FLAGS - known == set()
