"""Rewrite the expected manifests after an intended builder change; review the diff.

.venv/bin/python tests/unit/operator/expected/regenerate.py
"""

from __future__ import annotations

from pathlib import Path

import yaml
from modelplane.operator.builders import build_children
from modelplane.operator.settings import OperatorSettings

from modelplane.api import ModelDeployment

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
# Must match tests/unit/operator/conftest.py.
NAMESPACE = "ml"
UID = "6f1c1b52-4c2e-4f38-9d7e-3f1f0b7a9c10"
EXAMPLES = ("llama-3-8b-vllm.yaml", "llama-3-70b-tensor-parallel.yaml", "llama-3-8b-triton.yaml")


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the Triton model repository files) as readable blocks."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def render(example: str) -> str:
    for document in yaml.safe_load_all((REPO / "examples" / example).read_text()):
        if document and document.get("kind") == "ModelDeployment":
            document["metadata"].update({"namespace": NAMESPACE, "uid": UID})
            children = build_children(ModelDeployment.from_body(document), OperatorSettings())
            header = f"# build_children(examples/{example}) with default OperatorSettings\n"
            return header + yaml.dump_all(children, Dumper=_Dumper, sort_keys=True, width=100)
    raise LookupError(f"no ModelDeployment in {example}")


def main() -> None:
    for example in EXAMPLES:
        (HERE / example).write_text(render(example))


if __name__ == "__main__":
    main()
