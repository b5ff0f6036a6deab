"""Path templates (google/api/http.proto): parse, print, match and bind; tables and properties."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.errors import ConfigError, InvalidArgument
from gateway.transcode.template import (
    DeepWildcard,
    Literal,
    Part,
    Segment,
    Template,
    Variable,
    Wildcard,
    compile_template,
    parse_template,
    split_path,
    strip_verb,
)

STAR, DEEP = Wildcard(), DeepWildcard()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("/v1", Template((Literal("v1"),)), id="one-literal"),
        pytest.param(
            "/v1/*/x/**", Template((Literal("v1"), STAR, Literal("x"), DEEP)), id="bare-wildcards"
        ),
        pytest.param("/v1/{id}", Template((Literal("v1"), Variable("id"))), id="short-variable"),
        pytest.param(
            "/v1/{id=*}", Template((Literal("v1"), Variable("id"))), id="explicit-star-same"
        ),
        pytest.param(
            "/v1/{book.name=shelves/*/books/*}",
            Template(
                (
                    Literal("v1"),
                    Variable("book.name", (Literal("shelves"), STAR, Literal("books"), STAR)),
                )
            ),
            id="nested-field-multi-segment",
        ),
        pytest.param(
            "/v1/files/{path=**}",
            Template((Literal("v1"), Literal("files"), Variable("path", (DEEP,)))),
            id="deep-variable",
        ),
        pytest.param(
            "/v1/{parent=shelves/*}/books:batchGet",
            Template(
                (Literal("v1"), Variable("parent", (Literal("shelves"), STAR)), Literal("books")),
                "batchGet",
            ),
            id="custom-verb",
        ),
        pytest.param(
            "/v1/x:a:b", Template((Literal("v1"), Literal("x")), "a:b"), id="verb-with-colon"
        ),
        pytest.param(
            "/v1/{p=**}:undo",
            Template((Literal("v1"), Variable("p", (DEEP,))), "undo"),
            id="deep-then-verb",
        ),
        pytest.param(
            "/a%2Fb/~x-y_z.w",
            Template((Literal("a%2Fb"), Literal("~x-y_z.w"))),
            id="pct-and-unreserved",
        ),
        pytest.param("/{_a.b_2}", Template((Variable("_a.b_2"),)), id="ident-underscores"),
    ],
)
def test_parse(text: str, expected: Template) -> None:
    assert parse_template(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("v1/x", "must start with '/'", id="no-leading-slash"),
        pytest.param("", "must start with '/'", id="empty"),
        pytest.param("/", "empty segment", id="root-only"),
        pytest.param("/v1//x", "empty segment", id="double-slash"),
        pytest.param("/v1/", "empty segment", id="trailing-slash"),
        pytest.param("/v1/**/x", "'**' must be the last segment", id="deep-not-last"),
        pytest.param(
            "/v1/{p=**/x}", "'**' must be the last segment", id="deep-not-last-in-variable"
        ),
        pytest.param("/v1/{p=**}/{q}", "'**' must be the last segment", id="deep-before-variable"),
        pytest.param("/{a={b}}", "variables must not nest", id="nested-variable"),
        pytest.param("/{a}/{a}", "'a' is bound twice", id="bound-twice"),
        pytest.param("/{a", "lacks its closing '}'", id="unclosed"),
        pytest.param("/{a=*", "lacks its closing '}'", id="unclosed-after-template"),
        pytest.param("/{}", "field path must be IDENT", id="empty-field-path"),
        pytest.param("/{1a}", "field path must be IDENT", id="ident-starts-with-digit"),
        pytest.param("/{a..b}", "field path must be IDENT", id="empty-ident"),
        pytest.param("/{a-b}", "field path must be IDENT", id="dash-in-ident"),
        pytest.param("/{a=}", "empty segment", id="empty-variable-template"),
        pytest.param("/v1/a*b", "not a LITERAL", id="star-in-literal"),
        pytest.param("/v1/a b", "not a LITERAL", id="space-in-literal"),
        pytest.param("/v1/%zz", "not a LITERAL", id="bad-escape-in-literal"),
        pytest.param("/v1/..", "dot segment", id="dot-dot"),
        pytest.param("/./x", "dot segment", id="dot"),
        pytest.param("/v1:", "verb after ':' must be a non-empty LITERAL", id="empty-verb"),
        pytest.param("/v1:x/y", "verb after ':'", id="slash-after-verb"),
        pytest.param("/v1/x:{y}", "verb after ':'", id="variable-in-verb"),
        pytest.param("/v1/x}", "unexpected '}'", id="stray-brace"),
        pytest.param("/v1/{a=x:y}", "lacks its closing '}'", id="colon-in-variable"),
    ],
)
def test_parse_errors_name_template_and_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_template(text)
    assert f"path template {text!r}" in str(caught.value)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        pytest.param("/v1/{id=*}", "/v1/{id}", id="star-variable-prints-short"),
        pytest.param("/v1/{n=shelves/*}/b:get", "/v1/{n=shelves/*}/b:get", id="verb"),
        pytest.param("/v1/{p=**}", "/v1/{p=**}", id="deep"),
    ],
)
def test_str_prints_source_form(text: str, printed: str) -> None:
    assert str(parse_template(text)) == printed


# --- properties -----------------------------------------------------------------------------

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
RICH_LITERAL = st.from_regex(
    r"(?:[A-Za-z0-9\-._~!$&'()+,;=@]|%[0-9A-Fa-f]{2}){1,6}", fullmatch=True
).filter(lambda t: t not in (".", ".."))
PLAIN_LITERAL = st.from_regex(r"[a-z0-9\-_~]{1,6}", fullmatch=True)  # decodes to itself
VERB = st.from_regex(r"(?:[A-Za-z0-9\-._~!$&'()+,;=@:]|%[0-9A-F]{2}){1,6}", fullmatch=True)


@st.composite
def templates(draw: st.DrawFn, literals: st.SearchStrategy[str] = RICH_LITERAL) -> Template:
    part: st.SearchStrategy[Part] = st.one_of(literals.map(Literal), st.just(STAR))
    fields = st.lists(IDENT, min_size=1, max_size=3).map(".".join)
    segment: st.SearchStrategy[Segment] = st.one_of(
        part, st.builds(Variable, fields, st.lists(part, min_size=1, max_size=3).map(tuple))
    )
    segments: list[Segment] = draw(st.lists(segment, min_size=1, max_size=5))
    tail = draw(st.sampled_from(["none", "deep", "deep-variable"]))
    if tail == "deep":
        segments.append(DEEP)
    elif tail == "deep-variable":
        head = draw(st.lists(part, max_size=2))
        segments.append(Variable(draw(fields), (*head, DEEP)))
    seen: set[str] = set()  # http.proto: a variable binds its field once
    for i, seg in enumerate(segments):
        if isinstance(seg, Variable):
            while seg.field_path in seen:
                seg = Variable(seg.field_path + "_", seg.segments)
            seen.add(seg.field_path)
            segments[i] = seg
    return Template(tuple(segments), draw(st.none() | VERB))


@given(templates())
def test_template_round_trips_through_str(template: Template) -> None:
    assert parse_template(str(template)) == template


# Any text at all, but not a whole segment of dots: a client's URL library resolves those
# before sending (RFC 3986 5.2.4), and the gateway refuses raw dot segments.
VALUES = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8).filter(
    lambda v: v not in (".", "..")
)


@given(templates(literals=PLAIN_LITERAL), st.data())
def test_expanded_path_matches_and_binds_the_values(
    template: Template, data: st.DataObject
) -> None:
    """http.proto expansion: single-segment values encode all but [-_.~0-9a-zA-Z]; the server
    decodes them fully. Multi-segment values keep "/" between segments; a "/" inside one
    segment's value arrives as "%2F" and stays so."""
    path: list[str] = []
    expected: dict[str, str] = {}
    for seg in template.segments:
        if not isinstance(seg, Variable):
            path.extend(_expand(seg, data)[0])
            continue
        raw: list[str] = []
        bound: list[str] = []
        for part in seg.segments:
            encoded, values = _expand(part, data)
            raw.extend(encoded)
            bound.extend(values)
        path.extend(raw)
        expected[seg.field_path] = (
            "/".join(v.replace("/", "%2F") for v in bound) if seg.multi_segment else bound[0]
        )
    assume(path or template.verb is None)  # "/:verb" has nothing before the verb
    text = "/" + "/".join(path) + (f":{template.verb}" if template.verb else "")
    assert compile_template(template).match(text) == expected


