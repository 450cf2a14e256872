"""The `modelplane` command.

Each command group lives beside the code it drives and registers its own sub-commands; this
module only wires the groups together. Group modules must stay cheap to import (argparse only):
heavy imports such as LiteLLM or kopf happen inside the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Sequence

# (command, module with `register(subparsers)`, help)
COMMAND_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("router", "modelplane.router.cli", "run the OpenAI-compatible policy router"),
    ("operator", "modelplane.operator.cli", "run the Kubernetes operator"),
    ("demo", "modelplane.demo.cli", "run the whole routing path on this machine"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelplane",
        description="modelplane: policy routing between self-hosted and external LLMs.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMAND_GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue  # a group that is not built yet
        group = groups.add_parser(name, help=help_text, description=help_text)
        module.register(group)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # LiteLLM otherwise fetches its price map from the network at import and keeps retrying.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result
