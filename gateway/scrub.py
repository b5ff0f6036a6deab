"""Text from outside (a backend's error message) made fit for a log line. Stdlib only.

Credential-shaped parts (bearer/basic values, JWTs, `password=...`-style pairs) are replaced,
control characters escaped (no forged log lines), and the text cut to MAX_LOGGED characters.
"""

from __future__ import annotations

import re

MAX_LOGGED = 1024

_CREDENTIALS = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
    r"|\b(password|passwd|secret|token|api[_-]?key|authorization)\s*[=:]\s*[^\s,;&]+"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def scrub(text: str) -> str:
    """`text` with credential-shaped parts replaced and control characters escaped, cut short."""
    cleaned = _CREDENTIALS.sub(_redact, text[: MAX_LOGGED * 2])
    cleaned = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", cleaned)
    return cleaned[:MAX_LOGGED] + ("..." if len(cleaned) > MAX_LOGGED else "")


def _redact(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)} [redacted]"
    if match.group(2):
        return f"{match.group(2)}=[redacted]"
    return "[redacted]"
