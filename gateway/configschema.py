"""`python -m gateway config-schema`: the JSON Schema of the config file, from the pydantic models.

docs/config.schema.json is its output, committed (tests/test_configschema.py keeps it current);
deploy/gateway.yaml names it on its first line so editors with a YAML language server complete
and check keys.
"""

from __future__ import annotations

import json

from gateway.config import GatewayConfig


def config_schema() -> dict[str, object]:
    schema = GatewayConfig.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "grpc-edge-gateway config", **schema}


def schema_text() -> str:
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
