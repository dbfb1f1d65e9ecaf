#!/usr/bin/env bash
# Supply-chain audit against the offline RustSec snapshot in ../shared/advisory-db.
#
# Fails on any vulnerability, and on any unmaintained, unsound or yanked-free warning that is not
# listed with a reason in .cargo/audit.toml. The snapshot is copied and committed into a
# throw-away git repository because cargo-audit reads its database as a git checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."

snapshot=${ADVISORY_DB:-../shared/advisory-db}
if [ ! -d "$snapshot" ]; then
  echo "advisory snapshot not found at $snapshot" >&2
  exit 1
fi
if ! command -v cargo-audit >/dev/null 2>&1; then
  echo "installing cargo-audit"
  cargo install --locked cargo-audit
fi

db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
cp -r "$snapshot"/. "$db"
chmod -R u+w "$db"
git -C "$db" init -q
git -C "$db" add -A
git -C "$db" -c user.email=audit@localhost -c user.name=audit commit -qm snapshot

cargo audit --db "$db" --no-fetch --deny unmaintained --deny unsound
