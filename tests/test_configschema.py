"""The config's JSON Schema (docs/config.schema.json) is current, and deploy/gateway.yaml names it
and really holds every key of it, with its default.

The rule for deploy/gateway.yaml, so that a key added to gateway/config.py fails here until the
example shows it:
- Every key of the schema appears in the file: set, or in a commented-out line. A commented-out
  line is `# ` followed by the YAML line as it would be uncommented (`# key: value`,
  `#   key: value`, `# - key: value`); descriptive comments never start with `key:`. Turning
  every such line on must give valid YAML; keys are looked up in that document.
- Under a map of names (backends.<name>, aggregates.<method>, parts.<name>) or a list of
  sections (auth.issuers[], authorization.rules[]) a key counts when any entry has it.
- A key that is set (not commented out) holds its schema default, or its line says `default`
  (the example sets a few keys to other values on purpose and says what the default is).
  Commented-out lines are examples of optional parts and may hold any value.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.config import load_file
from gateway.configschema import config_schema, schema_text

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "docs" / "config.schema.json"
EXAMPLE = ROOT / "deploy" / "gateway.yaml"
REGENERATE = ".venv/bin/python -m gateway config-schema > docs/config.schema.json"
# `# ` and then, after any indentation, `key:` or `- key:`: a commented-out line of config.
_COMMENTED_KEY = re.compile(r"^(\s*)# (\s*(?:- )?[a-z_][a-z0-9_]*:(?: .*)?)$")


def test_the_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        f"docs/config.schema.json is stale; regenerate it with: {REGENERATE}")


def test_config_schema_command_prints_it() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway", "config-schema"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == config_schema()


def test_the_example_names_the_schema_for_editors() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../docs/config.schema.json"


def uncommented(text: str) -> tuple[str, frozenset[int]]:
    """The file with every commented-out key line (`# key: ...`, `# - key: ...`) turned on,
    and the numbers of the lines that were."""
    lines, turned_on = [], set()
    for number, line in enumerate(text.splitlines()):
        found = _COMMENTED_KEY.match(line)
        if found is not None:
            line = found.group(1) + found.group(2)
            turned_on.add(number)
        lines.append(line)
    return "\n".join(lines) + "\n", frozenset(turned_on)


class Located:
    """The uncommented file as plain values, and the line of every mapping key."""

    def __init__(self, text: str, commented: frozenset[int]) -> None:
        self.lines = text.splitlines()
        self.commented = commented
        self._scalars = yaml.SafeLoader("")
        self._key_lines: dict[tuple[int, str], int] = {}
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        assert root is not None, "deploy/gateway.yaml is empty"
        self.document = self._value(root)

    def _value(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                mapping[key_node.value] = self._value(value_node)
                self._key_lines[id(mapping), key_node.value] = key_node.start_mark.line
            return mapping
        if isinstance(node, yaml.SequenceNode):
            return [self._value(item) for item in node.value]
        return self._scalars.construct_object(node, deep=True)

    def states_default(self, parent: dict[str, Any], key: str) -> bool:
        """The key's line is commented out (an example of an optional part) or says default."""
        number = self._key_lines[id(parent), key]
        return number in self.commented or "default" in self.lines[number]


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    options = [o for o in node.get("anyOf", ()) if o.get("type") != "null"]
    if len(options) == 1:
        return _resolve(options[0], defs)
    return node


def problems(node: dict[str, Any], parents: list[Any], path: str, defs: dict[str, Any],
             file: Located) -> list[str]:
    """Schema keys under `path` that none of `parents` (the file's values there) holds, and
    values that differ from their default on a line that does not say so."""
    node = _resolve(node, defs)
    if "properties" in node:
        found: list[str] = []
        for key, child in node["properties"].items():
            here = f"{path}.{key}" if path else key
            holders = [p for p in parents if isinstance(p, dict) and key in p]
            if not holders:
                found.append(f"{here} (missing)")
                continue
            default = child.get("default", ...)
            if isinstance(default, dict) or isinstance(default, list) and any(
                    isinstance(item, dict) for item in default):
                default = ...  # a section: its keys are compared one by one
            for holder in holders:
                value = holder[key]
                if isinstance(value, dict) or isinstance(value, list) and any(
                        isinstance(item, dict) for item in value):
                    continue  # a section or a list of them: compared key by key below
                if default is not ... and value != default and not file.states_default(
                        holder, key):
                    found.append(f"{here}: {value!r} is not the default {default!r} and its "
                                 "line does not say 'default'")
            found += problems(child, [h[key] for h in holders], here, defs, file)
        return found
    extra = node.get("additionalProperties")
    entries = _resolve(extra, defs) if isinstance(extra, dict) else {}
    if node.get("type") == "object" and "properties" in entries:
        inner = [v for value in parents if isinstance(value, dict) for v in value.values()]
        return (problems(entries, inner, f"{path}.<name>", defs, file) if inner
                else [f"{path}.<name> (missing)"])
    items = _resolve(node.get("items") or {}, defs)
    if node.get("type") == "array" and "properties" in items:
        inner = [v for value in parents if isinstance(value, list) for v in value]
        return (problems(items, inner, f"{path}[]", defs, file) if inner
                else [f"{path}[] (missing)"])
    return []


def test_the_example_holds_every_key_of_the_schema_with_its_default() -> None:
    file = Located(*uncommented(EXAMPLE.read_text(encoding="utf-8")))
    schema = config_schema()
    defs: dict[str, Any] = schema["$defs"]  # type: ignore[assignment]
    found = problems(schema, [file.document], "", defs, file)
    assert not found, ("deploy/gateway.yaml (keys set, or commented out as `# key: ...`): "
                       + "; ".join(found))


def test_the_example_is_valid_as_it_stands() -> None:
    load_file(EXAMPLE)
