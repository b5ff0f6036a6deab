"""Path templates of google.api.http rules (google/api/http.proto). Pure: no I/O imports."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True, slots=True)
class Literal:
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Wildcard:  # "*": exactly one segment
    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class DeepWildcard:  # "**": any number of segments; only last
    def __str__(self) -> str:
        return "**"


@dataclass(frozen=True, slots=True)
class Variable:
    field_path: str
    segments: tuple[Literal | Wildcard | DeepWildcard, ...] = (Wildcard(),)

    def __str__(self) -> str:
        if self.segments == (Wildcard(),):
            return "{%s}" % self.field_path
        return "{%s=%s}" % (self.field_path, "/".join(map(str, self.segments)))


Segment = Literal | Wildcard | DeepWildcard | Variable


@dataclass(frozen=True, slots=True)
class Template:
    segments: tuple[Segment, ...]
    verb: str | None = None

    def __str__(self) -> str:
        path = "/" + "/".join(map(str, self.segments))
        return f"{path}:{self.verb}" if self.verb else path


@dataclass(frozen=True, slots=True)
class Matcher:
    template: Template
    regex: re.Pattern[str]
    fields: tuple[tuple[str, bool], ...]  # (field_path, spans several segments)

    def match(self, raw_path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        # http.proto: single-segment values are fully decoded; multi-segment keep "%2F".
        return {
            field: unquote(value) if not multi else _unquote_keep_slash(value)
            for (field, multi), value in zip(self.fields, found.groups(), strict=True)
        }


def compile_template(template: Template) -> Matcher:
    parts: list[str] = []
    fields: list[tuple[str, bool]] = []
    for segment in template.segments:
        if isinstance(segment, Variable):
            fields.append((segment.field_path, segment.segments != (Wildcard(),)))
            parts.append("(" + "/".join(map(_pattern, segment.segments)) + ")")
        else:
            parts.append(_pattern(segment))
    verb = re.escape(":" + template.verb) if template.verb else ""
    return Matcher(template, re.compile("/" + "/".join(parts) + verb), tuple(fields))


def _pattern(segment: Literal | Wildcard | DeepWildcard) -> str:
    match segment:
        case Literal(text):
            return re.escape(text)
        case Wildcard():
            return "[^/]+"
        case DeepWildcard():
            return ".*"


def _unquote_keep_slash(value: str) -> str:
    # keep "%2F" and "%2f" exactly as sent; decode everything else
    parts = re.split("(%2[fF])", value)
    return "".join(part if i % 2 else unquote(part) for i, part in enumerate(parts))
