"""How one message becomes a JSON object, given each field's key and converter.

Two strategies, both built once per descriptor: straight-line code (generated, for messages
without extensions: one attribute read per field; measured 20-35 % faster on the demo
User and Order than ListFields())
and a ListFields() loop (any message, extensions included).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

Convert = Callable[[Any], Any]
FieldPlan = tuple[FieldDescriptor, str, Convert | None]  # field, JSON key, converter (None: as is)
_FLOATS = (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE)


def straight_line(name: str, plan: Sequence[FieldPlan], emit_unpopulated: bool) -> Convert:
    """One generated function per message: presence test, read, convert, store, per field.

    A field is printed when json_format's ListFields() would list it: HasField() for fields
    with presence, non-empty for repeated and maps, non-zero bits for implicit scalars (so
    -0.0 is printed). With emit_unpopulated, fields without presence are always printed.
    """
    namespace: dict[str, Any] = {"copysign": math.copysign}
    lines = ["def convert(m):", "    js = {}"]
    for index, (field, key, convert) in enumerate(plan):
        read = f"m.{field.name}"
        if keyword.iskeyword(field.name) or not field.name.isidentifier():
            read = f"getattr(m, {field.name!r})"
        value = "v"
        if convert is not None:
            namespace[f"c{index}"] = convert
            value = f"c{index}(v)"
        if field.has_presence:
            lines.append(f"    if m.HasField({field.name!r}):")
            lines.append(f"        v = {read}")
            lines.append(f"        js[{key!r}] = {value}")
        elif emit_unpopulated:
            lines.append(f"    v = {read}")
            lines.append(f"    js[{key!r}] = {value}")
        else:
            lines.append(f"    v = {read}")
            lines.append(f"    if {_populated(field)}:")
            lines.append(f"        js[{key!r}] = {value}")
    lines.append("    return js")
    exec(compile("\n".join(lines), f"<json renderer of {name}>", "exec"), namespace)
    generated: Convert = namespace["convert"]
    return generated


def _populated(field: FieldDescriptor) -> str:
    if not field.is_repeated and field.cpp_type in _FLOATS:
        return "v or copysign(1.0, v) < 0.0"  # -0.0 has non-zero bits: printed
    return "v"


def listed(
    plan: Sequence[FieldPlan],
    extensions: Sequence[FieldPlan],
    fallback: Callable[[FieldDescriptor], tuple[str, Convert | None]],
    emit_unpopulated: bool,
) -> Convert:
    """A ListFields() loop over a (field -> key, converter) table; extensions print as "[name]".

    `fallback` compiles an extension that was added to the pool after this table was built.
    """
    entries = {field: (key, convert) for field, key, convert in (*plan, *extensions)}

    def convert(message: Any) -> dict[str, Any]:
        js: dict[str, Any] = {}
        for field, value in message.ListFields():
            try:
                key, field_convert = entries[field]
            except KeyError:
                key, field_convert = fallback(field)
            js[key] = value if field_convert is None else field_convert(value)
        return js

    if not emit_unpopulated:
        return convert
    template: dict[str, Any] = {}  # fields without presence, at their defaults, in order
    fresh: list[tuple[str, type[list[Any]] | type[dict[str, Any]]]] = []
    for field, key, field_convert in plan:
        if field.has_presence:
            continue
        if field.is_repeated:
            template[key] = None
            fresh.append((key, dict if map_entry(field) else list))
        else:
            default = field.default_value
            template[key] = default if field_convert is None else field_convert(default)

    def with_defaults(message: Any) -> dict[str, Any]:
        js = dict(template)
        for key, empty in fresh:
            js[key] = empty()
        js.update(convert(message))
        return js

    return with_defaults


def map_entry(field: FieldDescriptor) -> Descriptor | None:
    """The entry type of a map<K, V> field (a map_entry message with "key" and "value")."""
    entry = field.message_type
    return entry if entry is not None and entry.GetOptions().map_entry else None
