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
        description="Serve the OpenAI-compatible router API with the backends of a config file.",
    )
    serve.add_argument("--config", required=True, metavar="FILE", help="router YAML file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error")
    )
    serve.set_defaults(run=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import uvicorn
    from modelplane.router.api.app import create_app
    from modelplane.router.catalog import CatalogSource, catalog_from_config
    from modelplane.router.config import ConfigError, load_config
    from modelplane.router.state import CooldownPolicy, InProcessState

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
        catalog = catalog_from_config(config)
    except ConfigError as error:
        print(f"modelplane router: {error}", file=sys.stderr)
        return 2
    cooldown = CooldownPolicy(failures=config.cooldown.failures, seconds=config.cooldown.seconds)
    app = create_app(CatalogSource(catalog), InProcessState(cooldown=cooldown))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,  # the router never uses the client address
        server_header=False,
        log_level=args.log_level,
        lifespan="on",
    )
    return 0
