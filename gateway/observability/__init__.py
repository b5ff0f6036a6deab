"""Observability: OpenTelemetry tracing, Prometheus metrics, JSON access logs, Server-Timing."""
