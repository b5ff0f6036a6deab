"""Path templates of google.api.http rules (google/api/http.proto): parse, print, match, bind.

Pure: imports the stdlib and gateway.errors only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from gateway.errors import ConfigError, InvalidArgument


@dataclass(frozen=True, slots=True)
class Literal:
    text: str  # as written in the template; compared with the raw (still encoded) path segment

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Wildcard:  # "*": exactly one segment
    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class DeepWildcard:  # "**": zero or more segments; only last (a verb may follow)
    def __str__(self) -> str:
        return "**"


Part = Literal | Wildcard | DeepWildcard


@dataclass(frozen=True, slots=True)
class Variable:
    field_path: str
    segments: tuple[Part, ...] = (Wildcard(),)

    def __str__(self) -> str:
        if self.segments == (Wildcard(),):
            return f"{{{self.field_path}}}"  # "{x=*}" prints in its short form "{x}"
        return f"{{{self.field_path}={'/'.join(map(str, self.segments))}}}"

    @property
    def multi_segment(self) -> bool:
        """http.proto: "{x}", "{x=*}", "{x=lit}" are single-segment; "{x=a/*}", "{x=**}" are not."""
        return len(self.segments) > 1 or isinstance(self.segments[0], DeepWildcard)


Segment = Literal | Wildcard | DeepWildcard | Variable


@dataclass(frozen=True, slots=True)
class Template:
    segments: tuple[Segment, ...]
    verb: str | None = None

    def __str__(self) -> str:
        path = "/" + "/".join(map(str, self.segments))
        return f"{path}:{self.verb}" if self.verb else path

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(s for s in self.segments if isinstance(s, Variable))

    @property
    def parts(self) -> tuple[Part, ...]:
        """The segments with variables flattened away: the shape the path must have."""
        return tuple(
            p for s in self.segments for p in (s.segments if isinstance(s, Variable) else (s,))
        )


# LITERAL: RFC 3986 pchar without ":" (it starts the verb) and "*" (wildcards), or pct-encoded.
_LITERAL = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()+,;=@]|%[0-9A-Fa-f]{2})+")
_VERB = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()+,;=@:]|%[0-9A-Fa-f]{2})+")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_WORD = re.compile(r"[^/:{}]*")


def parse_template(text: str) -> Template:
    """Parse a path template per the google/api/http.proto grammar; ConfigError names the problem.

        Template = "/" Segments [ Verb ] ;
        Segments = Segment { "/" Segment } ;
        Segment  = "*" | "**" | LITERAL | Variable ;
        Variable = "{" FieldPath [ "=" Segments ] "}" ;
        FieldPath = IDENT { "." IDENT } ;
        Verb     = ":" LITERAL ;

    "**" may only be the last segment; variables do not nest nor repeat; "." and ".." are not
    literals; a ":" outside a variable starts the verb, which runs to the end and may hold ":".

    >>> parse_template("/v1/{name=shelves/*}/books:batchGet").verb
    'batchGet'
    """
    return _Parser(text).template()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str, *, at: bool = True) -> ConfigError:
        where = f" (at offset {self.pos})" if at else ""
        return ConfigError(f"path template {self.text!r}: {problem}{where}")

    def template(self) -> Template:
        if not self.text.startswith("/"):
            raise self.fail("must start with '/'")
        self.pos = 1
        segments = self.segments(in_variable=False)
        verb = None
        if self.text.startswith(":", self.pos):
            self.pos += 1
            found = _VERB.match(self.text, self.pos)
            if found is None or found.end() != len(self.text):
                raise self.fail("the verb after ':' must be a non-empty LITERAL")
            verb, self.pos = found.group(), found.end()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        template = Template(tuple(segments), verb)
        self.check(template)
        return template

    def segments(self, *, in_variable: bool) -> list[Segment]:
        found = [self.segment(in_variable)]
        while self.text.startswith("/", self.pos):
            self.pos += 1
            found.append(self.segment(in_variable))
        return found

    def segment(self, in_variable: bool) -> Segment:
        if self.text.startswith("{", self.pos):
            if in_variable:
                raise self.fail("variables must not nest")
            return self.variable()
        found = _WORD.match(self.text, self.pos)
        end = found.end() if found else self.pos
        word, self.pos = self.text[self.pos : end], end
        if word == "":
            raise self.fail("empty segment ('//', a trailing '/' or nothing before '{', ':')")
        if word in ("*", "**"):
            return Wildcard() if word == "*" else DeepWildcard()
        if word in (".", ".."):
            raise self.fail(f"{word!r} is a dot segment, not a literal")
        if _LITERAL.fullmatch(word) is None:
            raise self.fail(f"{word!r} is not a LITERAL (pchar or %XX, no '*' or ':')")
        return Literal(word)

    def variable(self) -> Variable:
        self.pos += 1
        found = _FIELD_PATH.match(self.text, self.pos)
        self.pos = found.end() if found else self.pos
        if found is None or self.text[self.pos : self.pos + 1] not in ("=", "}", ""):
            raise self.fail("a variable's field path must be IDENT{.IDENT}, IDENT=[A-Za-z_]\\w*")
        field_path = found.group()
        parts: tuple[Part, ...] = (Wildcard(),)
        if self.text.startswith("=", self.pos):
            self.pos += 1
            parts = tuple(p for p in self.segments(in_variable=True) if not isinstance(p, Variable))
        if not self.text.startswith("}", self.pos):
            raise self.fail(f"variable {field_path!r} lacks its closing '}}'")
        self.pos += 1
        return Variable(field_path, parts)

    def check(self, template: Template) -> None:
        parts = template.parts
        if any(isinstance(p, DeepWildcard) for p in parts[:-1]):
            raise self.fail("'**' must be the last segment (only a verb may follow it)", at=False)
        seen: set[str] = set()
        for variable in template.variables:
            if variable.field_path in seen:
                raise self.fail(f"variable {variable.field_path!r} is bound twice", at=False)
            seen.add(variable.field_path)


@dataclass(frozen=True, slots=True)
class _Slot:
    field_path: str
    start: int  # index in the path's segments
    stop: int | None  # None: to the end ("**")
    multi: bool


@dataclass(frozen=True, slots=True)
class Matcher:
    """A template compiled for matching: its flattened shape and where each variable sits."""

    template: Template
    parts: tuple[Part, ...]
    slots: tuple[_Slot, ...]

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Match one raw path (no query) against this template alone; None if it does not fit.

        Same rules as the route table (split_path, strip_verb, then bind), e.g.
        "/v1/{id}:cancel" on "/v1/o-1:cancel" -> {"id": "o-1"}.
        """
        segments = split_path(raw_path)
        if segments is None:
            return None
        if self.template.verb is not None:
            segments = strip_verb(segments, self.template.verb)
        if segments is None or not _fits(self.parts, segments):
            return None
        return self.bind(segments)

    def bind(self, segments: Sequence[str]) -> dict[str, str]:
        """Variable values of a path already known to fit, decoded per google/api/http.proto.

        Single-segment variables are fully percent-decoded; multi-segment ones decode all but
        "%2F"/"%2f". A value is only ever bound, never re-routed: "..%2Fadmin" binds "../admin".
        Raises InvalidArgument on a malformed escape or bytes that are not UTF-8.
        """
        found: dict[str, str] = {}
        for slot in self.slots:
            raw = "/".join(segments[slot.start : slot.stop])
            found[slot.field_path] = _decode(raw, slot.multi) if "%" in raw else raw
        return found


