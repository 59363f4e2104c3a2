#!/usr/bin/env bash
# The event feed under write load (issue 15's benchmark, for the feed: webhooks are not built):
# `coffer serve` with 1,000 funded wallets; single transfers from wrk (128 connections) for
# SECONDS with nobody reading events, then again while one consumer follows the feed by long
# poll (bench/event_lag.py). Prints both write rates and the consumer's lag (event's transaction
# time to its arrival), p50 / p99 / max.
#
#   bash bench/event-lag.sh [sqlite|postgres] [seconds] [postgresql://postgres@127.0.0.1:5432/test]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
seconds=${2:-10}
url=${3:-postgresql://postgres@127.0.0.1:5432/test}
work=$(mktemp -d)
pids=()
schema=coffer_lag_bench_$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$backend" = postgres ]; then
    PGOPTIONS="-c client_min_messages=warning" psql -q "$url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --locked -q -p coffer --bins
coffer=./target/release/coffer
cat >"$work/coffer.toml" <<EOT
rate_limit = 100000000
EOT
if [ "$backend" = postgres ]; then
  PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 "$url" -c "CREATE SCHEMA $schema"
  sep='?'; case $url in *\?*) sep='&' ;; esac
  store=(--database "${url}${sep}options=-csearch_path%3D$schema")
else
  store=(--data "$work/data")
fi
adm() { COFFER_LOG=error $coffer "${store[@]}" --config "$work/coffer.toml" "$@"; }
adm demo --credentials "$work/creds.json" >"$work/demo.json"
platform=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["platforms"][0]["id"])' "$work/demo.json")
pkey=$(adm key create --owner "$platform" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
COFFER_LOG=warn $coffer "${store[@]}" --config "$work/coffer.toml" serve --listen 127.0.0.1:18092 2>"$work/serve.log" &
pids+=($!)
B=http://127.0.0.1:18092
for _ in $(seq 1 100); do curl -sf $B/healthz >/dev/null 2>&1 && break; sleep 0.1; done
python3 bench/http_setup.py setup $B "$work/creds.json" "$pkey" "$work"
rate() { wrk -t2 -c128 -d"${seconds}s" -s "$work/transfers.lua" "$B/coffer/v1/transfers" | awk '/^Requests\/sec/ {printf "%.0f", $2}'; }
alone=$(rate)
python3 bench/event_lag.py $B "$pkey" "$((seconds + 2))" >"$work/lag.txt" &
consumer=$!
sleep 1
followed=$(rate)
wait $consumer
read -r events per_s p50 p99 max <"$work/lag.txt"
echo "backend $backend, ${seconds}s each, single transfers over HTTP (128 connections)"
echo "transfers/s with nobody reading events: $alone"
echo "transfers/s while one consumer follows the feed: $followed"
echo "consumer: $events balance.changed events ($per_s/s); lag p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
