#!/usr/bin/env bash
# The plain-SQL baseline of issue 6's benchmark: durable single-transfer transactions on
# PostgreSQL, one round trip each (a PL/pgSQL function: insert the transfer, guarded debit,
# credit), driven by pgbench with 32 clients over 10,000 funded accounts. Prints pgbench's TPS.
#
#   bash bench/pg-baseline.sh [postgres://127.0.0.1:5432/test] [seconds]
#
# It works in its own schema (coffer_pg_baseline), dropped at the end.
set -euo pipefail
url=${1:-postgresql://postgres@127.0.0.1:5432/test}
seconds=${2:-20}
schema=coffer_pg_baseline
work=$(mktemp -d)
trap 'PGOPTIONS="-c client_min_messages=warning" psql -q "$url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 "$url" <<SQL
DROP SCHEMA IF EXISTS $schema CASCADE;
CREATE SCHEMA $schema;
SET search_path = $schema;
CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0));
CREATE TABLE transfers (
  id BIGSERIAL PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount BIGINT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO accounts SELECT g, 1000000000 FROM generate_series(1, 10000) g;
-- Lock both rows in id order (no deadlocks), refuse an overdraft, record the transfer.
CREATE FUNCTION transfer(s INT, d INT, amt BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql SET search_path = $schema AS \$\$
BEGIN
  IF s = d THEN RETURN FALSE; END IF;
  PERFORM 1 FROM accounts WHERE id IN (s, d) ORDER BY id FOR UPDATE;
  UPDATE accounts SET balance = balance - amt WHERE id = s AND balance >= amt;
  IF NOT FOUND THEN RETURN FALSE; END IF;
  UPDATE accounts SET balance = balance + amt WHERE id = d;
  INSERT INTO transfers (src, dst, amount) VALUES (s, d, amt);
  RETURN TRUE;
END \$\$;
SQL

cat > "$work/transfer.sql" <<SQL
\set s random(1, 10000)
\set d random(1, 10000)
SELECT $schema.transfer(:s, :d, 1);
SQL
pgbench -n -M prepared -c 32 -j 2 -T "$seconds" -f "$work/transfer.sql" "$url" | grep -E "^(tps|number of transactions actually|latency average)"
psql -qAt "$url" -c "SELECT 'transfers recorded: ' || (SELECT count(*) FROM $schema.transfers)
  || '; money conserved: ' || ((SELECT sum(balance) FROM $schema.accounts) = 10000::bigint * 1000000000)"
