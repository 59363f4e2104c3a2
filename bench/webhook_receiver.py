"""Webhook deliveries under load: make `endpoints` webhook endpoints, one per bench merchant
(each gets only its merchant's events), all pointing to a receiver here, then receive for
`seconds` and note, for each event, how long after its transaction's time it arrived. Prints
deliveries, deliveries/s, and the lag's p50 / p99 / max in ms.

    python3 bench/webhook_receiver.py BASE PLATFORM_KEY ENDPOINTS SECONDS PORT
"""
import datetime
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lags, lock = [], threading.Lock()


def call(base, key, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/coffer/v1{path}", data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per endpoint, as real receivers

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time()
        e = json.loads(body)
        t = datetime.datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")).timestamp()
        with lock:
            lags.append(now - t)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main(base, key, endpoints, seconds, port):
    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    platform = call(base, key, "/me")["acting_as"]["id"]
    merchants = [c for c in call(base, key, f"/owners/{platform}/children?limit=200")["data"]
                 if c["name"].startswith("bench merchant")][:endpoints]
    for m in merchants:
        call(base, key, "/webhook-endpoints", {"url": f"http://127.0.0.1:{port}/hook", "owner": m["id"]})
    print("ready", flush=True)
    time.sleep(seconds)
    with lock:
        got = sorted(lags)
    pick = lambda q: got[min(len(got) - 1, int(q * len(got)))] * 1000 if got else float("nan")
    print(f"{len(got)} {len(got) / seconds:.0f} {pick(0.5):.1f} {pick(0.99):.1f} {pick(1.0):.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
