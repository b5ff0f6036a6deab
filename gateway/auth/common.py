"""What the auth modules share: the 401 challenges, and which values may become metadata."""

from __future__ import annotations

import re
from typing import Final

from gateway.errors import Unauthenticated

CHALLENGE: Final = 'Bearer realm="gateway"'  # RFC 6750: no credential was sent
INVALID_TOKEN: Final = CHALLENGE + ', error="invalid_token"'  # one was sent and refused

# Subjects, roles and scopes are joined with "," into metadata: visible ASCII without ",".
_NAME = re.compile(r"[\x21-\x2b\x2d-\x7e]+")
# Mapped claim values go into metadata as they are: printable ASCII (no CR, LF, NUL, non-ASCII).
_TEXT = re.compile(r"[\x20-\x7e]*")


def rejected(message: str) -> Unauthenticated:
    """A presented credential was refused; `message` names the problem, never the credential."""
    return Unauthenticated(message, www_authenticate=INVALID_TOKEN)


def required(message: str = "authentication required") -> Unauthenticated:
    return Unauthenticated(message, www_authenticate=CHALLENGE)


def is_name(value: object) -> bool:
    """A subject, role or scope: non-empty visible ASCII without "," (no space, CR, LF, NUL)."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def is_text(value: object) -> bool:
    return isinstance(value, str) and _TEXT.fullmatch(value) is not None
