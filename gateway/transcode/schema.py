"""The loaded proto schema: a private DescriptorPool built from one FileDescriptorSet. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True, eq=False)
class Schema:
    """Every service and message of one descriptor set, resolved in a pool of its own.

    A private pool per load (and reload): the default pool already holds the generated
    modules, and adding a second copy of a file there raises duplicate-symbol errors.
    """

    pool: descriptor_pool.DescriptorPool
    files: tuple[descriptor_pb2.FileDescriptorProto, ...]
    services: Mapping[str, ServiceDescriptor]  # full name -> descriptor
    _classes: dict[str, type[Message]] = field(default_factory=dict)

    def message_class(self, descriptor: Descriptor) -> type[Message]:
        """The concrete message class for a descriptor of this pool (cached)."""
        cls = self._classes.get(descriptor.full_name)
        if cls is None:
            cls = message_factory.GetMessageClass(descriptor)
            self._classes[descriptor.full_name] = cls
        return cls

    def method(self, full_method: str) -> MethodDescriptor | None:
        """Look up "/pkg.Service/Method"."""
        service_name, _, method_name = full_method.lstrip("/").partition("/")
        service = self.services.get(service_name)
        if service is None:
            return None
        return service.methods_by_name.get(method_name)


def load_schema(descriptor_set: bytes) -> Schema:
    """Build a Schema from serialized FileDescriptorSet bytes (protoc/buf output).

    Files must come with their imports (`--include_imports`), in any order.
    """
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    except DecodeError as exc:
        raise ConfigError(f"descriptor set is not a valid FileDescriptorSet: {exc}") from exc
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for f in fds.file}
    added: set[str] = set()

    def add(name: str, chain: tuple[str, ...]) -> None:
        if name in added:
            return
        if name in chain:
            raise ConfigError(f"descriptor set has an import cycle: {' -> '.join((*chain, name))}")
        proto = pending.get(name)
        if proto is None:
            raise ConfigError(
                f"descriptor set lacks {name!r} (imported by {chain[-1]!r}); "
                "build it with --include_imports"
            )
        for dependency in proto.dependency:
            add(dependency, (*chain, name))
        try:
            pool.Add(proto)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"descriptor set file {name!r} is invalid: {exc}") from exc
        added.add(name)

    for name in pending:
        add(name, ())
    services = {
        service.full_name: service
        for proto in fds.file
        for service in pool.FindFileByName(proto.name).services_by_name.values()
    }
    return Schema(pool=pool, files=tuple(fds.file), services=MappingProxyType(services))
