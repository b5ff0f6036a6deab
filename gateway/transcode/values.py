"""What a decoded path or query value may hold before it becomes a request field. Pure.

Percent-decoding turns `%00`, `%0d%0a` and `%2E%2E%2F` into NUL, CR LF and `../`, which a
backend may write into a log line, a header, a file name or a SQL string. Refused here, once
for every route, after path and query are decoded and before anything is coerced:

* a control character: C0 (U+0000-U+001F, tab, CR and LF included), DEL (U+007F) and C1
  (U+0080-U+009F, NEL among them). A value that needs them travels in a JSON body, where
  they are escaped and a backend expects arbitrary text;
* a dot segment: a path value that is `.` or `..`, or has one between its `/` (a single-segment
  variable bound from `..%2Fadmin`, a multi-segment one from `a/%2E%2E/b`), unless
  `transcoding.allow_dot_segments`. Raw `.`/`..` segments never match a route at all.

Each refusal is InvalidArgument (400) naming the parameter, never echoing the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from gateway.errors import InvalidArgument
from gateway.transcode.httpinput import quote

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The same rule as a JSON Schema (ECMA-262) pattern, for the OpenAPI document's text parameters.
NO_CONTROL_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
_DOT_SEGMENT: Final = re.compile(r"(?:^|/)\.\.?(?:/|$)")


def check_values(
    bindings: Mapping[str, str], query: Sequence[tuple[str, str]], allow_dot_segments: bool
) -> None:
    """InvalidArgument if a path variable or a query parameter holds what backends must not get.

    >>> check_values({"name": "shelves/1"}, [("q", "a b")], False)
    >>> check_values({"id": ".."}, [], False)
    Traceback (most recent call last):
    ...
    gateway.errors.InvalidArgument: path variable id holds a dot segment ("." or "..")
    """
    for field_path, text in bindings.items():
        if _CONTROL.search(text):
            raise InvalidArgument(f"path variable {field_path} holds a control character")
        if not allow_dot_segments and "." in text and _DOT_SEGMENT.search(text):
            raise InvalidArgument(f'path variable {field_path} holds a dot segment ("." or "..")')
    for name, text in query:
        if _CONTROL.search(text) or _CONTROL.search(name):
            raise InvalidArgument(f"query parameter {quote(name)} holds a control character")
