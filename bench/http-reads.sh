#!/usr/bin/env bash
# Issue 13's table in one run: an axum hello-world floor and `coffer serve` on the demo ledger
# plus 1,000 funded wallets, driven by the same load generator (wrk, 2 threads), printing
# requests/s, p50 and p99 for each row and its ratio to the target:
#
#   reads (64 connections): the floor, native GET /wallets/{id}, the five dialects' balance
#   queries (PayerMax against 0.8 x the machine's RSA-2048 signs/s per core x cores, measured
#   in the same run with `openssl speed`);
#   writes: native single transfers (128 connections), POST /transfers/batch of 8,000
#   (2 clients); on PostgreSQL also `coffer bench --database` (32 writers) in-process.
#
#   bash bench/http-reads.sh [sqlite|postgres] [seconds] [postgresql://postgres@127.0.0.1:5432/test]
#
# Builds the release binaries first (COFFER_BIN=path measures another build of coffer instead).
# Needs wrk, python3, openssl (and psql for postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
seconds=${2:-10}
url=${3:-postgresql://postgres@127.0.0.1:5432/test}
cores=$(nproc)
work=$(mktemp -d)
pids=()
schema=coffer_http_bench_$$
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
cargo build --release --locked -q -p coffer-http --example floor
# COFFER_BIN: another build's binary to measure (e.g. the commit before a change), same run.
coffer=${COFFER_BIN:-./target/release/coffer}
floor=./target/release/examples/floor

wait_up() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer at $1" >&2; exit 1; }

# run NAME URL SCRIPT CONNECTIONS: wrk's requests/s, p50 and p99 (ms), and non-2xx count.
declare -A rps p50 p99 bad
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}'; }
run() {
  local name=$1 target=$2 script=$3 conns=$4 out
  out=$(wrk -t2 -c"$conns" -d"${seconds}s" --latency -s "$script" "$target" 2>&1)
  rps[$name]=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50[$name]=$(awk '$1=="50%" {print $2}' <<<"$out" | ms)
  p99[$name]=$(awk '$1=="99%" {print $2}' <<<"$out" | ms)
  bad[$name]=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  bad[$name]=${bad[$name]:-0}
}

echo "== floor: axum hello-world (same stack), 64 connections, ${seconds}s"
echo 'wrk.method = "GET"' >"$work/get.lua"
$floor 127.0.0.1:18090 2>/dev/null &
pids+=($!)
wait_up http://127.0.0.1:18090/
run floor http://127.0.0.1:18090/ "$work/get.lua" 64
kill "${pids[0]}"

echo "== RSA-2048 signs/s per core (openssl speed, 3 s)"
rsa=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {printf "%.0f", $6}')
echo "$rsa signs/s per core x $cores cores"

echo "== coffer serve ($backend): demo ledger + 1,000 funded wallets"
cat >"$work/coffer.toml" <<EOF
rate_limit = 100000000
EOF
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
COFFER_LOG=warn $coffer "${store[@]}" --config "$work/coffer.toml" serve --listen 127.0.0.1:18091 2>"$work/serve.log" &
pids+=($!)
B=http://127.0.0.1:18091
wait_up $B/healthz
python3 bench/http_setup.py setup $B "$work/creds.json" "$pkey" "$work"

for row in native engagelab uqpay neox onerway payermax; do
  echo "== $row, 64 connections, ${seconds}s"
  run "$row" "$B$(cat "$work/$row.path")" "$work/$row.lua" 64
done
echo "== native single transfers, 128 connections, ${seconds}s"
run transfers "$B$(cat "$work/transfers.path")" "$work/transfers.lua" 128
echo "== POST /transfers/batch, 8,000 per request, 2 clients, ${seconds}s"
read -r batch batch_refused < <(python3 bench/http_setup.py batches $B "$pkey" "$work" "$seconds" 2 8000)
inproc=""
if [ "$backend" = postgres ]; then
  echo "== coffer bench --database: 32 writers in-process, ${seconds}s"
  inproc=$(COFFER_LOG=warn $coffer --database "$url" bench --writers 32 --seconds "$seconds" --wallets 10000 --read-seconds 1 |
    awk '$1=="32" {print $2}' | tr -d ,)
fi
echo "== verify"
kill "${pids[1]}"
wait "${pids[1]}" 2>/dev/null || true
adm verify | tail -n 3

f=${rps[floor]}
printf '\n%-34s %12s %9s %9s %8s %10s %8s\n' "row ($backend, $cores cores)" "req/s" "p50 ms" "p99 ms" "non-2xx" "ratio" "target"
line() { # name label target-ratio base
  local r=${rps[$1]}
  printf '%-34s %12s %9s %9s %8s %10s %8s\n' "$2" "$r" "${p50[$1]}" "${p99[$1]}" "${bad[$1]}" \
    "$(awk -v a="$r" -v b="$4" 'BEGIN {printf "%.2fx", a / b}')" "$3"
}
line floor "axum hello-world floor" "" "$f"
if [ "$backend" = postgres ]; then read_target=0.3x; one_target=0.3x; else read_target=0.7x; one_target=0.5x; fi
line native "native GET /wallets/{id}" "$read_target" "$f"
line engagelab "EngageLab GET /v1/balance" "$read_target" "$f"
line uqpay "UQPay GET /api/v1/balances/USD" "$read_target" "$f"
line neox "NeoX balance query" "$read_target" "$f"
line onerway "Onerway balance query" "$one_target" "$f"
line payermax "PayerMax (vs signs/s x cores)" "0.8x" "$((rsa * cores))"
if [ -n "$inproc" ]; then
  line transfers "single transfers, 128 conns (vs in-process)" "0.9x" "$inproc"
  printf '%-34s %12s\n' "coffer bench --database, 32 writers" "$inproc"
else
  line transfers "single transfers, 128 conns" "" "$f"
fi
printf '%-34s %12s %9s %9s %8s %10s\n' "batch of 8,000 (transfers/s)" "$batch" "" "" "$batch_refused" \
  "$(awk -v a="$batch" -v b="${rps[transfers]}" 'BEGIN {printf "%.2fx", a / b}')"
echo "(the batch's ratio is to single transfers; refused transfers are counted under non-2xx)"
