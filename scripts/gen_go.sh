#!/usr/bin/env bash
# Generate the Go code for protos/ into clients/go/gen (committed; rerun after a proto change).
#
# Layout: paths=source_relative with -I protos, so protos/keyleash/vault/v1/vault.proto becomes
# clients/go/gen/keyleash/vault/v1/vault.pb.go and vault_grpc.pb.go. The protos' go_package
# (github.com/keyleash/keyleash/clients/go/gen/keyleash/...) is therefore exactly the
# directory under the repository root, which is what GOPATH mode resolves once
# $GOPATH/src/github.com/keyleash/keyleash points at the repository (see clients/go/build.sh).
#
# Tools (Debian 12): apt-get install -y protobuf-compiler protoc-gen-go protoc-gen-go-grpc
# (protoc 3.21, protoc-gen-go 1.28.1, protoc-gen-go-grpc 1.0 from grpc-go 1.33.3). The code they
# emit compiles against Debian's golang-google-grpc-dev 1.33.3 (grpc.SupportPackageIsVersion7).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/clients/go/gen}"

for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "gen_go.sh: $tool not found; apt-get install -y protobuf-compiler protoc-gen-go protoc-gen-go-grpc" >&2
        exit 1
    }
done

# The well-known types (google/protobuf/*.proto) ship with protobuf-compiler in /usr/include.
INCLUDES=(-I "$ROOT/protos")
for dir in /usr/include /usr/local/include; do
    [ -f "$dir/google/protobuf/duration.proto" ] && INCLUDES+=(-I "$dir") && break
done

mkdir -p "$OUT"
cd "$ROOT/protos"
mapfile -t PROTOS < <(find keyleash -name '*.proto' | LC_ALL=C sort)
protoc "${INCLUDES[@]}" \
    --go_out="$OUT" --go_opt=paths=source_relative \
    --go-grpc_out="$OUT" --go-grpc_opt=paths=source_relative \
    "${PROTOS[@]}"
echo "generated Go code for ${#PROTOS[@]} protos into $OUT"
