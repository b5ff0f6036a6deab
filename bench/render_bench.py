"""Microbenchmark: json_format.MessageToDict + json.dumps vs the compiled renderer + orjson.

Run from the repository root: `.venv/bin/python -m bench.render_bench [--number N]`.
Checks that both give the same dict, then times each (timeit, best of 5, µs per message),
prints a table and writes bench/out/render.json. Target: compiled >= 3x faster on the User.
"""

from __future__ import annotations

import argparse
import json
import platform
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google.protobuf
import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.transcode.jsonrender import RenderOptions, compile_renderer
from gateway.transcode.schema import Schema, load_schema

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "render.json"
REPEAT = 5
TARGET = 3.0  # compiled + orjson vs MessageToDict + json.dumps, for the User

USER = {
    "id": "u-1001",
    "email": "ada@example.com",
    "displayName": "Ada Lovelace",
    "state": "USER_STATE_ACTIVE",
    "roles": ["ROLE_MEMBER", "ROLE_ADMIN"],
    "tags": ["math", "engines", "poetry"],
    "address": {"line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH",
                "countryCode": "GB"},
    "labels": {"team": "analytics", "tier": "gold"},
    "createTime": "2023-11-14T22:13:20.123Z",
    "updateTime": "2024-02-29T08:00:00Z",
}
ORDER = {
    "id": "o-5001",
    "userId": "u-1001",
    "status": "ORDER_STATUS_SHIPPED",
    "items": [
        {"sku": "BK-001", "title": "Sketch of the Analytical Engine", "quantity": 1,
         "unitPrice": {"currencyCode": "EUR", "amountMinor": "1999"}},
        {"sku": "PN-002", "title": "Fountain pen", "quantity": 2,
         "unitPrice": {"currencyCode": "EUR", "amountMinor": "450"}},
        {"sku": "NB-003", "title": "Notebook", "quantity": 3,
         "unitPrice": {"currencyCode": "EUR", "amountMinor": "299"}},
    ],
    "total": {"currencyCode": "EUR", "amountMinor": "3796"},
    "createTime": "2024-03-01T10:00:00.250Z",
    "updateTime": "2024-03-02T16:30:00Z",
}


def best_us(funcs: dict[str, Callable[[], object]], number: int) -> dict[str, float]:
    """Best of REPEAT runs of `number` calls each, in µs per call; run round-robin, so the
    noise of a shared host falls on every contender alike."""
    runs: dict[str, list[float]] = {label: [] for label in funcs}
    for _ in range(REPEAT):
        for label, func in funcs.items():
            runs[label].append(timeit.timeit(func, number=number) / number * 1e6)
    return {label: min(times) for label, times in runs.items()}


def measure(schema: Schema, name: str, fields: dict[str, Any], number: int) -> dict[str, Any]:
    descriptor = schema.pool.FindMessageTypeByName(name)
    message: Message = json_format.ParseDict(fields, schema.message_class(descriptor)())
    renderer = compile_renderer(schema, descriptor, RenderOptions())
    pool = schema.pool
    expected = json_format.MessageToDict(message, descriptor_pool=pool)
    if renderer.to_dict(message) != expected or orjson.loads(renderer.to_json(message)) != expected:
        raise SystemExit(f"{name}: the compiled renderer disagrees with MessageToDict")
    us = best_us({
        "baseline": lambda: json.dumps(json_format.MessageToDict(message, descriptor_pool=pool)),
        "compiled": lambda: renderer.to_json(message),
        "to_dict_baseline": lambda: json_format.MessageToDict(message, descriptor_pool=pool),
        "to_dict": lambda: renderer.to_dict(message),
        "serialize": message.SerializeToString,
    }, number)
    baseline, compiled, to_dict_baseline, to_dict = (
        us["baseline"], us["compiled"], us["to_dict_baseline"], us["to_dict"]
    )
    return {
        "wire_bytes": message.ByteSize(),
        "json_bytes": len(renderer.to_json(message)),
        "message_to_dict_json_dumps_us": round(baseline, 2),
        "compiled_orjson_us": round(compiled, 2),
        "speedup": round(baseline / compiled, 2),
        "message_to_dict_us": round(to_dict_baseline, 2),
        "compiled_to_dict_us": round(to_dict, 2),
        "to_dict_cost_ratio": round(to_dict / to_dict_baseline, 3),
        "serialize_to_string_us": round(us["serialize"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    args = parser.parse_args()
    schema = load_schema((ROOT / "generated" / "descriptors.binpb").read_bytes())
    results = {
        name: measure(schema, name, fields, args.number)
        for name, fields in (("users.v1.User", USER), ("orders.v1.Order", ORDER))
    }
    print(f"best of {REPEAT} x {args.number} calls, µs per message")
    print(f"{'message':<18}{'M2D+json':>10}{'fast+orjson':>13}{'speedup':>9}"
          f"{'M2D':>8}{'to_dict':>9}{'cost':>7}")
    for name, row in results.items():
        print(f"{name:<18}{row['message_to_dict_json_dumps_us']:>10.2f}"
              f"{row['compiled_orjson_us']:>13.2f}{row['speedup']:>8.2f}x"
              f"{row['message_to_dict_us']:>8.2f}{row['compiled_to_dict_us']:>9.2f}"
              f"{row['to_dict_cost_ratio']:>7.2f}")
    speedup = results["users.v1.User"]["speedup"]
    print(f"target: User >= {TARGET}x -> {'met' if speedup >= TARGET else 'NOT met'} ({speedup}x)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "python": platform.python_version(),
        "protobuf": google.protobuf.__version__,
        "orjson": orjson.__version__,
        "number": args.number,
        "repeat": REPEAT,
        "target_speedup": TARGET,
        "results": results,
    }, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
