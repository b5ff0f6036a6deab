"""Microbenchmark: the CPU the contract check (field_behavior + buf.validate) adds per request.

Run from the repository root: `.venv/bin/python -m bench.contract_bench [--number N]`.
Builds the demo config's Compiled, then times CheckContract.step on typical requests of both
edges (best of 5 x N calls, process CPU time, µs per call), and the same with the check off,
and prints each against the gateway's CPU per REST request (`--gateway-cpu-us`, default 440:
REST GetUser at c=32 in bench/RESULTS.md). Target: under 10% of it. Writes
bench/out/contract.json. Bounded: ~10 s at the default N.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.call import Call
from gateway.compiled import compile_config
from gateway.config import load
from gateway.demo import DESCRIPTOR_SET
from gateway.policies.contract import CheckContract

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "contract.json"
TARGET = 0.10
REPEAT = 5


def _requests(compiled: Any) -> dict[str, tuple[str, bytes]]:
    schema = compiled.schema

    def payload(method: str, **fields: Any) -> tuple[str, bytes]:
        descriptor = schema.method(method)
        return method, schema.message_class(descriptor.input_type)(**fields).SerializeToString()

    user = {"email": "ada@example.com", "display_name": "Ada Lovelace", "state": 1,
            "roles": [1, 2], "tags": ["math", "engines"], "labels": {"team": "analytics"},
            "address": {"line1": "12 St James's Square", "city": "London",
                        "postal_code": "SW1Y 4JH", "country_code": "GB"}}
    return {
        "GetUser": payload("/users.v1.Users/GetUser", id="u-1001"),
        "ListUsers": payload("/users.v1.Users/ListUsers", page_size=20, filter="role=ADMIN"),
        "CreateUser": payload("/users.v1.Users/CreateUser", user=user),
        "UpdateUser": payload("/users.v1.Users/UpdateUser", user={"id": "u-1002", **user},
                              update_mask={"paths": ["display_name", "tags"]}),
        "CreateOrder": payload("/orders.v1.Orders/CreateOrder", user_id="u-1001", order={
            "items": [{"sku": "sku-1", "title": "Widget", "quantity": 2,
                       "unit_price": {"currency_code": "EUR", "amount_minor": 1250}}] * 3}),
    }


def _best(fn: Callable[[], object], number: int) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, (time.process_time() - start) / number)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--gateway-cpu-us", type=float, default=440.0)
    options = parser.parse_args()
    config = load({"descriptors": {"descriptor_set": str(DESCRIPTOR_SET)},
                   "backends": {"demo": {"services": ["users.v1.*", "orders.v1.*"],
                                         "addresses": ["127.0.0.1:1"]}}})
    compiled = compile_config(config)
    on = CheckContract(compiled.contracts, True)
    off = CheckContract({}, True)
    rows = []
    for name, (method, payload) in _requests(compiled).items():
        for edge in ("rest", "grpc"):
            call = Call(method, payload, edge=edge)
            on.step(call)  # valid: passes
            checked = _best(functools.partial(on.step, call), options.number)
            bare = _best(functools.partial(off.step, call), options.number)
            added = checked - bare
            rows.append({"request": name, "edge": edge, "bytes": len(payload),
                         "check_us": round(checked, 2), "passthrough_us": round(bare, 2),
                         "added_us": round(added, 2),
                         "share": round(added / options.gateway_cpu_us, 4)})
    print(f"{'request':<12} {'edge':<5} {'bytes':>5} {'added µs':>9} {'of gateway':>10}")
    for row in rows:
        print(f"{row['request']:<12} {row['edge']:<5} {row['bytes']:>5} {row['added_us']:>9.2f} "
              f"{row['share']:>10.1%}")
    worst = max(row["share"] for row in rows)
    print(f"worst: {worst:.1%} of {options.gateway_cpu_us:.0f} µs (target < {TARGET:.0%})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"gateway_cpu_us": options.gateway_cpu_us, "rows": rows},
                              indent=1), encoding="utf-8")
    return 0 if worst < TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
