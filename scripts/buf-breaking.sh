#!/usr/bin/env bash
# buf breaking against the previous commit's protos (HEAD~1), built with the same google/api deps.
# Developers: BASE=origin/main scripts/buf-breaking.sh to check a branch before merging.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE:-HEAD~1}
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null 2>&1; then
  echo "buf breaking: no $base to compare with; skipped"; exit 0
fi
if [[ -z $(git ls-tree -r --name-only "$base" -- protos) ]]; then
  echo "buf breaking: $base has no protos/; skipped"; exit 0
fi
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git archive "$base" protos | tar -x -C "$old"
cp -r .build/proto-deps "$old/deps"
cp -r third_party/protovalidate "$old/protovalidate"   # the vendored buf.validate source
printf 'version: v2\nmodules:\n  - path: protos\n  - path: deps\n  - path: protovalidate\n' \
  > "$old/buf.yaml"
node_modules/.bin/buf build "$old" -o "$old/image.binpb"
node_modules/.bin/buf build -o "$old/new.binpb"   # one image each side, built the same way
node_modules/.bin/buf breaking "$old/new.binpb" --against "$old/image.binpb"
echo "buf breaking: protos/ compatible with $base"
