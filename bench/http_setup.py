#!/usr/bin/env python3
"""Setup and drivers for bench/http-reads.sh (standard library only).

  http_setup.py setup BASE CREDS PLATFORM_KEY WORK   funded wallets + the wrk Lua scripts in WORK
  http_setup.py batches BASE PLATFORM_KEY WORK SECONDS CLIENTS SIZE   POST /transfers/batch load

`setup` opens 1,000 funded wallets (250 merchants of the demo platform, four wallets each, each
funded by a deposit), then writes one wrk Lua script per row of the benchmark into WORK, with
the credentials and ids each needs (tokens fetched, PayerMax body signed with openssl).
"""

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

MERCHANTS = 250
WALLETS = [("OPERATING", "USD"), ("RESERVE", "USD"), ("PREPAID", "USD"), ("OPERATING", "EUR")]


class Client:
    """One kept-alive connection to the server."""

    def __init__(self, base, headers=None):
        u = urllib.parse.urlparse(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.headers = headers or {}

    def call(self, method, path, body=None, headers=None, ok=(200, 201)):
        h = dict(self.headers)
        h.update(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=h)
        r = self.conn.getresponse()
        text = r.read()
        if r.status not in ok:
            raise SystemExit(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None


# wrk Lua: a per-thread `tid` (start time and thread number) and a per-thread counter `n`, so
# that request ids and idempotency keys are new in every run and on every thread.
UNIQUE = """local n = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", os.time() .. "-" .. threads)
end
"""


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write(work, name, text):
    with open(os.path.join(work, name), "w") as f:
        f.write(text)


def fixed(method, body=None, headers=()):
    """A wrk script sending the same request every time."""
    lines = [f"wrk.method = {lua_string(method)}"]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    for k, v in headers:
        lines.append(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}")
    return "\n".join(lines) + "\n"


def setup(base, creds_file, platform_key, work):
    creds = {m["dialect"]: m for m in json.load(open(creds_file))["merchants"]}
    api = Client(base, {"Authorization": f"Bearer {platform_key}"})
    me = api.call("GET", "/coffer/v1/me")
    platform = me["acting_as"]["id"]
    wallets = []
    for i in range(MERCHANTS):
        m = api.call("POST", f"/coffer/v1/owners/{platform}/children", {"name": f"bench merchant {i}"})
        for t, c in WALLETS:
            w = api.call("POST", "/coffer/v1/wallets", {"owner": m["id"], "type": t, "currency": c})
            api.call("POST", "/coffer/v1/deposits", {"wallet": w["id"], "amount": "1000000.00"},
                     headers={"Idempotency-Key": f"bench-fund-{w['id']}"})
            if c == "USD":
                wallets.append(w["id"])
    write(work, "usd_wallets.json", json.dumps(wallets))

    # Native read: the Onerway demo merchant's own key on its USD OPERATING wallet.
    o = creds["onerway"]
    own = Client(base, {"Authorization": f"Bearer {o['key']}"})
    ws = own.call("GET", f"/coffer/v1/owners/{o['merchant']}/wallets")
    ws = ws["data"] if isinstance(ws, dict) else ws
    wid = next(w["id"] for w in ws if w["type"] == "OPERATING" and w["currency"] == "USD")
    write(work, "native.lua", fixed("GET", headers=[("Authorization", f"Bearer {o['key']}")]))
    write(work, "native.path", f"/coffer/v1/wallets/{wid}")

    e = creds["engagelab"]
    basic = base64.b64encode(f"{e['key_id']}:{e['secret']}".encode()).decode()
    write(work, "engagelab.lua", fixed("GET", headers=[("Authorization", f"Basic {basic}")]))
    write(work, "engagelab.path", "/v1/balance")

    u = creds["uqpay"]
    tok = Client(base).call("POST", "/api/v1/connect/token",
                            headers={"x-client-id": u["key_id"], "x-api-key": u["secret"]})["auth_token"]
    write(work, "uqpay.lua", fixed("GET", headers=[("x-auth-token", f"Bearer {tok}")]))
    write(work, "uqpay.path", "/api/v1/balances/USD")

    n = creds["neox"]
    tok = Client(base).call("POST", "/v2/auth/oauth2/token", {
        "grant_type": "client_credentials", "client_id": n["key_id"], "client_secret": n["secret"],
        "scope": "global-collection"})["data"]["access_token"]
    write(work, "neox.lua", fixed("GET", headers=[("Authorization", f"Bearer {tok}")]))
    write(work, "neox.path", f"/v2/gc/accounts/balance/query?subMerchantId={n['merchant']}")

    # Onerway: every request id is new (they are durable claims); the time is the sender's now.
    write(work, "onerway.lua", f"""
wrk.method = "POST"
wrk.headers["apikey"] = {lua_string(o['key'])}
wrk.headers["Content-Type"] = "application/json"
{UNIQUE}request = function()
  n = n + 1
  local body = '{{"requestId":"B' .. tid .. '-' .. n .. '","requestTime":' .. (os.time() * 1000) .. ',"currency":"USD"}}'
  return wrk.format(nil, nil, nil, body)
end
""")
    write(work, "onerway.path", "/account/v1/balance/query")

    # PayerMax: one body signed with the merchant's private key (the server verifies it and
    # signs its answer every time).
    p = creds["payermax"]
    pem = os.path.join(work, "payermax.pem")
    write(work, "payermax.pem", p["private_key_pem"])
    t = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    body = json.dumps({"appId": p["key_id"], "version": "1.3", "merchantNo": p["merchant"], "requestTime": t,
                       "keyVersion": "1", "data": {"plainSign": False}}, separators=(",", ":"))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pem], input=body.encode(),
                         capture_output=True, check=True).stdout
    write(work, "payermax.lua", fixed("POST", body, [("Content-Type", "application/json"),
                                                      ("sign", base64.b64encode(sig).decode())]))
    write(work, "payermax.path", "/aggregate-pay/api/gateway/currentBalanceQuery")

    # Single transfers with the platform's key: random pairs of funded wallets, new
    # idempotency keys.
    ids = "{" + ",".join(lua_string(w) for w in wallets) + "}"
    write(work, "transfers.lua", f"""
wrk.method = "POST"
wrk.headers["Authorization"] = {lua_string('Bearer ' + platform_key)}
wrk.headers["Content-Type"] = "application/json"
local ids = {ids}
{UNIQUE}request = function()
  n = n + 1
  local a = math.random(1, #ids)
  local b = math.random(1, #ids - 1)
  if b >= a then b = b + 1 end
  wrk.headers["Idempotency-Key"] = "bt-" .. tid .. "-" .. n
  local body = '{{"from":"' .. ids[a] .. '","to":"' .. ids[b] .. '","amount":"0.01"}}'
  return wrk.format(nil, nil, nil, body)
end
""")
    write(work, "transfers.path", "/coffer/v1/transfers")
    check = Client(base).call("GET", "/v1/balance", headers={"Authorization": f"Basic {basic}"})
    assert check is not None
    print(f"setup: {len(wallets)} funded USD wallets ({MERCHANTS * len(WALLETS)} in all)")


