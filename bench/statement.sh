#!/usr/bin/env bash
# Statements at scale (issue 16's benchmark): `coffer serve` (SQLite) with one wallet A that has
# LINES journal lines (transfers from a funded wallet, 8192 per POST /transfers/batch), and the
# journal grown to TOTAL entries with transfers between two other wallets; then the first page
# of A's statement over the last month (GET /wallets/A/statement, 100 movements, opening and
# closing balances) from one kept-alive connection for 10 s (wrk --latency): p50 / p99.
#
#   bash bench/statement.sh [LINES] [TOTAL]      (defaults 1000000 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
total=${2:-$lines}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release --locked -q -p coffer --bins
coffer=./target/release/coffer
printf 'rate_limit = 100000000\n' >"$work/coffer.toml"
adm() { COFFER_LOG=error $coffer --data "$work/data" --config "$work/coffer.toml" "$@"; }
jid() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
p=$(adm platform create --name bench | jid)
m=$(adm merchant create --parent "$p" --name statements | jid)
ids=()
for i in 1 2 3 4; do ids+=("$(adm wallet open --owner "$m" --type "$(sed -n ${i}p <<<$'OPERATING\nRESERVE\nPREPAID\nGIFT')" --currency USD | jid)"); done
adm tx deposit --wallet "${ids[1]}" --amount 100000000.00 --key fund-b >/dev/null
adm tx deposit --wallet "${ids[3]}" --amount 100000000.00 --key fund-d >/dev/null
key=$(adm key create --owner "$p" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
COFFER_LOG=warn $coffer --data "$work/data" --config "$work/coffer.toml" serve --listen 127.0.0.1:18094 2>"$work/serve.log" &
pids+=($!)
B=http://127.0.0.1:18094
for _ in $(seq 1 100); do curl -sf $B/healthz >/dev/null 2>&1 && break; sleep 0.1; done
load() { # from to count label
  python3 - "$B" "$key" "$1" "$2" "$3" "$4" <<'PY'
import http.client, json, sys, threading, time
base, key, src, dst, count, label = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
host, port = base.split("//")[1].split(":")
size, done, lock = 8192, [0], threading.Lock()
batches = [(i, min(size, count - i)) for i in range(0, count, size)]
def work(part):
    c = http.client.HTTPConnection(host, int(port), timeout=600)
    for start, n in part:
        body = json.dumps({"transfers": [{"idempotency_key": f"{label}-{start + k}", "from": src, "to": dst,
                                          "amount": "0.01"} for k in range(n)]})
        c.request("POST", "/coffer/v1/transfers/batch", body,
                  {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
t = time.time()
parts = [batches[i::2] for i in range(2)]
ts = [threading.Thread(target=work, args=(p,)) for p in parts]
[x.start() for x in ts]; [x.join() for x in ts]
print(f"{label}: {count} transfers in {time.time() - t:.0f} s", file=sys.stderr)
PY
}
load "${ids[1]}" "${ids[0]}" "$lines" a
extra=$((total - lines))
[ "$extra" -gt 0 ] && load "${ids[3]}" "${ids[2]}" "$extra" other
from=$(date -u -d '-1 month' +%F)
to=$(date -u +%F)
url="$B/coffer/v1/wallets/${ids[0]}/statement?from=$from&to=$to"
curl -sf -H "Authorization: Bearer $key" "$url" | python3 -c '
import json,sys; v=json.load(sys.stdin); print("first page:", len(v["movements"]), "movements; opening", v["opening"]["posted"], "closing", v["closing"]["posted"])'
cat >"$work/get.lua" <<EOT
wrk.headers["Authorization"] = "Bearer $key"
EOT
echo "wallet lines: $lines, journal entries: $((lines + extra + 2))"
wrk -t1 -c1 -d10s --latency -s "$work/get.lua" "$url" | grep -E "Requests/sec|^ +50%|^ +99%"
