"""proto3 JSON forms of scalars and well-known types, exactly as google.protobuf.json_format.

Pure functions over values and WKT messages; jsonrender.py picks them per field at compile time.
Each raises ValueError where json_format refuses to print (out-of-range Timestamp, NaN in Value).
"""

from __future__ import annotations

import math
from binascii import b2a_base64
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from google.protobuf.internal.type_checkers import ToShortestFloat

_EPOCH = date(1970, 1, 1)
_SECONDS_PER_DAY = 86_400
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
_HOURS_MINUTES = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
_TIMESTAMP_MIN = -62135596800  # 0001-01-01T00:00:00Z
_TIMESTAMP_MAX = 253402300799  # 9999-12-31T23:59:59Z
_DURATION_MAX = 315576000000  # 10000 years
_NANOS = 1_000_000_000


def b64(value: bytes) -> str:
    """bytes -> standard base64 with padding: b"\\xff" -> "/w==" (proto3 JSON: bytes)."""
    return b2a_base64(value, newline=False).decode("ascii")


def double(value: float) -> float | str:
    """double -> number, or "NaN" / "Infinity" / "-Infinity" (proto3 JSON: float, double)."""
    if value - value == 0.0:  # finite
        return value
    return _non_finite(value)


def float32(value: float) -> float | str:
    """float -> the shortest decimal that round-trips through 4 bytes: 0.1f -> 0.1."""
    if value - value == 0.0:
        return float(ToShortestFloat(value))
    return _non_finite(value)


def _non_finite(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _fraction(nanos: int, unit: str) -> str:
    # json_format prints 0, 3, 6 or 9 fractional digits: the fewest that are exact.
    if nanos == 0:
        return unit
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}{unit}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}{unit}"
    return f".{nanos:09d}{unit}"


def timestamp(message: Any) -> str:
    """Timestamp -> RFC 3339 in UTC: seconds=1, nanos=5e8 -> "1970-01-01T00:00:01.500Z"."""
    seconds: int = message.seconds
    nanos: int = message.nanos
    if not _TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX:
        raise ValueError(
            f"Timestamp is not valid: Seconds {seconds} must be in range "
            "[-62135596800, 253402300799]."
        )
    if not 0 <= nanos < _NANOS:
        raise ValueError(f"Timestamp is not valid: Nanos {nanos} must be in a range [0, 999999].")
    days, second_of_day = divmod(seconds, _SECONDS_PER_DAY)
    minute, second = divmod(second_of_day, 60)
    return _day(days) + _HOURS_MINUTES[minute] + _TWO_DIGITS[second] + _fraction(nanos, "Z")


@lru_cache(maxsize=4096)  # a memo of a pure function: replies carry few distinct days
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days)).isoformat() + "T"


def duration(message: Any) -> str:
    """Duration -> seconds with an "s" suffix: seconds=-1, nanos=-5e8 -> "-1.500s"."""
    seconds: int = message.seconds
    nanos: int = message.nanos
    if not -_DURATION_MAX <= seconds <= _DURATION_MAX:
        raise ValueError(
            f"Duration is not valid: Seconds {seconds} must be in range "
            "[-315576000000, 315576000000]."
        )
    if not -_NANOS < nanos < _NANOS:
        raise ValueError(
            f"Duration is not valid: Nanos {nanos} must be in range [-999999999, 999999999]."
        )
    if (nanos < 0 < seconds) or (seconds < 0 < nanos):
        raise ValueError("Duration is not valid: Sign mismatch.")
    if seconds < 0 or nanos < 0:
        return f"-{-seconds}{_fraction(-nanos, 's')}"
    return f"{seconds}{_fraction(nanos, 's')}"


def field_mask(message: Any) -> str:
    """FieldMask -> lowerCamelCase paths joined by ",": ["a.b_c", "d"] -> "a.bC,d"."""
    return ",".join(map(_camel_path, message.paths))


def _camel_path(path: str) -> str:
    # A port of google/protobuf/internal/field_mask.py _SnakeCaseToCamelCase, refusals included.
    result: list[str] = []
    after_underscore = False
    for char in path:
        if char.isupper():
            raise ValueError(
                "Fail to print FieldMask to Json string: Path name "
                f"{path} must not contain uppercase letters."
            )
        if after_underscore:
            if not char.islower():
                raise ValueError(
                    'Fail to print FieldMask to Json string: The character after a "_" '
                    f"must be a lowercase letter in path name {path}."
                )
            result.append(char.upper())
            after_underscore = False
        elif char == "_":
            after_underscore = True
        else:
            result.append(char)
    if after_underscore:
        raise ValueError(
            f'Fail to print FieldMask to Json string: Trailing "_" in path name {path}.'
        )
    return "".join(result)


def struct(message: Any) -> dict[str, Any]:
    """Struct -> a JSON object of its values: fields {"a": number_value 1} -> {"a": 1.0}."""
    return {key: value(item) for key, item in message.fields.items()}


def list_value(message: Any) -> list[Any]:
    """ListValue -> a JSON array of its values."""
    return [value(item) for item in message.values]


def value(message: Any) -> Any:
    """Value -> the JSON value of its kind; unset or null_value -> None; NaN/inf refused."""
    kind = message.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "number_value":
        number: float = message.number_value
        if math.isinf(number):
            raise ValueError(
                "Fail to serialize Infinity for Value.number_value, "
                "which would parse as string_value"
            )
        if math.isnan(number):
            raise ValueError(
                "Fail to serialize NaN for Value.number_value, which would parse as string_value"
            )
        return number
    if kind == "struct_value":
        return struct(message.struct_value)
    if kind == "list_value":
        return list_value(message.list_value)
    return getattr(message, kind)  # string_value, bool_value
