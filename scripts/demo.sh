#!/usr/bin/env bash
# The main job: set up the venv if needed, then start the demo stack (three backends and the
# gateway, in-memory defaults; no Redis, no Docker). Extra arguments go to `python -m gateway demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m gateway demo "$@"
