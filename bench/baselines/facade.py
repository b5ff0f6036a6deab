"""Hand-written aiohttp façade: GET /v1/users/{id} -> GetUserRequest -> await stub.GetUser ->
JSON, one endpoint written by hand as a team would without a gateway.

Renderers: json (MessageToDict + json.dumps by web.json_response), orjson (MessageToDict +
orjson.dumps), fast (the gateway's compiled proto->JSON renderer + orjson).
`python -m bench.baselines.facade --backend 127.0.0.1:PORT [--renderer json] [--port 0]`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
from aiohttp import web
from google.protobuf import json_format

from bench.baselines.site import arguments, serve
from bench.check import GRPC_METHOD
from users.v1 import users_pb2, users_pb2_grpc

RENDERERS = ("json", "orjson", "fast")
DESCRIPTORS = Path(__file__).resolve().parents[2] / "generated" / "descriptors.binpb"
FAST_MODULE = "gateway.transcode.jsonrender"

GetUser = Callable[[users_pb2.GetUserRequest], Awaitable[Any]]
Respond = Callable[[Any], web.Response]


def fast_unavailable() -> str | None:
    """Why the fast renderer cannot be used here, or None when it can."""
    if importlib.util.find_spec(FAST_MODULE) is None:
        return f"{FAST_MODULE} does not exist"
    module = importlib.import_module(FAST_MODULE)
    if not hasattr(module, "compile_renderer"):
        return f"{FAST_MODULE} exposes no compile_renderer"
    return None


def _json(user: Any) -> web.Response:
    return web.json_response(json_format.MessageToDict(user))


def _orjson(user: Any) -> web.Response:
    return web.Response(body=orjson.dumps(json_format.MessageToDict(user)),
                        content_type="application/json")


def _fast(channel: grpc.aio.Channel) -> tuple[GetUser, Respond]:
    """A GetUser that decodes into the schema pool's User class, and its compiled renderer."""
    from gateway.transcode.jsonrender import RenderOptions, compile_renderer
    from gateway.transcode.schema import load_schema

    schema = load_schema(DESCRIPTORS.read_bytes())
    descriptor = schema.pool.FindMessageTypeByName("users.v1.User")
    renderer = compile_renderer(schema, descriptor, RenderOptions())
    get_user = channel.unary_unary(
        GRPC_METHOD,
        request_serializer=users_pb2.GetUserRequest.SerializeToString,
        response_deserializer=schema.message_class(descriptor).FromString,
    )

    def respond(user: Any) -> web.Response:
        return web.Response(body=renderer.to_json(user), content_type="application/json")

    return get_user, respond


def application(backend: str, renderer: str) -> Callable[[], Awaitable[web.Application]]:
    async def build() -> web.Application:
        channel = grpc.aio.insecure_channel(backend)
        get_user: GetUser
        if renderer == "fast":
            get_user, respond = _fast(channel)
        else:
            get_user = users_pb2_grpc.UsersStub(channel).GetUser
            respond = _json if renderer == "json" else _orjson

        async def handle(request: web.Request) -> web.Response:
            try:
                user = await get_user(users_pb2.GetUserRequest(id=request.match_info["id"]))
            except grpc.aio.AioRpcError as exc:
                status = 404 if exc.code() == grpc.StatusCode.NOT_FOUND else 502
                return web.json_response({"code": exc.code().value[0], "message": exc.details()},
                                         status=status)
            return respond(user)

        async def close(_: web.Application) -> None:
            await channel.close()

        app = web.Application()
        app.router.add_get("/v1/users/{id}", handle)
        app.on_cleanup.append(close)
        return app

    return build


def main() -> None:
    parser = arguments("Hand-written aiohttp façade over users.v1.Users/GetUser.")
    parser.add_argument("--backend", required=True, help="users backend host:port")
    parser.add_argument("--renderer", choices=RENDERERS, default="json")
    args = parser.parse_args()
    if args.renderer == "fast" and (reason := fast_unavailable()):
        parser.error(f"--renderer fast: {reason}")
    serve("facade", args.port, application(args.backend, args.renderer))


if __name__ == "__main__":
    main()