def _expand(part: Part | Segment, data: st.DataObject) -> tuple[list[str], list[str]]:
    if isinstance(part, Literal):
        return [part.text], [part.text]
    if isinstance(part, Wildcard):
        value = data.draw(VALUES)
        return [quote(value, safe="")], [value]
    values = data.draw(st.lists(VALUES, max_size=3))
    return [quote(v, safe="") for v in values], values


# --- matching by table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        pytest.param("/v1/k/{s}", "/v1/k/a%2Fb", {"s": "a/b"}, id="single-decodes-slash"),
        pytest.param(
            "/v1/k/{s}", "/v1/k/..%2Fadmin", {"s": "../admin"}, id="single-binds-dots-literally"
        ),
        pytest.param("/v1/k/{s}", "/v1/k/%2E%2E", {"s": ".."}, id="encoded-dot-dot-is-text"),
        pytest.param("/v1/k/{s}", "/v1/k/%E2%82%AC%20x", {"s": "€ x"}, id="utf8"),
        pytest.param("/v1/k/{s}", "/v1/k/a+b", {"s": "a+b"}, id="plus-is-not-space-in-path"),
        pytest.param("/v1/k/{s}", "/v1/k/a:b", {"s": "a:b"}, id="colon-without-verb-is-text"),
        pytest.param("/v1/k/{s}", "/v1/k/x?s=y", {"s": "x"}, id="query-ignored"),
        pytest.param("/v1/k/{s=lit}", "/v1/k/lit", {"s": "lit"}, id="literal-variable"),
        pytest.param(
            "/v1/f/{p=**}", "/v1/f/a%2Fb/c%2fd/%41", {"p": "a%2Fb/c%2fd/A"}, id="multi-keeps-2F"
        ),
        pytest.param("/v1/f/{p=**}", "/v1/f/%252F", {"p": "%2F"}, id="multi-decodes-25"),
        pytest.param("/v1/f/{p=**}", "/v1/f", {"p": ""}, id="deep-zero-segments"),
        pytest.param("/v1/f/{p=**}", "/v1/f/a:b", {"p": "a:b"}, id="deep-colon-is-text"),
        pytest.param("/{p=**}", "/", {"p": ""}, id="root-zero-segments"),
        pytest.param(
            "/v1/{n=s/*}/b/{id}", "/v1/s/1/b/2", {"n": "s/1", "id": "2"}, id="two-variables"
        ),
        pytest.param("/v1/o/{id}:cancel", "/v1/o/o-1:cancel", {"id": "o-1"}, id="verb-stripped"),
        pytest.param(
            "/v1/o/{id}:cancel", "/v1/o/a:b:cancel", {"id": "a:b"}, id="verb-is-the-suffix"
        ),
        pytest.param("/v1/{p=**}:undo", "/v1/a/b:undo", {"p": "a/b"}, id="deep-then-verb"),
        pytest.param("/v1/{p=**}:undo", "/v1:undo", {"p": ""}, id="deep-empty-then-verb"),
    ],
)
def test_match_binds(template: str, path: str, expected: dict[str, str]) -> None:
    assert compile_template(parse_template(template)).match(path) == expected


