"""Aggregate specs: config `aggregates` + the loaded descriptors -> validated plans, at load.

Each part's method, request sources, types and response field are checked here, and the parts
must form a DAG; every mistake is a ConfigError naming the aggregate and the part. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from gateway.bff.values import Path, assign
from gateway.call import Kind
from gateway.config import Aggregate, AggregatePart, PartSource
from gateway.configcheck import closest, method_names
from gateway.errors import ConfigError
from gateway.transcode.schema import Schema

REQUEST = "request"
IDENTITY = "identity"
_IDENTITY_FIELDS = ("user_id",)
_F = FieldDescriptor


@dataclass(frozen=True, slots=True)
class FromRequest:
    path: Path  # in the aggregate's request message


@dataclass(frozen=True, slots=True)
class FromIdentity:
    """The authenticated caller's id (Principal.subject, sent on as x-user-id)."""


@dataclass(frozen=True, slots=True)
class FromPart:
    part: str
    path: Path  # in that part's reply message; () is the whole reply


@dataclass(frozen=True, slots=True)
class Constant:
    value: bool | int | float | str


Source = FromRequest | FromIdentity | FromPart | Constant


@dataclass(frozen=True, slots=True)
class Binding:
    """One request field of a part and where its value comes from."""

    target: Path  # in the part's request message; all but the last are singular messages
    source: Source
    spread: bool = False  # a list into a singular field: one call per distinct value


@dataclass(frozen=True, slots=True, eq=False)
class PartPlan:
    name: str  # the response field it fills
    method: str
    request_class: type[Message]
    reply_class: type[Message]
    bindings: tuple[Binding, ...]
    depends_on: tuple[str, ...]
    required: bool
    idempotent: bool
    timeout_s: float  # the part's own timeout, capped by its backend's
    max_calls: int

    @property
    def fan_out(self) -> bool:
        return any(binding.spread for binding in self.bindings)


@dataclass(frozen=True, slots=True, eq=False)
class AggregatePlan:
    method: str
    request_class: type[Message]
    reply_class: type[Message]
    parts: tuple[PartPlan, ...]  # dependencies before dependants
    errors_field: str | None  # repeated {part, code, message}; None when every part is required
    timeout_s: float | None
    max_parallel: int


class MethodShape(Protocol):
    """What the gateway knows of a method a backend serves (gateway.edges.rpc.MethodInfo)."""

    @property
    def kind(self) -> Kind: ...

    @property
    def idempotent(self) -> bool: ...


def compile_aggregates(aggregates: Mapping[str, Aggregate], schema: Schema,
                       served: Mapping[str, MethodShape],
                       timeouts: Mapping[str, float]) -> dict[str, AggregatePlan]:
    """Plans for every configured aggregate.

    `served` holds the methods backends serve ("/pkg.Service/Method" -> shape), `timeouts` each
    served service's backend timeout_s. Every method of an aggregate's service must itself be an
    aggregate, and no backend may serve that service.
    """
    plans = {method: _compile(method, spec, schema, served, timeouts)
             for method, spec in aggregates.items()}
    for service in {method[1:].partition("/")[0] for method in plans}:
        for method in schema.services[service].methods:
            if f"/{service}/{method.name}" not in plans:
                raise ConfigError(
                    f"aggregates: {service}/{method.name} is neither an aggregate nor served by "
                    f"a backend; declare every method of {service} under aggregates"
                )
    return plans


def _compile(method: str, spec: Aggregate, schema: Schema, served: Mapping[str, MethodShape],
             timeouts: Mapping[str, float]) -> AggregatePlan:
    where = f"aggregates.{method}"
    descriptor = _method(schema, method, where)
    if descriptor.client_streaming or descriptor.server_streaming:
        raise ConfigError(f"{where}: an aggregate must be a unary method")
    if method in served:
        raise ConfigError(f"{where}: its service is served by a backend; an aggregate's is not")
    reply = descriptor.output_type
    optional = [name for name, part in spec.parts.items() if not part.required]
    errors_field = _errors_field(reply, spec.errors_field, where) if optional else None
    for name in spec.parts:
        if name in (REQUEST, IDENTITY) or name == errors_field:
            raise ConfigError(f"{where}.parts.{name}: the name {name!r} is reserved")
    methods = {name: _method(schema, part.method, f"{where}.parts.{name}.method")
               for name, part in spec.parts.items()}
    replies = {name: method.output_type for name, method in methods.items()}
    parts: dict[str, PartPlan] = {}
    for name in _ordered({name: _dependencies(part, spec.parts)
                          for name, part in spec.parts.items()}, where):
        fanned = frozenset(done for done, plan in parts.items() if plan.fan_out)
        parts[name] = _part(f"{where}.parts.{name}", name, spec.parts[name], methods[name],
                            descriptor, replies, fanned, schema, served, timeouts)
    for plan in parts.values():
        for dependency in plan.depends_on:
            if plan.required and not parts[dependency].required:
                raise ConfigError(
                    f"{where}.parts.{plan.name}: a required part cannot depend on the optional "
                    f"part {dependency!r}; make both required or both optional"
                )
    return AggregatePlan(
        method, schema.message_class(descriptor.input_type), schema.message_class(reply),
        tuple(parts.values()), errors_field, spec.timeout_s, spec.max_parallel,
    )


