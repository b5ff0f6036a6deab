#!/usr/bin/env bash
# The whole check, as CI runs it: set-up, proto lint + breaking check, generated/ freshness,
# ruff, mypy, then pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k routes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"

echo "== buf lint / breaking"
python scripts/codegen.py --deps .build/proto-deps
node_modules/.bin/buf lint
scripts/buf-breaking.sh

echo "== ruff"
ruff check .
echo "== mypy"
mypy
echo "== pytest"
exec pytest "$@"
