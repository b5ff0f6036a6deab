#!/usr/bin/env bash
# Install what the benchmarks need beyond the project: the [bench] extra (matplotlib, for the
# plot) into .venv, and the load generators from Debian packages if they are missing: wrk
# (HTTP/1.1) and h2load (package nghttp2-client, HTTP/2 and gRPC). Idempotent; runs
# `apt-get update` at most once. Run scripts/setup.sh first (it makes .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || { echo "bench/setup.sh: run scripts/setup.sh first" >&2; exit 1; }
.venv/bin/python -c "import matplotlib, pygrpc_native" 2>/dev/null \
    || .venv/bin/python -m pip install -q -c requirements.lock -e ".[bench]"

declare -A PACKAGE_OF=([wrk]=wrk [h2load]=nghttp2-client)
missing=()
for tool in wrk h2load; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$tool]}")
done
if ((${#missing[@]} == 0)); then
    echo "bench/setup.sh: wrk and h2load already installed"
    exit 0
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "bench/setup.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
fi
echo "bench/setup.sh: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
wrk --version 2>&1 | head -n 1 || true
h2load --version | head -n 1