def compile_template(template: Template) -> Matcher:
    """Compile a Template once, at load, into a Matcher (http.proto "Path template syntax").

    >>> compile_template(parse_template("/v1/{name=shelves/*}")).match("/v1/shelves/s%201")
    {'name': 'shelves/s 1'}
    """
    slots: list[_Slot] = []
    index = 0
    for segment in template.segments:
        if isinstance(segment, Variable):
            deep = isinstance(segment.segments[-1], DeepWildcard)
            stop = None if deep else index + len(segment.segments)
            slots.append(_Slot(segment.field_path, index, stop, segment.multi_segment))
            index += len(segment.segments)
        else:
            index += 1
    return Matcher(template, template.parts, tuple(slots))


def split_path(raw_path: str) -> list[str] | None:
    """Split a raw request path into its still-encoded segments; None if no route may match it.

    Anything from "?" on is dropped (aiohttp's raw_path carries the query). "/" is zero
    segments. Empty segments ("//", a trailing "/") and raw "." / ".." segments never match:
    routing does not normalise, and a path that a proxy would resolve differently is refused
    rather than guessed at. Encoded dots ("%2E%2E") are ordinary text and bind literally.

    >>> split_path("/v1/a%2Fb/c?x=1")
    ['v1', 'a%2Fb', 'c']
    """
    path = raw_path.partition("?")[0]
    if not path.startswith("/"):
        return None
    if path == "/":
        return []
    segments = path[1:].split("/")
    if any(s in ("", ".", "..") for s in segments):
        return None
    return segments


def strip_verb(segments: Sequence[str], verb: str) -> list[str] | None:
    """The segments without a ":verb" suffix on the last one; None if it does not end so.

    http.proto `Verb = ":" LITERAL`, matched as grpc-gateway does: a suffix of the last raw
    segment, with something before it. A ":" that starts no known verb stays in the segment,
    so "/v1/files/{path=**}" binds "a:b" from "/v1/files/a:b".

    >>> strip_verb(["v1", "orders", "o-1:cancel"], "cancel")
    ['v1', 'orders', 'o-1']
    """
    suffix = ":" + verb
    if not segments or not segments[-1].endswith(suffix) or len(segments[-1]) == len(suffix):
        return None
    return [*segments[:-1], segments[-1][: -len(suffix)]]


def _fits(parts: Sequence[Part], segments: Sequence[str]) -> bool:
    for i, part in enumerate(parts):
        if isinstance(part, DeepWildcard):
            return True
        if i >= len(segments) or (isinstance(part, Literal) and part.text != segments[i]):
            return False
    return len(parts) == len(segments)


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SLASH = re.compile(r"(%2[fF])")


def _decode(raw: str, multi: bool) -> str:
    if _BAD_ESCAPE.search(raw):
        raise InvalidArgument(f"path value {raw!r} has a malformed percent-escape")
    try:
        if not multi:
            return unquote(raw, errors="strict")
        pieces = _ENCODED_SLASH.split(raw)  # odd indexes are the kept "%2F"/"%2f"
        return "".join(p if i % 2 else unquote(p, errors="strict") for i, p in enumerate(pieces))
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"path value {raw!r} is not percent-encoded UTF-8") from exc
