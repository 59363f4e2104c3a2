#!/usr/bin/env bash
# Issue 6's benchmark in one run: the plain-SQL baseline (bench/pg-baseline.sh: PL/pgSQL transfer
# function, pgbench, 32 clients) and then Coffer's PostgreSQL store with 32 concurrent writers
# (`coffer bench --database`, in a schema of its own, dropped afterwards), same database, same
# 10,000 wallets, same duration. Both are durable (synchronous_commit as the server has it).
#
#   bash bench/pg-compare.sh [postgresql://postgres@127.0.0.1:5432/test] [seconds]
#
# Builds the release binary first. COFFER_DATABASE_WRITERS sets Coffer's writers per node.
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:-postgresql://postgres@127.0.0.1:5432/test}
seconds=${2:-15}
cargo build --release -p coffer --locked -q
echo "== baseline: PL/pgSQL transfer function, pgbench, 32 clients, ${seconds}s"
bash bench/pg-baseline.sh "$url" "$seconds"
echo "== coffer: PostgreSQL store, 32 writers, ${seconds}s"
COFFER_LOG=warn ./target/release/coffer --database "$url" bench --writers 32 --seconds "$seconds" --wallets 10000 --read-seconds 2
