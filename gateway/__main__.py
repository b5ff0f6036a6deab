"""Command line: `python -m gateway serve --config gateway.yaml` and `python -m gateway demo`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvloop

from gateway import app
from gateway.config import GatewayConfig, load_file
from gateway.demo import mint_demo_token, run_demo
from gateway.errors import ConfigError
from gateway.observability.accesslog import log_to

log = logging.getLogger("gateway")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the config's descriptors against its backends")
    serve.add_argument("--config", type=Path, required=True, help="the gateway YAML file")
    demo = commands.add_parser("demo", help="the demo backends with a gateway in front of them")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--rest-port", type=int, default=8080)
    demo.add_argument("--grpc-port", type=int, default=9090)
    token = commands.add_parser("demo-token", help="mint a token the demo gateway accepts")
    token.add_argument("--sub", default="u-1001", help="the subject (becomes x-user-id)")
    token.add_argument("--roles", default="", help="comma-separated roles, e.g. admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    options = parser.parse_args(argv)
    if options.command == "demo-token":
        roles = [role for role in options.roles.split(",") if role]
        print(mint_demo_token(options.sub, roles, options.ttl))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if options.command == "serve":
            config = load_file(options.config)
            log_to(sys.stdout)  # access lines as bare JSON on stdout, one per request
            return uvloop.run(_serve(config))
        return uvloop.run(run_demo(options.host, options.rest_port, options.grpc_port))
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


async def _serve(config: GatewayConfig) -> int:
    running = await app.start(config)
    if config.listen.rest is not None:
        print(f"gateway REST on http://{config.listen.rest.host}:{running.rest_port}", flush=True)
    if config.listen.grpc is not None:
        print(f"gateway gRPC on {config.listen.grpc.host}:{running.grpc_port}", flush=True)
    if config.listen.ops is not None:
        print(f"gateway ops (/metrics) on http://{config.listen.ops.host}:{running.ops_port}",
              flush=True)
    await app.wait_for_signal()
    await running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