def _part(where: str, name: str, part: AggregatePart, method: MethodDescriptor,
          aggregate: MethodDescriptor, replies: Mapping[str, Descriptor],
          fanned: frozenset[str], schema: Schema, served: Mapping[str, MethodShape],
          timeouts: Mapping[str, float]) -> PartPlan:
    shape = served.get(part.method)
    if shape is None:
        raise ConfigError(f"{where}.method: no backend serves {part.method}")
    if shape.kind is not Kind.UNARY:
        raise ConfigError(f"{where}.method: {part.method} is streaming; parts must be unary")
    bindings = tuple(
        _binding(f"{where}.request.{target}", target, source, method.input_type,
                 aggregate.input_type, replies, fanned)
        for target, source in part.request.items()
    )
    if sum(binding.spread for binding in bindings) > 1:
        raise ConfigError(f"{where}.request: at most one list may fan a part out")
    _check_constants(where, schema.message_class(method.input_type), bindings)
    field = aggregate.output_type.fields_by_name.get(name)
    fan_out = any(binding.spread for binding in bindings)
    wanted = f"{'repeated ' if fan_out else ''}{method.output_type.full_name}"
    if (field is None or field.message_type is None
            or field.message_type.full_name != method.output_type.full_name
            or _repeated(field) != fan_out or _is_map(field)):
        raise ConfigError(
            f"{where}: {aggregate.output_type.full_name} needs a field {name!r} of type {wanted} "
            f"for the reply of {part.method}"
            + (" (the part fans out over a list)" if fan_out else "")
        )
    depends_on = tuple(dict.fromkeys(
        binding.source.part for binding in bindings if isinstance(binding.source, FromPart)
    ))
    service = part.method[1:].partition("/")[0]
    backend_timeout = timeouts.get(service, float("inf"))
    timeout_s = min(part.timeout_s or backend_timeout, backend_timeout)
    return PartPlan(
        name, part.method, schema.message_class(method.input_type),
        schema.message_class(method.output_type), bindings, depends_on, part.required,
        shape.idempotent, timeout_s, part.max_calls,
    )


def _binding(where: str, target_text: str, source_text: PartSource, request: Descriptor,
             aggregate_request: Descriptor, replies: Mapping[str, Descriptor],
             fanned: frozenset[str]) -> Binding:
    target = _path(request, target_text, where, target=True)
    leaf = target[-1]
    if not isinstance(source_text, str) or _quoted(source_text):
        value = source_text[1:-1] if isinstance(source_text, str) else source_text
        return Binding(target, Constant(_constant(value, leaf, where)))
    head, _, rest = source_text.partition(".")
    source: Source
    if head == REQUEST:
        if not rest:
            raise ConfigError(f"{where}: {source_text!r} names no field of the request")
        path = _path(aggregate_request, rest, f"{where}: {source_text!r}")
        source, kind, multi = FromRequest(path), _kind(path[-1]), _multi(path)
    elif head == IDENTITY:
        if rest not in _IDENTITY_FIELDS:
            raise ConfigError(f"{where}: {source_text!r}: the identity offers "
                              f"{', '.join(f'identity.{f}' for f in _IDENTITY_FIELDS)}")
        source, kind, multi = FromIdentity(), (_F.CPPTYPE_STRING, False, ""), False
    elif head in replies:
        reply = replies[head]
        path = _path(reply, rest, f"{where}: {source_text!r}") if rest else ()
        kind = _kind(path[-1]) if path else (_F.CPPTYPE_MESSAGE, False, reply.full_name)
        # a part fanned out has one reply per call: whatever is read from it is a list
        source, multi = FromPart(head, path), _multi(path) or head in fanned
    else:
        raise ConfigError(
            f"{where}: {source_text!r} is not request.<field>, identity.user_id, "
            f"<part>.<field> or a constant; the parts are {', '.join(sorted(replies))}"
        )
    if kind != _kind(leaf):
        raise ConfigError(f"{where}: {source_text!r} is {_describe(kind)}, the field "
                          f"{target_text!r} is {_describe(_kind(leaf))}")
    return Binding(target, source, spread=multi and not _repeated(leaf))


