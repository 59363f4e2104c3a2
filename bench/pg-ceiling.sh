#!/usr/bin/env bash
# The ceiling of issue 6's benchmark on this machine: what PostgreSQL itself sustains for the
# rows a group-committed Coffer batch must write, with no Coffer in the way and one round trip
# per batch (fewer than any design that reads balances before deciding can have).
#
# Coffer's own schema (`coffer migrate`, in a scratch schema) with 10,000 funded wallets; a
# PL/pgSQL function takes a batch of N random transfers and does what Coffer's writer does for
# them: lock the wallets in account-number order (FOR UPDATE), update their balances, insert N
# journal entries with their lines inside (with every index Coffer's schema has on them; the
# lines table is the projector's, written behind the commit). pgbench drives it with C clients;
# transfers/s = batches/s x N. Durable like the baseline (synchronous_commit as the server has it).
#
#   bash bench/pg-ceiling.sh [postgresql://postgres@127.0.0.1:5432/test] [seconds] [N] [C...]
#
# Builds the release binary first (for `coffer migrate`).
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:-postgresql://postgres@127.0.0.1:5432/test}
seconds=${2:-15}
n=${3:-16}
shift $(( $# < 3 ? $# : 3 ))
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(1 2 4)
schema=coffer_pg_ceiling
work=$(mktemp -d)
psql_() { PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 "$url" "$@"; }
trap 'psql_ -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release -p coffer --locked -q
psql_ -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema"
sep='?'; case $url in *\?*) sep='&' ;; esac
COFFER_LOG=warn ./target/release/coffer --database "${url}${sep}options=-csearch_path%3D$schema" migrate >/dev/null

psql_ <<SQL
SET search_path = $schema;
INSERT INTO accounts (id, number, platform_id, owner_id, kind, currency, exponent, posted, held, incoming,
                      status, overdraft_limit, min_balance, created_at, last_trade_at)
SELECT gen_random_uuid(), g, '00000000-0000-0000-0000-000000000001', gen_random_uuid(), 'OPERATING', 'USD', 2,
       1000000000, 0, 0, 'ACTIVE', NULL, 0, 0, NULL
FROM generate_series(1, 10000) g;
ANALYZE accounts;
CREATE SEQUENCE ceiling_idem;
-- One batch of n transfers, as Coffer's writer applies it.
CREATE FUNCTION batch(n INT) RETURNS INT LANGUAGE plpgsql SET search_path = $schema AS \$\$
DECLARE
  src BIGINT[]; dst BIGINT[]; amt BIGINT[]; seqs BIGINT[];
BEGIN
  -- Two different wallets per transfer.
  SELECT array_agg(s), array_agg(1 + (s + floor(random() * 9999)::BIGINT) % 10000),
         array_agg(1 + floor(random() * 100)::BIGINT), array_agg(nextval('entry_seq'))
    INTO src, dst, amt, seqs
    FROM (SELECT 1 + floor(random() * 10000)::BIGINT AS s FROM generate_series(1, n)) r;
  PERFORM 1 FROM accounts WHERE number = ANY(src || dst) ORDER BY number FOR UPDATE;
  UPDATE accounts a SET posted = a.posted + d.delta, last_trade_at = 1
    FROM (SELECT no, sum(delta) AS delta FROM (
            SELECT unnest(src) AS no, -unnest(amt) AS delta UNION ALL SELECT unnest(dst), unnest(amt)) x
          GROUP BY no) d
   WHERE a.number = d.no;
  -- The journal: one row per transfer with its two lines inside (the projector writes the
  -- lines table later, off the commit path; this measures the commit).
  INSERT INTO entries (seq, platform_id, kind, idem_key, request_hash, created_at, lines)
  SELECT s, '00000000-0000-0000-0000-000000000001', 'TRANSFER', 'k' || nextval('ceiling_idem'),
         md5(s::text), 1,
         int8send(f) || int8send(-a) || int8send(0::BIGINT) || int8send(0::BIGINT) || int8send(0::BIGINT)
           || int8send(0::BIGINT) || int8send(0::BIGINT)
         || int8send(t) || int8send(a) || int8send(0::BIGINT) || int8send(0::BIGINT) || int8send(0::BIGINT)
           || int8send(0::BIGINT) || int8send(0::BIGINT)
    FROM unnest(seqs, src, dst, amt) AS x(s, f, t, a);
  RETURN n;
END \$\$;
SQL

echo "SELECT $schema.batch($n);" > "$work/batch.sql"
for c in "${clients[@]}"; do
  tps=$(pgbench -n -M prepared -c "$c" -j "$c" -T "$seconds" -f "$work/batch.sql" "$url" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  echo "clients $c, $n transfers per batch: $tps batches/s = $(echo "$tps * $n" | bc | cut -d. -f1) transfers/s"
done
psql -qAt "$url" -c "SELECT 'money conserved: ' || ((SELECT sum(posted) FROM $schema.accounts) = 10000::bigint * 1000000000)"
