"""`modelplane router ...` commands. Cheap to import: the server stack loads inside `serve`."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="router_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the OpenAI-compatible API",
        description="Serve the OpenAI-compatible router API with the backends of a config file, "
        "or of the ModelDeployment, ExternalModel and RoutingPolicy resources of a namespace.",
    )
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="router YAML file")
    source.add_argument(
        "--kubernetes",
        action="store_true",
        help="build the catalog from the cluster's resources and follow their changes",
    )
    watched = serve.add_mutually_exclusive_group()
    watched.add_argument(
        "--namespace", help="namespace to watch with --kubernetes (default: the pod's or context's)"
    )
    watched.add_argument(
        "--all-namespaces",
        action="store_true",
        help="with --kubernetes, watch every namespace (backend names must be unique)",
    )
    serve.add_argument(
        "--redis-url",
        default=os.environ.get("MODELPLANE_REDIS_URL") or None,
        help="share limits, budgets and backend health through Redis "
        "(default: $MODELPLANE_REDIS_URL; without it, state is per process)",
    )
    serve.add_argument(
        "--limits-fail-closed",
        action="store_true",
        help="answer 503 instead of admitting while Redis is unreachable",
    )
    serve.add_argument(
        "--budgets-fail-open",
        action="store_true",
        help="keep serving budgeted tenants while Redis is unreachable (default: 503)",
    )
    serve.add_argument(
        "--scrape-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often to read in-cluster engines' /metrics (0: never)",
    )
    serve.add_argument(
        "--otlp-endpoint",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        help="export traces and metrics over OTLP/HTTP (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    serve.add_argument(
        "--trace-sample-ratio",
        type=float,
        default=1.0,
        metavar="RATIO",
        help="share of requests traced when traces are exported (default: 1, every request)",
    )
    serve.add_argument(
        "--audit-log", metavar="FILE", help="append decision audit lines ('-': stdout)"
    )
    serve.add_argument(
        "--no-telemetry", action="store_true", help="no traces, metrics, /metrics or audit log"
    )
    serve.add_argument(
        "--shutdown-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, report not ready (/readyz 503) and keep serving this long before "
        "draining, so the pod leaves its Service first (default: 0)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=int,
        default=30,
        metavar="SECONDS",
        help="then wait at most this long for requests in flight to finish (default: 30)",
    )
    serve.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=1024,
        metavar="N",
        help="requests served at once by this process; more get 503 server_overloaded with "
        "Retry-After before any work (health, readiness and metrics are never refused)",
    )
    serve.add_argument(
        "--max-header-bytes",
        type=_positive_int,
        default=64 * 1024,
        metavar="BYTES",
        help="a request whose line and headers exceed this gets 431 and its connection closed",
    )
    serve.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="a connection whose request line and headers take longer than this (from its "
        "opening or the request's first byte) gets 408 and is closed (default: 30)",
    )
    serve.add_argument(
        "--body-timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="a request whose body is still incomplete this long after its headers gets 408 and "
        "its connection closed, which frees its --max-in-flight slot (default: 60)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=16 * 1024 * 1024,
        metavar="BYTES",
        help="a request body over this gets 413 before it is read (default: 16 MiB, one "
        "12 MB image base64-encoded; raise it for larger or many inline images)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument(
        "--metrics-port",
        type=_port_number,
        default=None,
        metavar="PORT",
        help="serve /metrics on this port instead of the API's, so that only scrapers need "
        "reach it (it shows tenant names and remaining budgets); default: on --port",
    )
    serve.add_argument(
        "--metrics-host",
        default=None,
        metavar="ADDRESS",
        help="address of --metrics-port (default: --host)",
    )
    serve.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error")
    )
    serve.set_defaults(run=serve_command)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port_number(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not {value}")
    return value


def serve_command(args: argparse.Namespace) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import uvicorn
    from modelplane.router.adapters.redis_state import RedisStateSettings
    from modelplane.router.adapters.runtime import ServeOptions, build_runtime
    from modelplane.router.adapters.telemetry import TelemetrySettings
    from modelplane.router.api.app import create_app
    from modelplane.router.api.limits import InFlightLimit, bounded_http_protocol
    from modelplane.router.api.shutdown import DrainingServer, Readiness, ShutdownSettings
    from modelplane.router.config import ConfigError, load_config
    from pydantic import ValidationError

    # Libraries log at info at most: several write request bodies or Secrets at debug level
    # (LiteLLM each call's messages, the OpenAI SDK its request options, the Kubernetes client
    # its responses), and the router's debug log must not hold prompt text or keys.
    level = getattr(logging, args.log_level.upper())
    logging.basicConfig(
        level=max(level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("modelplane").setLevel(level)
    from modelplane.router.policy.pii import NATIVE_SCANNER_AVAILABLE

    if not NATIVE_SCANNER_AVAILABLE:
        logging.getLogger("modelplane.router").warning(
            "the native PII scanner was not compiled at install (no C compiler?): prompts are "
            "scanned by the pure-Python fallback, same results, ~15x slower"
        )
    if args.metrics_port is not None:
        problem = None
        if args.no_telemetry:
            problem = "--metrics-port has no metrics to serve with --no-telemetry"
        elif args.metrics_port == args.port:
            problem = f"--metrics-port must differ from --port ({args.port})"
        if problem is not None:
            print(f"modelplane router: {problem}", file=sys.stderr)
            return 2
    try:
        options = ServeOptions(
            kubernetes=args.kubernetes,
            namespace=args.namespace,
            all_namespaces=args.all_namespaces,
            redis=RedisStateSettings(
                url=args.redis_url,
                limits_fail_open=not args.limits_fail_closed,
                budgets_fail_open=args.budgets_fail_open,
            )
            if args.redis_url
            else None,
            telemetry=None
            if args.no_telemetry
            else TelemetrySettings(
                otlp_endpoint=args.otlp_endpoint,
                audit_log=args.audit_log,
                trace_sample_ratio=args.trace_sample_ratio,
            ),
            scrape_interval_s=max(0.0, args.scrape_interval),
            metrics_host=args.metrics_host or args.host,
            metrics_port=args.metrics_port,
        )
        shutdown = ShutdownSettings(
            delay_s=args.shutdown_delay, drain_timeout_s=args.shutdown_timeout
        )
        config = load_config(args.config) if args.config else None
        runtime = build_runtime(options, config)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
        )
        print(f"modelplane router: invalid option: {problems}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"modelplane router: {error}", file=sys.stderr)
        return 2
    readiness = Readiness()
    app = create_app(
        runtime.catalog_source,
        runtime.state,
        telemetry=runtime.telemetry,
        catalog_changes=runtime.catalog_changes,
        components=runtime.components,
        readiness=readiness,
        max_body_bytes=args.max_body_bytes,
        metrics_on_api_port=runtime.metrics_listener is None,
    )
    server_config = uvicorn.Config(
        InFlightLimit(app, args.max_in_flight),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http=bounded_http_protocol(args.max_header_bytes, args.header_timeout, args.body_timeout),
        access_log=False,
        proxy_headers=False,  # the router never uses the client address
        server_header=False,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=shutdown.drain_timeout_s,
    )
    server = DrainingServer(server_config, readiness, shutdown)
    server.run()
    return 0 if server.started else 1
