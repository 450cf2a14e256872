"""The example ModelDeployments build exactly the reviewed manifests in expected/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.operator.builders import build_children
from modelplane.operator.settings import OperatorSettings

from modelplane.api import ModelDeployment

EXPECTED = Path(__file__).resolve().parent / "expected"
REGENERATE = ".venv/bin/python tests/unit/operator/expected/regenerate.py"


@pytest.mark.parametrize(
    "example",
    ["llama-3-8b-vllm.yaml", "llama-3-70b-tensor-parallel.yaml", "llama-3-8b-triton.yaml"],
)
def test_example_builds_the_expected_manifests(
    example_md: Callable[[str], ModelDeployment], example: str
) -> None:
    expected: list[dict[str, Any]] = list(yaml.safe_load_all((EXPECTED / example).read_text()))
    built = build_children(example_md(example), OperatorSettings())
    assert built == expected, f"builders changed: review, then run {REGENERATE}"
