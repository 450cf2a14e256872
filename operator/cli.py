"""`modelplane operator run`: start the operator against the cluster of the current kubeconfig
(or the in-cluster service account when running in a pod).

The operator runs standalone (no kopf peering): deploy exactly one replica.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="operator_command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="reconcile ModelDeployments, ExternalModels and RoutingPolicies",
        description="Reconcile the modelplane resources of one namespace or of the whole cluster.",
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", metavar="NS", help="serve this namespace (repeatable)"
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve every namespace (the default)"
    )
    run.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="operator settings YAML (image pins, GPU types, KEDA); defaults when omitted",
    )
    run.add_argument(
        "--resync-seconds",
        type=float,
        default=45.0,
        help="reconcile every resource at least this often, at most 60 (default: 45); child "
        "changes are repaired at once through watches, the resync is the safety net",
    )
    run.add_argument(
        "--liveness",
        metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(run=run_operator)


def run_operator(args: argparse.Namespace) -> int:
    import kopf
    from modelplane.operator.handlers import build_registry
    from modelplane.operator.reconcile import ReconcileOptions
    from modelplane.operator.settings import load_settings
    from pydantic import ValidationError

    try:
        settings = load_settings(args.settings)
        options = ReconcileOptions(resync_seconds=args.resync_seconds)
    except (ValidationError, OSError) as error:
        print(f"modelplane operator run: {error}", file=sys.stderr)
        return 2
    registry, _ = build_registry(settings, options)
    kopf.configure(verbose=args.verbose)
    namespaces = args.namespace or []
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0
