"""`python -m gateway check --config FILE`: validate a config as `serve` would, without serving,
and print its route table, one line per route (HTTP method and path, proto method, backend,
authorization, rate limit, success status, timeout). Exit 2 with the errors otherwise.

Operators run it in CI before a deploy. It compiles the config and builds its runtime (keys,
TLS files, trusted proxies, the span exporter) but opens no listener and calls no backend, JWKS
URL or Redis.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from gateway.compiled import Compiled, compile_config
from gateway.config import GatewayConfig, load_file
from gateway.errors import ConfigError

HEADER = ("HTTP", "PATH", "METHOD", "BACKEND", "AUTH", "RATE LIMIT", "STATUS", "TIMEOUT")


def check(path: Path, out: TextIO, err: TextIO) -> int:
    """0 and the route table on `out`; 2 and the problem on `err`."""
    try:
        compiled = compile_config(load_file(path))
        asyncio.run(_build_runtime(compiled))
    except ConfigError as exc:
        print(f"gateway: {exc}", file=err)
        return 2
    rows = list(route_rows(compiled))
    out.write(format_table([HEADER, *rows]))
    print(f"gateway: {path} is valid: {len(rows)} route{'' if len(rows) == 1 else 's'}",
          file=err)
    return 0


async def _build_runtime(compiled: Compiled) -> None:
    from gateway.runtime import build_runtime  # the serving stack: only once the config compiled

    runtime = build_runtime(compiled)
    await runtime.close()


def route_rows(compiled: Compiled) -> Iterator[tuple[str, ...]]:
    """One row per REST route, then one per gRPC method with no REST route ("gRPC", "-")."""
    config = compiled.config
    with_routes = set()
    for route in compiled.table.routes:
        with_routes.add(route.method)
        status = str(compiled.endpoints[route].success_status)
        yield (route.http_method, str(route.template),
               *_policy(compiled, config, route.method, status))
    for method in sorted(set(compiled.methods) - with_routes):
        yield ("gRPC", "-", *_policy(compiled, config, method, "-"))


def _policy(compiled: Compiled, config: GatewayConfig, method: str,
            status: str) -> tuple[str, ...]:
    plan = compiled.aggregates.get(method)
    if plan is not None:
        backend = f"aggregate ({len(plan.parts)} parts)"
        timeout = f"{plan.timeout_s:g}s" if plan.timeout_s is not None else "per part"
    else:
        backend = compiled.services[method[1:].partition("/")[0]]
        timeout = f"{config.backends[backend].timeout_s:g}s"
    return (method, backend, _access(config, method), _limit(config, method), status, timeout)


def _access(config: GatewayConfig, method: str) -> str:
    rules = config.authorization.rules
    found = next(((i, r) for i, r in enumerate(rules) if _matches(r.match, method)), None)
    if found is None:
        return f"{config.authorization.default} (default)"
    index, rule = found
    needs = [f"roles={'|'.join(rule.roles)}"] if rule.roles else []
    needs += [f"scopes={'|'.join(rule.scopes)}"] if rule.scopes else []
    access = rule.access if rule.access == "public" else " ".join([rule.access, *needs])
    return f"{access} (rule {index})"


def _limit(config: GatewayConfig, method: str) -> str:
    rules = config.rate_limits.rules
    found = next(((i, r) for i, r in enumerate(rules) if _matches(r.match, method)), None)
    if found is None:
        return "none"
    index, rule = found
    return f"{rule.rate_per_s:g}/s burst {rule.burst} per {rule.key} (rule {index})"


def _matches(pattern: str, method: str) -> bool:
    return re.compile(fnmatch.translate(pattern)).match(method) is not None  # as the policies


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip() + "\n" for row in rows)
