"""`modelplane demo [--requests N]`. Cheap to import: the demo itself loads on use."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_REQUESTS = 48


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--requests",
        type=positive_int,
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"how many requests the workload sends (default {DEFAULT_REQUESTS})",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("MODELPLANE_CACHE_DIR", ".cache")) / "demo",
        help="where the llama.cpp build and the logs are kept between runs (default .cache/demo)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path.cwd(),
        help="where demo-report.png and demo-report.html are written (default: here)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from modelplane.demo.runner import DemoOptions, run_from_cli

    options = DemoOptions(
        requests=args.requests,
        cache_dir=args.cache_dir.resolve(),
        output_dir=args.output_dir.resolve(),
        openai_api_key=os.environ.get("OPENAI_API_KEY") or None,
    )
    return run_from_cli(options)
