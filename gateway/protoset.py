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
        if protoc.main(args) != 0 or not out.exists():
            raise ConfigError(
                f"descriptors.proto_files: protoc could not compile {', '.join(map(str, files))} "
                "(its errors are printed above)"
            )
        return out.read_bytes()
