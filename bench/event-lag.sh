#!/usr/bin/env bash
# Events under write load (issue 15's benchmark): `coffer serve` with 1,000 funded wallets;
# single transfers from wrk (128 connections) for SECONDS three times: with nobody reading
# events; while one merchant's key follows the feed by long poll (bench/event_lag.py); and with
# 10 webhook endpoints (one per merchant) delivering to a receiver (bench/webhook_receiver.py).
# Prints the write rates and each reader's lag (event's transaction time to its arrival),
# p50 / p99 / max.
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
[webhooks]
allow_http = true
allow_private_webhook_targets = true
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
python3 bench/webhook_receiver.py $B "$pkey" 10 "$((seconds + 4))" 18093 >"$work/hooks.txt" &
hooks=$!
for _ in $(seq 1 100); do grep -q ready "$work/hooks.txt" 2>/dev/null && break; sleep 0.1; done
hooked=$(rate)
wait $hooks
read -r events per_s p50 p99 max <"$work/lag.txt"
read -r deliveries d_per_s d50 d99 dmax < <(tail -n1 "$work/hooks.txt")
echo "backend $backend, ${seconds}s each, single transfers over HTTP (128 connections)"
echo "transfers/s with nobody reading events: $alone"
echo "transfers/s while one consumer follows the feed: $followed"
echo "consumer: $events balance.changed events ($per_s/s); lag p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
echo "transfers/s with 10 webhook endpoints (one merchant each): $hooked"
echo "webhooks: $deliveries deliveries ($d_per_s/s); lag p50 ${d50} ms, p99 ${d99} ms, max ${dmax} ms"
