"""Regenerate generated/ from protos/ with grpcio-tools, or check that it is current.

    python scripts/codegen.py           # rewrite generated/
    python scripts/codegen.py --check   # exit 1, naming the files, when generated/ is stale
    python scripts/codegen.py --deps D  # copy the google/api protos buf needs into D

generated/ holds, per proto: *_pb2.py, *_pb2.pyi, *_pb2_grpc.py, plus one FileDescriptorSet
(descriptors.binpb) with every import and the source info (comments) the OpenAPI docs use.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import google.api.annotations_pb2
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED = ROOT / "generated"
DESCRIPTOR_SET = "descriptors.binpb"
# googleapis-common-protos ships the .proto sources next to its modules.
GOOGLEAPIS = Path(google.api.annotations_pb2.__file__).resolve().parents[2]
WELL_KNOWN = Path(grpc_tools.__file__).resolve().parent / "_proto"
# buf.validate's source, vendored with its licence (third_party/protovalidate/README.md)
PROTOVALIDATE = ROOT / "third_party" / "protovalidate"
VENDORED = ("buf/validate/validate.proto",)
BUF_DEPS = ("google/api/annotations.proto", "google/api/http.proto", "google/api/httpbody.proto",
            "google/api/field_behavior.proto")


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{GOOGLEAPIS}",
        f"-I{WELL_KNOWN}",
        f"-I{PROTOVALIDATE}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--descriptor_set_out={out / DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *proto_files(),
        *VENDORED,  # the demo's generated modules import buf/validate/validate_pb2
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Regular packages, so setuptools, mypy and pytest all see them the same way.
    for directory in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        if directory != out:
            (directory / "__init__.py").touch()


def stale_files(fresh: Path, current: Path) -> list[str]:
    fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    current_files = {
        p.relative_to(current)
        for p in current.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    differing = [
        f for f in fresh_files & current_files
        if not filecmp.cmp(fresh / f, current / f, shallow=False)
    ]
    return sorted(str(f) for f in (fresh_files ^ current_files) | set(differing))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when generated/ is stale")
    parser.add_argument("--deps", type=Path, help="copy google/api protos for buf into this dir")
    options = parser.parse_args()
    if options.deps:
        for name in BUF_DEPS:
            target = options.deps / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(GOOGLEAPIS / name, target)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        if options.check:
            stale = stale_files(fresh, GENERATED)
            if stale:
                print("generated/ is stale; run python scripts/codegen.py. Differs:", *stale,
                      sep="\n  ", file=sys.stderr)
                return 1
            return 0
        shutil.rmtree(GENERATED, ignore_errors=True)
        shutil.copytree(fresh, GENERATED)
    print(f"regenerated {GENERATED.relative_to(ROOT)}/ from {len(proto_files())} protos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
