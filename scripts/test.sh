#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when run as root; with
# CI=true a missing prerequisite fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

./scripts/prereqs.sh

echo "== vet (linux, windows)"
$GO vet ./...
GOOS=windows $GO build ./...
GOOS=windows $GO vet ./...

echo "== gofmt"
out=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$out" ]; then echo "gofmt needed:"; echo "$out"; exit 1; fi

echo "== go test -race"
$GO test -race -count=1 -timeout 20m ./...

echo "== the Windows build under Wine (make test-windows)"
./scripts/test-windows.sh
