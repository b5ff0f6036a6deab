"""Upstream: backend pools, channels and the terminal handler that makes the gRPC call."""
