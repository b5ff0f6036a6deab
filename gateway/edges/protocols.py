"""Connect or gRPC-Web: RestEdge.dispatch hands over a request whose path names a method of
the loaded services (`/<pkg>.<Service>/<Method>`); the content type picks the protocol."""

from __future__ import annotations

from aiohttp import web

from gateway.edges import connect, grpcweb
from gateway.edges.cors import CorsPolicy
from gateway.edges.rpchttp import RpcHttpTables, cors_headers


async def handle(tables: RpcHttpTables, request: web.BaseRequest, cors: CorsPolicy | None
                 ) -> web.StreamResponse:
    """Answer one Connect or gRPC-Web request, CORS headers included (a stream sends its
    headers before dispatch could add them); never raises a GatewayError."""
    method = tables.methods[request.path]
    extra = cors_headers(request, cors)
    if request.headers.get("Content-Type", "").startswith("application/grpc-web"):
        return await grpcweb.handle(tables, method, request, extra)
    return await connect.handle(tables, method, request, extra)
