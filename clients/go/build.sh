#!/usr/bin/env bash
# Build the Go example offline, in GOPATH mode, against Debian's Go packages.
#
#   clients/go/build.sh [OUT_DIR]        -> OUT_DIR/example (default: clients/go/bin)
#
# Needs (Debian 12, as root):
#   apt-get install -y golang-go golang-google-grpc-dev golang-google-protobuf-dev \
#       golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler
# Module mode would need the module proxy; instead a throwaway GOPATH holds one symlink,
# src/github.com/keyleash/keyleash -> this repository, so the generated code's import path
# (github.com/keyleash/keyleash/clients/go/gen/...) resolves to clients/go/gen, and every
# other import comes from /usr/share/gocode.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/clients/go/bin}"
SYSTEM_GOPATH="${KEYLEASH_SYSTEM_GOPATH:-/usr/share/gocode}"

command -v go >/dev/null 2>&1 || {
    echo "build.sh: go not found; apt-get install -y golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev" >&2
    exit 1
}
[ -d "$SYSTEM_GOPATH/src/google.golang.org/grpc" ] || {
    echo "build.sh: grpc-go not found in $SYSTEM_GOPATH; apt-get install -y golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev" >&2
    exit 1
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/gopath/src/github.com/keyleash" "$OUT"
ln -s "$ROOT" "$WORK/gopath/src/github.com/keyleash/keyleash"

export GO111MODULE=off
export GOPATH="$WORK/gopath:$SYSTEM_GOPATH"
export GOFLAGS=""
# Go's default build cache ($HOME/.cache/go-build) makes rebuilds fast; without a home, a temp one.
if [ -z "${GOCACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
    export GOCACHE="$WORK/cache"
fi
export GOPROXY=off
cd "$WORK/gopath/src/github.com/keyleash/keyleash"
go build -o "$OUT/example" github.com/keyleash/keyleash/clients/go/example
echo "built $OUT/example"
