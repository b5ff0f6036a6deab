"""The error tables are complete and agree with gRPC."""

from __future__ import annotations

import grpc

from gateway import errors
from gateway.errors import HTTP_STATUS, Code, GatewayError


def test_every_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(Code)


def test_codes_agree_with_grpc() -> None:
    assert {c.name: c.value for c in Code} == {s.name: s.value[0] for s in grpc.StatusCode}


def test_google_rpc_code_table() -> None:
    # google/rpc/code.proto's HTTP mapping, code by code (T-40).
    assert [HTTP_STATUS[c] for c in Code] == [
        200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
    ]


def test_every_error_class_has_a_code_and_status() -> None:
    classes = [
        value for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, GatewayError)
    ]
    assert len(classes) > 10
    for cls in classes:
        assert isinstance(cls.code, Code), cls
    assert errors.MethodNotAllowed("x", ["GET"]).http_status == 405
    assert errors.PayloadTooLarge("x").http_status == 413
    assert errors.UnsupportedMediaType("x").http_status == 415
    assert errors.UpstreamError("x", Code.NOT_FOUND).http_status == 404
