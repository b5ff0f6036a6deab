"""Command line for the demo backends: `python -m services` runs users, orders and notifications
in one process; `python -m services.<name> --port N` runs one. SIGINT/SIGTERM stop cleanly.
`--delay METHOD=SECONDS` (repeatable) gives a method a fixed service time from the start.
`--trace console|otlp` gives every call a SERVER span (services/tracing.py), continuing the
caller's traceparent; `--otlp-endpoint` is where OTLP/HTTP spans go.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from google.protobuf import descriptor_pool

from services.faults import Fault
from services.server import RunningBackend, start_backend
from services.tracing import EXPORTERS, OTLP_ENDPOINT, Exporter, backend_tracer_provider

GRACE_S = 2.0  # calls in flight get this long to finish on shutdown

log = logging.getLogger("services")


class UnservedMethod(Exception):
    """A --delay names a method that none of the started backends serves."""


def parse_delay(text: str) -> tuple[str, float]:
    """`/users.v1.Users/GetUser=0.05` -> ("/users.v1.Users/GetUser", 0.05): the method (wire
    form; the leading slash may be left out) and its injected delay in seconds."""
    method, sep, seconds = text.rpartition("=")
    service, _, name = method.strip("/").rpartition("/")
    if not sep or not service or not name or "/" in service:
        raise argparse.ArgumentTypeError(f"{text!r} is not METHOD=SECONDS, e.g. "
                                         "/users.v1.Users/GetUser=0.05")
    try:
        delay_s = float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {seconds!r} is not a number of seconds"
                                         ) from None
    if not 0 <= delay_s < 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r}: the delay must be in [0, 3600) s")
    return f"/{service}/{name}", delay_s


def main(names: Sequence[str], argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services" + ("" if len(names) > 1 else f".{names[0]}"),
        description=f"Serve the {', '.join(names)} demo backend(s) over gRPC.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    if len(names) == 1:
        parser.add_argument("--port", type=int, default=0, help="port (0 = ephemeral)")
    else:
        for name in names:
            parser.add_argument(f"--{name}-port", type=int, default=0,
                                help=f"port of {name} (0 = ephemeral)")
    parser.add_argument("--delay", type=parse_delay, action="append", default=[],
                        metavar="METHOD=SECONDS",
                        help="answer METHOD (/pkg.Service/Method) only after SECONDS; repeatable")
    parser.add_argument("--trace", choices=EXPORTERS, default="none",
                        help="export a SERVER span per call: to the console or over OTLP/HTTP")
    parser.add_argument("--otlp-endpoint", default=OTLP_ENDPOINT,
                        help=f"OTLP/HTTP traces URL for --trace otlp (default {OTLP_ENDPOINT})")
    args = parser.parse_args(argv)
    if len(names) == 1:
        ports = {names[0]: args.port}
    else:
        ports = {name: getattr(args, f"{name}_port") for name in names}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        _run(_serve(args.host, ports, dict(args.delay), args.trace, args.otlp_endpoint))
    except (OSError, UnservedMethod) as exc:
        log.error("%s", exc)
        sys.exit(1)


async def _serve(host: str, ports: Mapping[str, int], delays: Mapping[str, float],
                 trace: Exporter = "none", otlp_endpoint: str = OTLP_ENDPOINT) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    backends: list[RunningBackend] = []
    try:
        for name, port in ports.items():
            provider = backend_tracer_provider(trace, f"demo-{name}", otlp_endpoint)
            backend = await start_backend(name, host, port, tracer_provider=provider)
            backends.append(backend)
        inject_delays(backends, delays)
        for backend in backends:
            print(f"{backend.name} listening on {backend.address}", flush=True)
        await stopping.wait()
        log.info("stopping")
    finally:
        await asyncio.gather(*(backend.stop(GRACE_S) for backend in backends))


def inject_delays(backends: Sequence[RunningBackend], delays: Mapping[str, float]) -> None:
    """Set each delay as a Fault on the backend serving its method's service."""
    for method, delay_s in delays.items():
        _, service, name = method.split("/")
        owner = next((b for b in backends if service in b.service_names), None)
        if owner is None or name not in _methods(service):
            served = ", ".join(name for b in backends for name in b.service_names)
            raise UnservedMethod(f"--delay {method}: no backend here serves it "
                                 f"(services: {served})")
        owner.faults.set(method, Fault(delay_s=delay_s))
        log.info("%s answers after %g s", method, delay_s)


def _methods(service: str) -> frozenset[str]:
    """Method names of a service the started servicers registered (its generated module is
    in the default descriptor pool)."""
    try:
        found = descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        return frozenset()
    return frozenset(found.methods_by_name)


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # optional speed-up
        asyncio.run(main)
    else:
        uvloop.run(main)