def batches(base, platform_key, work, seconds, clients, size):
    """POST /transfers/batch of `size` transfers from `clients` connections for `seconds`."""
    import random

    wallets = json.load(open(os.path.join(work, "usd_wallets.json")))
    done = [0] * clients
    refused = [0] * clients
    stop = time.time() + seconds
    run = f"{os.getpid()}-{int(time.time())}"

    def body(c, k):
        ts = []
        for i in range(size):
            a, b = random.sample(wallets, 2)
            ts.append({"idempotency_key": f"bb-{run}-{c}-{k}-{i}", "from": a, "to": b, "amount": "0.01"})
        return json.dumps({"transfers": ts})

    def worker(c):
        api = Client(base, {"Authorization": f"Bearer {platform_key}"})
        k = 0
        pending = body(c, k)
        while time.time() < stop:
            r = api.call("POST", "/coffer/v1/transfers/batch", pending)
            done[c] += r["accepted"]
            refused[c] += r["refused"]
            k += 1
            pending = body(c, k)

    start = time.time()
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - start
    print(f"{sum(done) / elapsed:.0f} {sum(refused)}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(*sys.argv[2:6])
    elif cmd == "batches":
        b, k, w, s, c, n = sys.argv[2:8]
        batches(b, k, w, float(s), int(c), int(n))
    else:
        raise SystemExit(__doc__)
