"""A gRPC-first gateway with REST/JSON transcoding driven by google.api.http."""

__version__ = "0.1.0"
