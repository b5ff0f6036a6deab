"""`python -m bench.strict_bench`: the cost of strict reply parsing (transcode/strictparse.py)
against protobuf's own FromString and the compiled JSON renderer, on a 50-order list and a
small user; best of 5 repeats, microseconds per reply."""

from __future__ import annotations

import timeit
from collections.abc import Callable

import orjson
from google.protobuf.message import Message

from gateway.demo import DESCRIPTOR_SET
from gateway.transcode.jsonrender import RenderOptions, compile_renderer
from gateway.transcode.schema import Schema, load_schema
from gateway.transcode.strictparse import compile_strict_parser


def _orders(message: Message) -> None:
    for i in range(50):
        order = message.orders.add(id=f"o-{i}", user_id="u-1", status=1)  # type: ignore[attr-defined]
        order.items.add(sku="s", quantity=2)


def _user(message: Message) -> None:
    message.id, message.email = "u-1", "a@b.c"  # type: ignore[attr-defined]


def _best(run: Callable[[], object], number: int = 3000) -> float:
    return min(timeit.repeat(run, number=number, repeat=5)) / number * 1e6


def _measure(schema: Schema, name: str, build: Callable[[Message], None]) -> str:
    descriptor = schema.pool.FindMessageTypeByName(name)
    cls = schema.message_class(descriptor)
    message = cls()
    build(message)
    raw = message.SerializeToString()
    strict = compile_strict_parser(cls)
    render = compile_renderer(schema, descriptor, RenderOptions()).convert
    parsed = cls.FromString(raw)
    return (f"{name} ({len(raw)} B): FromString {_best(lambda: cls.FromString(raw)):.1f} us, "
            f"strict parse {_best(lambda: strict(raw)):.1f} us, "
            f"render {_best(lambda: orjson.dumps(render(parsed))):.1f} us")


def main() -> None:
    schema = load_schema(DESCRIPTOR_SET.read_bytes())
    print(_measure(schema, "orders.v1.ListOrdersResponse", _orders))
    print(_measure(schema, "users.v1.User", _user))


if __name__ == "__main__":
    main()
