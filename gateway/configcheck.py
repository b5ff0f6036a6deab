"""Every method name and pattern in a config, checked against the loaded descriptors at load.

Pydantic checks a config's shape; only the descriptors say whether `/users.v1.Users/DeleteUsr`
exists. A rule whose pattern matches nothing is a mistake that fails open (a typo'd admin-only
rule never applies, and that method stays public), so every such name is a load error naming
the key and the value, with the closest method the gateway knows as a suggestion. Pure: a config
and a schema in, a ConfigError (every problem at once) out. compile_config runs it, so start,
reload and `python -m gateway check` all refuse the same configs.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.transcode.schema import Schema


def check_names(config: GatewayConfig, schema: Schema, services: Mapping[str, str]) -> None:
    """Raise ConfigError listing every method name or pattern in `config` that names nothing.

    `services`: proto service -> backend name, the services backends serve. The gateway serves
    those and the services of its aggregates; rules and per-method keys must name one of them.
    """
    backend_methods = _methods(schema, services)
    aggregate_services = {key[1:].partition("/")[0] for key in config.aggregates}
    aggregate_methods = [m for m in method_names(schema) if _service(m) in aggregate_services
                         and _service(m) not in services]
    exposed = sorted({*backend_methods, *aggregate_methods})
    problems: list[str] = []
    for index, rule in enumerate(config.authorization.rules):
        problems += _pattern(f"authorization.rules.{index}.match", rule.match, exposed)
    for index, limit in enumerate(config.rate_limits.rules):
        problems += _pattern(f"rate_limits.rules.{index}.match", limit.match, exposed)
    for method in config.transcoding.success_status:
        problems += _exact(f"transcoding.success_status.{method}", method, exposed)
    for name, backend in config.backends.items():
        own = [m for m in backend_methods if services.get(_service(m)) == name]
        for index, method in enumerate(backend.retry.idempotent_methods):
            problems += _exact(f"backends.{name}.retry.idempotent_methods.{index}", method, own,
                               f"a method backend {name} serves")
    # Aggregate methods and their parts' methods: gateway.bff.spec checks them (with closest()).
    if problems:
        raise ConfigError("; ".join(problems))


def _methods(schema: Schema, services: Iterable[str]) -> list[str]:
    return sorted(f"/{service}/{method.name}" for service in services
                  for method in schema.services[service].methods)


def _service(method: str) -> str:
    return method[1:].partition("/")[0]


def _pattern(key: str, pattern: str, methods: list[str]) -> list[str]:
    matches = re.compile(fnmatch.translate(pattern)).match  # as the policies match it
    if any(matches(method) for method in methods):
        return []
    return [f"{key}: {pattern!r} matches no method the gateway serves{closest(pattern, methods)}"]


def _exact(key: str, method: str, methods: list[str],
           what: str = "a method the gateway serves") -> list[str]:
    if method in methods:
        return []
    return [f"{key}: {method!r} is not {what}{closest(method, methods)}"]


def method_names(schema: Schema) -> list[str]:
    """Every "/pkg.Service/Method" of the descriptors."""
    return _methods(schema, schema.services)


def closest(name: str, methods: list[str]) -> str:
    """`; did you mean '/pkg.Service/Method'?` when a known method (or a whole service as
    `/pkg.Service/*`, for patterns) is close enough to be a typo of `name`."""
    candidates = [*methods, *sorted({f"/{_service(m)}/*" for m in methods})]
    if any(c in name for c in "*?["):
        found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    else:
        found = difflib.get_close_matches(name, methods, n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""
