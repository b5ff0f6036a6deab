#!/usr/bin/env bash
# Set up everything on a fresh machine with Python 3.11, pip and apt: the venv with the pinned
# dependencies, and (with --test) the tools the test suite runs: buf, openapi-typescript and
# typescript (npm), schemathesis (its own venv) and redis-server (apt).
# Idempotent: a second run only checks. Uses apt-get, so it needs root (or sudo) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test_tools=0
[[ "${1:-}" == "--test" ]] && want_test_tools=1

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The venv module is a separate Debian package on some images.
if ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then apt_install python3-venv; fi

stamp=.venv/.installed
extras=""
[[ $want_test_tools -eq 1 ]] && extras="[test,bench]"  # bench: the plot test needs matplotlib
if [[ ! -x .venv/bin/python ]]; then "$PYTHON" -m venv .venv; fi
if [[ ! -f $stamp || pyproject.toml -nt $stamp || requirements.lock -nt $stamp \
      || ( -n $extras && ! -x .venv/bin/pytest ) ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock -e ".$extras"
  touch "$stamp"
fi

if [[ $want_test_tools -eq 1 ]]; then
  # redis-cli (redis-tools) builds the Redis Cluster of the cluster rate-limit test
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server redis-tools
  fi
  if [[ ! -x node_modules/.bin/buf || ! -x node_modules/.bin/openapi-typescript \
        || ! -x node_modules/.bin/tsc || ! -d node_modules/@connectrpc/connect-node \
        || package.json -nt node_modules ]]; then
    command -v npm >/dev/null || apt_install npm
    # buf, openapi-typescript, typescript, connect-es and protoc-gen-es are pinned exactly in
    # package.json (tests/contract and tests/protocols run real clients); buf's platform binary
    # is pinned by buf itself; no lock file, since npm drops other platforms' optional packages
    # from it and `npm ci` then refuses it.
    npm install --no-audit --no-fund --no-package-lock --loglevel=error
    touch node_modules
  fi
  # schemathesis (tests/contract/test_schemathesis.py) in a venv of its own: its dependency
  # tree is large and must not constrain the gateway's; pinned with scripts/schemathesis.lock.
  st=.build/schemathesis-venv
  if [[ ! -x $st/bin/schemathesis || scripts/schemathesis.lock -nt $st/.installed ]]; then
    "$PYTHON" -m venv "$st"
    "$st/bin/python" -m pip install -q --upgrade pip
    "$st/bin/python" -m pip install -q -c scripts/schemathesis.lock schemathesis==4.32.5
    touch "$st/.installed"
  fi
fi
