"""Command line: `python -m gateway serve --config gateway.yaml [--workers N]`,
`python -m gateway check --config gateway.yaml`, `python -m gateway config-schema` and
`python -m gateway demo`."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

import gateway.engine  # first: grpc reads its engine choice when it is imported
from gateway import workers
from gateway.config import GatewayConfig, load_file
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.observability.accesslog import LineBuffer

# The gateway itself (grpc, aiohttp, auth, redis clients) is imported by the commands that
# serve: a `--workers N` supervisor only forks and waits, and stays ~70 MiB smaller without it.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the config's descriptors against its backends")
    serve.add_argument("--config", type=Path, required=True, help="the gateway YAML file")
    serve.add_argument("--workers", type=_positive, default=1,
                       help="processes sharing the ports (SO_REUSEPORT), under a supervisor")
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    serve.add_argument("--port", action="append", default=[], help=argparse.SUPPRESS)
    serve.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)  # a spare
    demo = commands.add_parser("demo", help="the demo backends with a gateway in front of them")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--rest-port", type=int, default=8080)
    demo.add_argument("--grpc-port", type=int, default=9090)
    demo.add_argument("--ops-port", type=int, default=9464, help="/metrics and /healthz")
    demo.add_argument("--trace", choices=("none", "console", "otlp"), default="none",
                      help="spans of the gateway and of each backend, to the console or OTLP")
    demo.add_argument("--otlp-endpoint", default="http://127.0.0.1:4318/v1/traces",
                      help="OTLP/HTTP traces URL for --trace otlp")
    check = commands.add_parser("check", help="validate a config without serving; print its routes")
    check.add_argument("--config", type=Path, required=True, help="the gateway YAML file")
    commands.add_parser("config-schema", help="print the config file's JSON Schema")
    deps = commands.add_parser("proto-deps", help="copy google/api/*.proto into DIR, for buf "
                               "or protoc -I DIR (builds descriptor sets offline)")
    deps.add_argument("dir", type=Path)
    token = commands.add_parser("demo-token", help="mint a token the demo gateway accepts")
    token.add_argument("--sub", default="u-1001", help="the subject (becomes x-user-id)")
    token.add_argument("--roles", default="", help="comma-separated roles, e.g. admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.add_argument("--public-key", action="store_true",
                       help="print the demo issuer's public key (PEM) instead of a token")
    options = parser.parse_args(argv)
    if options.command in ("check", "config-schema", "proto-deps"):
        return _inspect(options)
    if options.command == "demo-token":
        roles = [role for role in options.roles.split(",") if role]
        from gateway.demo import demo_public_pem, mint_demo_token

        if options.public_key:
            sys.stdout.write(demo_public_pem())
        else:
            print(mint_demo_token(options.sub, roles, options.ttl))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if options.command == "serve":
            # Until serve() handles it, a SIGHUP (a reload asked for during start) must not kill.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            if options.standby:  # a warm spare: waits to replace a worker that dies
                options.worker = workers.wait_as_spare()
                if options.worker is None:
                    return 0
            if options.workers > 1 and options.worker is None:
                return _supervise(options.config, options.workers)
            ports = dict(_name_port(value) for value in options.port)
            index = options.worker or 0

            def source() -> GatewayConfig:
                return workers.worker_config(load_file(options.config), index, ports)

            config = source()
            from gateway.observability.accesslog import LineBuffer

            access = LineBuffer(sys.stdout)  # access lines as bare JSON on stdout, batched
            try:
                return uvloop.run(_serve(config, source, options.workers, options.worker,
                                         access))
            finally:
                access.flush()
        from gateway.demo import run_demo

        return uvloop.run(run_demo(options.host, options.rest_port, options.grpc_port,
                                    options.ops_port, trace=options.trace,
                                    otlp_endpoint=options.otlp_endpoint))
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


async def _serve(config: GatewayConfig, source: Callable[[], GatewayConfig], instances: int,
                 worker: int | None, access: LineBuffer) -> int:
    from gateway import app

    running = await app.start(config, instances=instances, source=source, worker=worker,
                              access_sink=access.write)
    gateway.engine.calm_poller()
    # Everything built at start (descriptor pools, route tables, compiled renderers) lives as
    # long as the process: keep it out of the cyclic GC's full passes, which otherwise walk it
    # all and show up as p99 latency spikes.
    gc.freeze()
    who = "" if worker is None else f" (worker {worker}, pid {os.getpid()})"
    listen = config.listen
    if listen.rest is not None:
        print(f"gateway REST on http://{listen.rest.host}:{running.rest_port}{who}", flush=True)
    if listen.grpc is not None:
        print(f"gateway gRPC on {listen.grpc.host}:{running.grpc_port}{who}", flush=True)
    if listen.ops is not None:
        print(f"gateway ops (/metrics, /admin) on http://{listen.ops.host}:{running.ops_port}"
              f"{who}", flush=True)
    await app.serve(running)  # SIGHUP reloads; SIGTERM/SIGINT stop gracefully
    return 0


def _supervise(path: Path, count: int) -> int:
    config = load_file(path)  # a bad config stops here, before any worker starts
    ports, held = workers.reserve_ports(config, count)
    try:
        commands = [workers.worker_command(path, count, i, ports) for i in range(count)]
        spare = workers.worker_command(path, count, None, ports)
        return uvloop.run(workers.supervise(commands, spare=spare))
    finally:
        for sock in held:
            sock.close()


def _inspect(options: argparse.Namespace) -> int:
    """The commands that read a config, its models or the protos, and serve nothing."""
    if options.command == "check":
        from gateway.routelist import check

        return check(options.config, sys.stdout, sys.stderr)
    if options.command == "proto-deps":
        from gateway.protoset import copy_http_protos

        for path in copy_http_protos(options.dir):
            print(path)
        return 0
    from gateway.configschema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _name_port(text: str) -> tuple[str, int]:
    name, _, port = text.partition("=")
    return name, int(port)


if __name__ == "__main__":
    sys.exit(main())
