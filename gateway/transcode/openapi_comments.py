"""Leading comments of a descriptor set's source info, by full name, as the OpenAPI
document shows them. Pure: stdlib and protobuf only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from google.protobuf import descriptor_pb2

__all__ = ["source_comments"]


def source_comments(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Leading comments by full name: messages, fields, oneofs, enums, enum values (as
    `pkg.Enum.VALUE`), services and methods (as `pkg.Service.Method`)."""
    found: dict[str, str] = {}
    for file in files:
        located = {
            tuple(location.path): location.leading_comments
            for location in file.source_code_info.location
            if location.leading_comments.strip()
        }
        for path, name in _elements(file):
            text = located.get(path)
            if text is not None:
                found[name] = _clean(text)
    return found


# Field numbers in descriptor.proto of the named elements each element holds (its path steps).
_CHILDREN: Final[Mapping[str, tuple[tuple[str, int], ...]]] = MappingProxyType({
    "FileDescriptorProto": (("message_type", 4), ("enum_type", 5), ("service", 6)),
    "DescriptorProto": (("field", 2), ("nested_type", 3), ("enum_type", 4), ("oneof_decl", 8)),
    "EnumDescriptorProto": (("value", 2),),
    "ServiceDescriptorProto": (("method", 2),),
})


def _elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    """(source location path, full name) of every named element of `file`."""
    pending: list[tuple[tuple[int, ...], str, Any]] = [((), file.package, file)]
    while pending:
        path, name, node = pending.pop()
        if path:
            yield path, name
        for attribute, number in _CHILDREN.get(node.DESCRIPTOR.name, ()):
            pending += [
                ((*path, number, index), f"{name}.{child.name}" if name else child.name, child)
                for index, child in enumerate(getattr(node, attribute))
            ]


def _clean(comment: str) -> str:
    # "// text" keeps the space after "//": drop one leading space per line, keep indentation
    lines = [line[1:] if line.startswith(" ") else line for line in comment.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip()