@pytest.mark.parametrize(
    ("template", "path"),
    [
        pytest.param("/v1/k/{s}", "/v1/k/..", id="raw-dot-dot"),
        pytest.param("/v1/k/{s}", "/v1/k/.", id="raw-dot"),
        pytest.param("/v1/f/{p=**}", "/v1/f/a/../b", id="raw-dot-dot-in-deep"),
        pytest.param("/v1/k/{s}", "/v1/k/", id="trailing-slash"),
        pytest.param("/v1/f/{p=**}", "/v1/f/a//b", id="empty-segment"),
        pytest.param("/v1/k/{s}", "v1/k/x", id="relative"),
        pytest.param("/v1/k/{s}", "/v1/k/x/y", id="too-long"),
        pytest.param("/v1/k/{s}", "/v1/k", id="too-short"),
        pytest.param("/v1/k/{s}", "/v1/K/x", id="literals-case-sensitive"),
        pytest.param("/v1/k/{s}", "/v1/%6B/x", id="literals-compare-raw"),
        pytest.param("/v1/o/{id}:cancel", "/v1/o/o-1", id="verb-missing"),
        pytest.param("/v1/o/{id}:cancel", "/v1/o/:cancel", id="nothing-before-verb"),
        pytest.param("/v1/o/{id}:cancel", "/v1/o/o-1:cancelx", id="other-verb"),
        pytest.param("/v1/{n=s/*}", "/v1/t/1", id="literal-inside-variable"),
    ],
)
def test_match_refuses(template: str, path: str) -> None:
    assert compile_template(parse_template(template)).match(path) is None


@pytest.mark.parametrize(
    ("template", "path"),
    [
        pytest.param("/v1/{s}", "/v1/%FF", id="not-utf8"),
        pytest.param("/v1/{s}", "/v1/%zz", id="malformed-escape"),
        pytest.param("/v1/{s}", "/v1/50%", id="truncated-escape"),
        pytest.param("/v1/{p=**}", "/v1/a/%C3", id="not-utf8-multi"),
    ],
)
def test_bad_encoding_is_invalid_argument(template: str, path: str) -> None:
    with pytest.raises(InvalidArgument, match="percent"):
        compile_template(parse_template(template)).match(path)


def test_split_path_and_strip_verb() -> None:
    assert split_path("/v1/a%2Fb/c?x=/y") == ["v1", "a%2Fb", "c"]
    assert split_path("/") == []
    assert split_path("/v1/../x") is None
    assert strip_verb(["v1", "o-1:cancel"], "cancel") == ["v1", "o-1"]
    assert strip_verb(["v1", ":cancel"], "cancel") is None
    assert strip_verb([], "cancel") is None
