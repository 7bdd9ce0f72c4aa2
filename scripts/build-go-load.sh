#!/usr/bin/env bash
# Builds the store benchmark's Go load generator (bench/go-load/main.go) into .build/go-load, from
# Debian's packaged Go sources in GOPATH mode: no module download, so it builds offline. Needs the
# Debian packages golang-go and golang-etcd-server-dev (etcd's client, clientv3, and what it
# imports), which scripts/install-test-deps.sh installs. Rebuilds only when the source is newer.
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE=bench/go-load/main.go
OUTPUT=.build/go-load
GOPATH_DEBIAN=/usr/share/gocode

if ! command -v go >/dev/null 2>&1; then
  echo "build-go-load: the Go compiler is missing; install it with: sudo bash scripts/install-test-deps.sh (Debian package golang-go)" >&2
  exit 1
fi
if [ ! -d "$GOPATH_DEBIAN/src/go.etcd.io/etcd/clientv3" ]; then
  echo "build-go-load: etcd's Go client sources are missing from $GOPATH_DEBIAN; install them with: sudo bash scripts/install-test-deps.sh (Debian package golang-etcd-server-dev)" >&2
  exit 1
fi
if [ -x "$OUTPUT" ] && [ "$OUTPUT" -nt "$SOURCE" ]; then
  exit 0
fi
mkdir -p .build
# GOPATH mode with Debian's tree, and no cgo (no C compiler needed); the build cache lives beside
# the output, so a clean clone starts clean.
CGO_ENABLED=0 GO111MODULE=off GOPATH="$GOPATH_DEBIAN" GOCACHE="$PWD/.build/go-cache" GOFLAGS= \
  go build -o "$OUTPUT.tmp" ./bench/go-load
mv "$OUTPUT.tmp" "$OUTPUT"
