#!/usr/bin/env bash
# The gateway beside its ceilings, back to back on this machine and this database, in one run:
#   1. PostgreSQL's own ceilings (pgbench, synchronous_commit on): single-row commits with 1 and
#      8 clients, 100-row multi-row inserts (rows/s), SKIP LOCKED dequeue of 100 (rows/s);
#   2. the HTTP ceiling: `gateway bench --target http-ceiling`, a bare hyper + rustls
#      mutual-TLS server answering the same requests at the same rates;
#   3. the gateway on SQLite and on PostgreSQL (`gateway bench`) at those rates, fan-out 3,
#      with PUSH_BATCH deliveries per push (default 1; e.g. PUSH_BATCH=32 for batch pushes).
# Prints one table per part, and each gateway figure as a share of its ceiling. The JSON lines
# of every `gateway bench` run are kept in OUT (default: a temporary folder, removed).
#
#   ops/bench/compare.sh [RATES] [DURATION] [POSTGRES_URL] [OUT]
#   e.g. ops/bench/compare.sh 1000,2000,5000,10000 10
#        PUSH_BATCH=32 ops/bench/compare.sh 1000,2000,5000,10000 10
set -euo pipefail
push_batch=${PUSH_BATCH:-1}
cd "$(dirname "$0")/../.."
rates=${1:-1000,2000,5000,10000}
duration=${2:-10}
postgres=${3:-postgres://postgres@127.0.0.1:5432/test}
out=${4:-}
if [ -z "$out" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
for tool in pgbench psql python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh needs $tool" >&2; exit 2; }
done
cargo build --release -q -p gateway
bin=target/release/gateway

echo "== PostgreSQL ceilings (pgbench, $duration s each)" >&2
psql "$postgres" -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS ceiling CASCADE;
CREATE SCHEMA ceiling;
CREATE TABLE ceiling.rows (id bigserial PRIMARY KEY, payload text NOT NULL);
CREATE TABLE ceiling.queue (id bigserial PRIMARY KEY, state int NOT NULL DEFAULT 0, payload text NOT NULL);
CREATE INDEX queue_ready ON ceiling.queue (id) WHERE state = 0;
INSERT INTO ceiling.queue (payload) SELECT repeat('x', 100) FROM generate_series(1, 3000000);
VACUUM ANALYZE ceiling.queue;
SQL
pgb() { # SCRIPT CLIENTS -> transactions per second
  PGOPTIONS="-c search_path=ceiling -c synchronous_commit=on" \
    pgbench -n -T "$duration" -c "$2" -j "$2" -f "ops/bench/pgbench/$1" "$postgres" 2>/dev/null \
    | awk '/^tps/ {print $3}'
}
single_1=$(pgb insert-1.sql 1)
single_8=$(pgb insert-1.sql 8)
multi=$(pgb insert-100.sql 8)
dequeue=$(pgb dequeue-100.sql 8)
psql "$postgres" -q -c "SET client_min_messages = warning; DROP SCHEMA ceiling CASCADE"
cat > "$out/pgbench.json" <<JSON
{"single_row_commits_1": $single_1, "single_row_commits_8": $single_8, "multi_row_insert_rows": $(python3 -c "print($multi * 100)"), "skip_locked_dequeue_rows": $(python3 -c "print($dequeue * 100)")}
JSON

echo "== HTTP ceiling (bare hyper + rustls, mutual TLS)" >&2
"$bin" bench --target http-ceiling --rate "$rates" --duration "$duration" --warmup 3 \
  --data "$out/data" > "$out/http-ceiling.json"
echo "== gateway on SQLite, $push_batch deliveries per push" >&2
"$bin" bench --store sqlite --rate "$rates" --duration "$duration" --warmup 3 \
  --push-batch "$push_batch" --drain 300 --data "$out/data" > "$out/sqlite.json" || echo "(the SQLite run reported losses or failed)" >&2
echo "== gateway on PostgreSQL, $push_batch deliveries per push" >&2
"$bin" bench --store "$postgres" --rate "$rates" --duration "$duration" --warmup 3 \
  --push-batch "$push_batch" --drain 300 --data "$out/data" > "$out/postgres.json" || echo "(the PostgreSQL run reported losses or failed)" >&2

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def lines(name):
    path = os.path.join(out, name)
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
pg = json.load(open(os.path.join(out, "pgbench.json")))
http = {r["rate"]: r for r in lines("http-ceiling.json")}
http_max = max([r["accepted_per_s"] for r in http.values()] or [0])
print("PostgreSQL ceilings (pgbench, synchronous_commit on)")
print(f"  single-row commits, 1 client   {pg['single_row_commits_1']:>10,.0f} /s")
print(f"  single-row commits, 8 clients  {pg['single_row_commits_8']:>10,.0f} /s")
print(f"  100-row inserts, 8 clients     {pg['multi_row_insert_rows']:>10,.0f} rows/s")
print(f"  SKIP LOCKED dequeue of 100     {pg['skip_locked_dequeue_rows']:>10,.0f} rows/s")
print(f"HTTP ceiling (bare hyper + rustls): best {http_max:,.0f} requests/s accepted")
print()
head = (f"{'store':<9}{'rate':>7}{'accepted/s':>12}{'% http':>8}{'% pg rows':>10}"
        f"{'delivered/s':>13}{'% dequeue':>10}{'pushes/s':>10}{'202 p99 ms':>11}{'e2e p99 ms':>11}"
        f"{'lost':>6}{'rss MB':>8}")
print(head)
for store in ("sqlite", "postgres"):
    for r in lines(f"{store}.json"):
        ceiling = http.get(r["rate"], {}).get("accepted_per_s") or 0
        share_http = 100 * r["accepted_per_s"] / ceiling if ceiling else 0
        # A message writes 2 + fan-out rows (message, event, one delivery per subscriber).
        rows = r["accepted_per_s"] * (2 + r["fanout"])
        share_rows = (f"{100 * rows / pg['multi_row_insert_rows']:.1f}%"
                      if store == "postgres" else "-")
        share_dequeue = (f"{100 * r['delivered_per_s'] / pg['skip_locked_dequeue_rows']:.1f}%"
                         if store == "postgres" else "-")
        print(f"{store:<9}{r['rate']:>7}{r['accepted_per_s']:>12,.0f}{share_http:>7.0f}%"
              f"{share_rows:>10}{r['delivered_per_s']:>13,.0f}{share_dequeue:>10}{r['pushes_per_s']:>10,.0f}"
              f"{r['ingest_p99_ms']:>11.1f}{r['e2e_p99_ms']:>11.1f}{r['lost']:>6}{r['rss_peak_mb']:>8.1f}")
print()
print("% http: accepted/s as a share of the HTTP ceiling at the same offered rate; % pg rows:")
print("rows written/s (message, event, one delivery per subscriber) as a share of the 100-row")
print("insert ceiling; % dequeue:")
print("deliveries/s as a share of the SKIP LOCKED dequeue ceiling. e2e: from the time a message")
print("was due to its arrival at a subscriber; pushes/s: requests to the subscribers (push_batch")
print(f"{lines('sqlite.json')[0]['push_batch'] if lines('sqlite.json') else '?'}). Everything on one machine, at once.")
PY
