"""Bare aiohttp + uvloop: GET /v1/users/{id} answers the fixed proto3 JSON of seed user u-1001.

The ceiling of any aiohttp-based REST server: no gRPC call, no conversion per request.
`python -m bench.baselines.bare --port 0`.
"""

from __future__ import annotations

import json

from aiohttp import web
from google.protobuf import json_format

from bench.baselines.site import arguments, serve
from bench.check import expected_user


async def build() -> web.Application:
    body = json.dumps(json_format.MessageToDict(expected_user())).encode()

    async def get_user(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/users/{id}", get_user)
    return app


def main() -> None:
    args = arguments("Bare aiohttp: the fixed JSON of user u-1001.").parse_args()
    serve("bare", args.port, build)


if __name__ == "__main__":
    main()
