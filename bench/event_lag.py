"""The event feed's lag under load: as one merchant (a key of the platform's first merchant, made
here), follow GET /coffer/v1/events (long poll) from the journal's end for `seconds`, and for
every event received note how long after its transaction's time it arrived. The server walks
the platform's whole journal and keeps the merchant's events. Prints events received, events/s,
and the lag's p50 / p99 / max in ms.

    python3 bench/event_lag.py BASE PLATFORM_KEY SECONDS
"""
import datetime
import json
import sys
import time
import urllib.request


def call(base, key, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"{base}/coffer/v1{path}", data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def get(base, key, query):
    return call(base, key, f"/events?{query}")


def stamp(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main(base, platform_key, seconds):
    platform = call(base, platform_key, "/me")["acting_as"]["id"]
    children = call(base, platform_key, f"/owners/{platform}/children?limit=200")["data"]
    merchant = next(c for c in children if c["name"].startswith("bench merchant"))
    key = call(base, platform_key, "/api-keys", {"owner": merchant["id"], "scope": "READ_ONLY"})["key"]
    last = call(base, platform_key, "/transactions?limit=1")["data"][0]["seq"]
    cursor = f"e{last + 1}.0"  # the journal's end
    lags, end = [], time.time() + seconds
    while time.time() < end:
        page = get(base, key, f"limit=1000&wait=2&types=balance.changed&cursor={cursor}")
        now = time.time()
        lags.extend(now - stamp(e["created_at"]) for e in page["data"])
        cursor = page["next_cursor"]
    lags.sort()
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else float("nan")
    print(f"{len(lags)} {len(lags) / seconds:.0f} {pick(0.5):.1f} {pick(0.99):.1f} {pick(1.0):.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
