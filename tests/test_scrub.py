"""Outside text fit for a log line (gateway/scrub.py) and the metadata lists of the edges
(gateway/edges/metadata_filter.py)."""

from __future__ import annotations

import pytest

from gateway.edges.metadata_filter import MetadataFilter
from gateway.scrub import MAX_LOGGED, scrub

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("auth failed: Bearer abc.def-123 for u-1", "Bearer [redacted] for u-1", "abc.def"),
        ("Basic dXNlcjpwYXNz rejected", "Basic [redacted] rejected", "dXNlcjpwYXNz"),
        (f"token {JWT} expired", "token [redacted] expired", JWT),
        ("dsn=postgres://x password=hunter2 host=db", "password=[redacted] host=db", "hunter2"),
        ("api_key: k-123, next", "api_key=[redacted], next", "k-123"),
        ("line one\r\nFAKE LOG LINE", "line one\\x0d\\x0aFAKE LOG LINE", "\n"),
    ],
)
def test_credentials_and_control_characters_never_reach_a_log_line(text: str, kept: str,
                                                                    gone: str) -> None:
    cleaned = scrub(text)
    assert kept in cleaned
    assert gone not in cleaned


def test_long_text_is_cut() -> None:
    assert scrub("x" * 10_000) == "x" * MAX_LOGGED + "..."


def test_an_allow_list_passes_only_what_it_names_and_never_grpc_keys() -> None:
    allowed = MetadataFilter(["X-Book-*", "etag", "grpc-status"], allow=True)
    metadata = (("x-book-etag", "1"), ("etag", "2"), ("set-cookie", "s"), ("grpc-status", "0"),
                ("x-bookish", "3"))
    assert allowed.apply(metadata) == (("x-book-etag", "1"), ("etag", "2"))
    assert MetadataFilter([], allow=True).apply(metadata) == ()


def test_a_deny_list_passes_the_rest() -> None:
    denied = MetadataFilter(["set-cookie", "x-envoy-*"], allow=False)
    metadata = (("set-cookie", "s"), ("x-envoy-upstream-service-time", "3"), ("x-trace", "t"),
                (":status", "200"), ("grpc-message", "m"))
    assert denied.apply(metadata) == (("x-trace", "t"),)


def test_decisions_cached_for_a_bounded_number_of_keys() -> None:
    denied = MetadataFilter(["secret-*"], allow=False)
    for index in range(5000):  # a backend inventing keys does not grow memory without bound
        assert denied.passes(f"k-{index}")
    assert not denied.passes("secret-x")
    assert len(denied._decided) <= 1024
