#!/usr/bin/env bash
# Gives the local PostgreSQL a server certificate from a test CA and turns TLS on, so that the
# store's `sslmode=verify-full` test runs against a real TLS server. Idempotent: the files are
# made once, the settings re-applied every time. Prints the CA's path (for
# EXCHANGE_TEST_POSTGRES_TLS_CA). Run as root on the CI machine.
set -euo pipefail
dir=/var/lib/postgresql/exchange-test-tls
if [ ! -s "$dir/server.pem" ] || [ ! -s "$dir/server.key" ] || [ ! -s "$dir/ca.pem" ]; then
  rm -rf "$dir"
  install -d -o postgres -g postgres -m 0755 "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=exchange test PostgreSQL CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > "$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
  # The CA's key is not kept: nothing else is ever signed with it.
  rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.key" "$dir/ca.srl"
  chown postgres:postgres "$dir"/*
  chmod 0644 "$dir/ca.pem" "$dir/server.pem"
  chmod 0600 "$dir/server.key"
fi
psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA \
  -c "ALTER SYSTEM SET ssl = on" \
  -c "ALTER SYSTEM SET ssl_cert_file = '$dir/server.pem'" \
  -c "ALTER SYSTEM SET ssl_key_file = '$dir/server.key'" \
  -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 20); do
  [ "$(psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SHOW ssl_cert_file')" = "$dir/server.pem" ] && break
  sleep 0.5
done
psql "host=127.0.0.1 user=postgres dbname=postgres sslmode=verify-full sslrootcert=$dir/ca.pem" \
  -tAc "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" | grep -qx t
echo "$dir/ca.pem"
