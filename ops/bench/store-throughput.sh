#!/usr/bin/env bash
# End-to-end throughput of one gateway node on each store, measured back to back in one run:
# six simulated bureaus send as fast as 16 connections each allow for DURATION seconds, every
# message is committed (durably) and delivered to its subscribers over mutual TLS, and the
# demo checks that nothing was lost. Prints the demo's summary line for each store.
#
#   ops/bench/store-throughput.sh [DURATION] [POSTGRES_URL]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-20}
postgres=${2:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release -q -p gateway
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
for store in sqlite "$postgres"; do
  args=(demo --duration "$duration" --rate 2000 --connections 16 --data "$data" --listen 127.0.0.1:18499)
  [ "$store" = sqlite ] || args+=(--store "$store")
  echo "== store: $store"
  RUST_LOG=warn target/release/gateway "${args[@]}" | grep -E "^accepted|^OK|^FAILED"
done
