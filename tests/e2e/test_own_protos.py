"""README "Serving your own protos", followed as written with a proto the gateway has never seen
(billing.v1, written here) and a plain grpc.aio backend: the gateway compiling the .proto files
itself (`proto_files`), then a descriptor set built offline by protoc and by buf, each served by
a real `python -m gateway serve` from the README's own config blocks (ports set to 0, the
backend's address filled in)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from google.protobuf import descriptor_pb2, message_factory

from gateway.protoset import compile_protos

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BUF = ROOT / "node_modules" / ".bin" / "buf"
PROTOC = [sys.executable, "-m", "grpc_tools.protoc", "-Iprotos", "-Iproto-deps",
          "--include_imports", "--include_source_info", "--descriptor_set_out=api.binpb",
          "billing/v1/billing.proto"]
BILLING = """\
syntax = "proto3";

package billing.v1;

import "google/api/annotations.proto";

// Billing serves invoices.
service Billing {
  // GetInvoice returns one invoice.
  rpc GetInvoice(GetInvoiceRequest) returns (Invoice) {
    option (google.api.http) = {get: "/v1/invoices/{id}"};
  }
}

// GetInvoiceRequest names the invoice.
message GetInvoiceRequest {
  // The invoice id.
  string id = 1;
}

// Invoice is one bill.
message Invoice {
  // The invoice id.
  string id = 1;
  // The amount in minor units (cents).
  int64 amount_minor = 2;
}
"""


def readme_yaml(after: str) -> dict[str, Any]:
    """The first ```yaml block of the README after the text `after`, parsed."""
    block = re.search(r"```yaml\n(.*?)```", README[README.index(after):], re.DOTALL)
    assert block is not None, f"no yaml block after {after!r} in README.md"
    loaded = yaml.safe_load(textwrap.dedent(block.group(1)))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A new user's project: protos/billing/v1/billing.proto and nothing else."""
    (tmp_path / "protos" / "billing" / "v1").mkdir(parents=True)
    (tmp_path / "protos" / "billing" / "v1" / "billing.proto").write_text(BILLING)
    return tmp_path


@asynccontextmanager
async def billing_backend(project: Path) -> AsyncIterator[str]:
    """A plain grpc.aio server for billing.v1.Billing (messages from the proto, no codegen)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(
        compile_protos((Path("billing/v1/billing.proto"),), (project / "protos",)))
    classes = message_factory.GetMessages(list(files.file))
    request_class, invoice_class = (classes["billing.v1.GetInvoiceRequest"],
                                    classes["billing.v1.Invoice"])

    async def get_invoice(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return invoice_class(id=request.id, amount_minor=1250)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "billing.v1.Billing", {"GetInvoice": grpc.unary_unary_rpc_method_handler(
            get_invoice, request_deserializer=request_class.FromString,
            response_serializer=invoice_class.SerializeToString)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def serve_and_get_invoice(project: Path, config: dict[str, Any]) -> dict[str, Any]:
    """`python -m gateway check` and then `serve` on the config; GET an invoice over REST."""
    config["listen"] = {"rest": {"host": "127.0.0.1", "port": 0}, "grpc": None}
    path = project / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    checked = subprocess.run([sys.executable, "-m", "gateway", "check", "--config", str(path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert re.search(r"GET\s+/v1/invoices/\{id\}\s+/billing.v1.Billing/GetInvoice\s+billing",
                     checked.stdout), checked.stdout
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--config", str(path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        async with aiohttp.ClientSession() as http, http.get(
                f"http://127.0.0.1:{found.group(1)}/v1/invoices/inv-7") as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)


def smallest_config(address: str) -> dict[str, Any]:
    config = readme_yaml("the smallest useful one is:")
    assert config["backends"]["billing"]["services"] == ["billing.v1.*"]
    config["backends"]["billing"]["addresses"] = [address]
    return config


async def test_proto_files_compiled_by_the_gateway(project: Path) -> None:
    config = smallest_config("")
    config["descriptors"] = readme_yaml("Either let it compile them at start")["descriptors"]
    async with billing_backend(project) as address:
        config["backends"]["billing"]["addresses"] = [address]
        assert await serve_and_get_invoice(project, config) == {"id": "inv-7",
                                                                "amountMinor": "1250"}


def proto_deps(project: Path) -> None:
    assert "python -m gateway proto-deps proto-deps" in README
    subprocess.run([sys.executable, "-m", "gateway", "proto-deps", str(project / "proto-deps")],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)


async def test_a_descriptor_set_built_by_protoc_offline(project: Path) -> None:
    assert "python -m grpc_tools.protoc -Iprotos -Iproto-deps --include_imports " \
           "--include_source_info \\\n       --descriptor_set_out=api.binpb " \
           "billing/v1/billing.proto" in README
    proto_deps(project)
    subprocess.run(PROTOC, cwd=project, check=True, capture_output=True, timeout=60)
    async with billing_backend(project) as address:
        assert await serve_and_get_invoice(project, smallest_config(address)) == {
            "id": "inv-7", "amountMinor": "1250"}


@pytest.mark.skipif(not BUF.exists() and shutil.which("buf") is None,
                    reason="buf is installed by scripts/setup.sh (npm)")
async def test_a_descriptor_set_built_by_buf_offline(project: Path) -> None:
    buf_yaml = re.search(r"#   (version: v2)\n\s*#   (modules: .*)\n", README)
    assert buf_yaml is not None, "README.md shows no buf.yaml"
    (project / "buf.yaml").write_text(f"{buf_yaml.group(1)}\n{buf_yaml.group(2)}\n")
    proto_deps(project)
    assert "buf build -o api.binpb" in README
    buf = str(BUF) if BUF.exists() else "buf"
    built = subprocess.run([buf, "build", "-o", "api.binpb"], cwd=project, capture_output=True,
                           text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    async with billing_backend(project) as address:
        assert await serve_and_get_invoice(project, smallest_config(address)) == {
            "id": "inv-7", "amountMinor": "1250"}
