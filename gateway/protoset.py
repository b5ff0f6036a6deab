"""Load the proto schema a config names: a FileDescriptorSet file, or .proto files compiled now."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gateway.config import Descriptors
from gateway.errors import ConfigError
from gateway.transcode.schema import Schema, load_schema


def load_descriptors(descriptors: Descriptors) -> Schema:
    if descriptors.descriptor_set is not None:
        try:
            data = descriptors.descriptor_set.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"descriptors.descriptor_set: cannot read {descriptors.descriptor_set}: "
                f"{exc.strerror}"
            ) from None
        return load_schema(data)
    return load_schema(compile_protos(descriptors.proto_files, descriptors.import_paths))


# What a proto with google.api.http rules imports beyond the well-known types (which protoc and
# buf carry themselves), from the installed googleapis-common-protos.
HTTP_PROTOS = ("google/api/annotations.proto", "google/api/http.proto",
               "google/api/httpbody.proto")


def copy_http_protos(target: Path) -> list[Path]:
    """`python -m gateway proto-deps DIR`: copy the google/api protos into DIR, for buf (a
    module) or protoc (-I DIR) to build descriptor sets offline. Returns the files written."""
    import google.api.annotations_pb2

    googleapis = Path(google.api.annotations_pb2.__file__).resolve().parents[2]
    written = []
    for name in HTTP_PROTOS:
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes((googleapis / name).read_bytes())
        written.append(out)
    return written
_VALIDATE = "buf/validate/validate.proto"


def _validate_descriptors() -> bytes:
    """buf/validate/validate.proto (built in, like google/api): the protovalidate package
    carries its descriptor, not its source, and protoc takes descriptors for imports."""
    import protovalidate
    from google.protobuf import descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2

    files = descriptor_pb2.FileDescriptorSet()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
        files.file.add().ParseFromString(module.DESCRIPTOR.serialized_pb)
    files.file.add().ParseFromString(protovalidate.ViolationPb.desc().file.proto.to_binary())
    return files.SerializeToString()


def compile_protos(files: tuple[Path, ...], import_paths: tuple[Path, ...]) -> bytes:
    """protoc (from grpcio-tools) into a FileDescriptorSet with imports and comments."""
    import google.api.annotations_pb2
    import grpc_tools
    from grpc_tools import protoc

    googleapis = Path(google.api.annotations_pb2.__file__).resolve().parents[2]
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        args = [
            "protoc", *(f"-I{p}" for p in import_paths), f"-I{googleapis}", f"-I{well_known}",
            f"--descriptor_set_out={out}", "--include_imports", "--include_source_info",
            *(str(f) for f in files),
        ]
        if not any((Path(p) / _VALIDATE).is_file() for p in import_paths):
            builtin = Path(tmp) / "buf-validate.binpb"
            builtin.write_bytes(_validate_descriptors())
            args.insert(1, f"--descriptor_set_in={builtin}")
        if protoc.main(args) != 0 or not out.exists():
            raise ConfigError(
                f"descriptors.proto_files: protoc could not compile {', '.join(map(str, files))} "
                "(its errors are printed above)"
            )
        return out.read_bytes()
