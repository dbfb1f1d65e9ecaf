#!/usr/bin/env bash
# Builds every adapter's fuzz target (fuzz/, cargo-fuzz + libFuzzer) and runs each briefly,
# one after the other, single process, seeded with the bureau's sample messages.
#
#   ops/ci/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]     (default 25 s, every target)
#
# Needs: the stable toolchain (cargo-fuzz passes nightly-only rustc flags, -Zsanitizer=address
# among them; `RUSTC_BOOTSTRAP=1`, set here, allows them on stable), `cargo install cargo-fuzz
# --locked` (crates.io), and a C++ compiler with its runtime, because the libfuzzer-sys crate
# compiles libFuzzer from source (Debian: `g++`, which `build-essential` has). x86_64 or aarch64
# Linux. Exits non-zero when a target crashes (a panic, or an accepted event that does not
# survive encode → decode in every format); the input is left in fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/../.."
seconds="${1:-25}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  # One target per adapter, each in its own file.
  for file in fuzz/fuzz_targets/*.rs; do
    name="${file##*/}"
    targets+=("${name%.rs}")
  done
fi

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }

cargo fuzz build --fuzz-dir fuzz -O

status=0
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  # Seeds: the bureau's valid and invalid samples (not the .expect sidecars).
  find "schemas/bureaus/$target/valid" "schemas/bureaus/$target/invalid" -type f ! -name '*.expect' \
    -exec cp -n {} "$corpus/" \;
  echo "=== fuzz $target for ${seconds}s"
  log="fuzz/artifacts/$target/last-run.log"
  set +e
  cargo fuzz run --fuzz-dir fuzz -O "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|Done |stat::number_of_executed_units|stat::peak_rss)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "=== $target: CRASH (exit $rc; the input is in fuzz/artifacts/$target/)" >&2
    status=1
  fi
done
exit "$status"