def _path(message: Descriptor, text: str, where: str, target: bool = False) -> Path:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in text.split("."):
        if current is None:
            raise ConfigError(f"{where}: {fields[-1].name!r} is not a message; cannot reach "
                              f"{name!r}")
        field = current.fields_by_name.get(name)
        if field is None:
            raise ConfigError(f"{where}: {current.full_name} has no field {name!r}")
        if _is_map(field):
            raise ConfigError(f"{where}: map field {name!r} cannot be read or set by a part")
        if target and fields and _repeated(fields[-1]):
            raise ConfigError(f"{where}: cannot set a field inside repeated {fields[-1].name!r}")
        fields.append(field)
        current = field.message_type
    return tuple(fields)


def _constant(value: bool | int | float | str, leaf: FieldDescriptor, where: str
              ) -> bool | int | float | str:
    cpp = leaf.cpp_type
    if isinstance(value, bool):
        fits = cpp == _F.CPPTYPE_BOOL
    elif isinstance(value, int):
        fits = cpp in _INTEGER or cpp in _FLOAT
    elif isinstance(value, float):
        fits = cpp in _FLOAT
    else:
        fits = leaf.type == _F.TYPE_STRING
    if not fits:
        raise ConfigError(f"{where}: the constant {value!r} does not fit "
                          f"{_describe(_kind(leaf))}")
    return value


def _check_constants(where: str, request_class: type[Message],
                     bindings: Iterable[Binding]) -> None:
    """Set every constant on a scratch request now, so an out-of-range number fails at load."""
    scratch = request_class()
    for binding in bindings:
        if isinstance(binding.source, Constant):
            try:
                assign(scratch, binding.target, [binding.source.value])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}.request: {exc}") from None


_INTEGER = frozenset({_F.CPPTYPE_INT32, _F.CPPTYPE_INT64, _F.CPPTYPE_UINT32, _F.CPPTYPE_UINT64})
_FLOAT = frozenset({_F.CPPTYPE_FLOAT, _F.CPPTYPE_DOUBLE})
_Kind = tuple[int, bool, str]  # cpp type, bytes (not text), message or enum full name


def _kind(field: FieldDescriptor) -> _Kind:
    named = field.message_type or field.enum_type
    return field.cpp_type, field.type == _F.TYPE_BYTES, named.full_name if named else ""


def _describe(kind: _Kind) -> str:
    cpp, is_bytes, name = kind
    if name:
        return name
    if is_bytes:
        return "bytes"
    return {_F.CPPTYPE_STRING: "string", _F.CPPTYPE_BOOL: "bool", _F.CPPTYPE_INT32: "int32",
            _F.CPPTYPE_INT64: "int64", _F.CPPTYPE_UINT32: "uint32", _F.CPPTYPE_UINT64: "uint64",
            _F.CPPTYPE_FLOAT: "float", _F.CPPTYPE_DOUBLE: "double"}.get(cpp, str(cpp))


def _multi(path: Path) -> bool:
    return any(_repeated(field) for field in path)


def _repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] == text[-1] == "'"


def _method(schema: Schema, method: str, where: str) -> MethodDescriptor:
    if not method.startswith("/") or method.count("/") != 2:
        raise ConfigError(f"{where}: {method!r} is not a method path like /pkg.Service/Method")
    descriptor = schema.method(method)
    if descriptor is None:
        raise ConfigError(f"{where}: {method} is not a method of the loaded descriptors"
                          f"{closest(method, method_names(schema))}")
    return descriptor


def _errors_field(reply: Descriptor, name: str, where: str) -> str:
    field = reply.fields_by_name.get(name)
    entry = field.message_type if field is not None else None
    fields = entry.fields_by_name if entry is not None else {}
    shape = {"part": _F.CPPTYPE_STRING, "code": _F.CPPTYPE_INT32}
    if (field is None or not _repeated(field) or _is_map(field)
            or any(n not in fields or fields[n].cpp_type != cpp or _repeated(fields[n])
                   for n, cpp in shape.items())
            or "message" in fields and fields["message"].cpp_type != _F.CPPTYPE_STRING):
        raise ConfigError(
            f"{where}: optional parts report failures in {reply.full_name}.{name}, which must be "
            "a repeated message with `string part`, `int32 code` and optionally `string message`"
        )
    return name


def _dependencies(part: AggregatePart, names: Iterable[str]) -> tuple[str, ...]:
    """The parts whose replies `part` reads ("<part>.<field>" sources)."""
    heads = (source.partition(".")[0] for source in part.request.values()
             if isinstance(source, str) and not _quoted(source))
    return tuple(dict.fromkeys(head for head in heads if head in names))


def _ordered(dependencies: Mapping[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    """Part names, dependencies first (config order otherwise); a cycle is a ConfigError."""
    done: dict[str, None] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name):], name))
            raise ConfigError(f"{where}.parts.{name}: the parts form a cycle: {cycle}")
        for dependency in dependencies[name]:
            visit(dependency, (*chain, name))
        done[name] = None

    for name in dependencies:
        visit(name, ())
    return tuple(done)
