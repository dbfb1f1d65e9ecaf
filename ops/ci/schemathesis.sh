#!/usr/bin/env bash
# The API contract, checked: schemathesis runs the OpenAPI document (schemas/api/openapi.json)
# against a live gateway on the embedded store, once for each kind of caller — a bureau (civil
# defense, which pulls its feed), the survey publisher (planning) and an operator — each over
# mutual TLS with its own dev certificate. Every status code and content type the gateway
# answers must be documented, and no answer may be a server error.
#
#   ops/ci/schemathesis.sh [MAX_EXAMPLES] [SEED]
#
# One check is left out: `positive_data_acceptance` expects every schema-valid body to be
# accepted, but a bureau's native message is opaque bytes to the OpenAPI schema (its real
# grammar is the bureau's XSD or JSON Schema under schemas/bureaus/), so generated "valid"
# bodies are refused with 400/415/422 by design. The invalid ones are still checked for
# documented problem+json answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
examples=${1:-30}
seed=${2:-20261201}
command -v schemathesis >/dev/null || { echo "schemathesis is not installed (pip install schemathesis)" >&2; exit 1; }
cargo build -q -p gateway
bin=${CARGO_TARGET_DIR:-target}/debug/gateway
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
"$bin" pki init --dir "$dir/pki" >/dev/null
cat > "$dir/gateway.toml" <<TOML
node = "gw-1"
listen = "127.0.0.1:$port"
store = "sqlite:$dir/gateway.db"
[tls]
ca = "$dir/pki/ca.pem"
cert = "$dir/pki/gateway.pem"
key = "$dir/pki/gateway.key"
[surveys]
blob_dir = "$dir/blobs"
[audit]
checkpoint_dir = "$dir/audit"
[limits]
# Long-polls end quickly, so that a generated wait does not outlast the client's timeout.
feed_max_wait_seconds = 2
TOML
RUST_LOG=warn "$bin" serve --config "$dir/gateway.toml" >"$dir/gateway.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
status=0
for who in civil_defense planning operator; do
  echo "== schemathesis as $who"
  PYTHONPATH=ops/ci SCHEMATHESIS_HOOKS=schemathesis_hooks schemathesis run schemas/api/openapi.json \
    --url "https://127.0.0.1:$port" \
    --tls-verify "$dir/pki/ca.pem" \
    --request-cert "$dir/pki/$who.pem" --request-cert-key "$dir/pki/$who.key" \
    --request-timeout 15 \
    --max-examples "$examples" --seed "$seed" \
    --exclude-checks positive_data_acceptance \
    --no-color || status=1
done
if ! kill -0 "$pid" 2>/dev/null; then
  echo "the gateway died during the run:" >&2
  tail -20 "$dir/gateway.log" >&2
  status=1
fi
exit $status
