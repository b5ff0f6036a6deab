"""Pure REST/JSON <-> protobuf transcoding: templates, routes, request decoding, JSON rendering.

Imports protobuf, the stdlib and gateway.errors only; tests/test_layering.py enforces it.
"""
