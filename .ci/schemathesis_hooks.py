"""Schemathesis hooks for .ci/run: point generated ids at real, funded wallets and owners some of
the time, so the fuzzer reaches money movements and the ledger rules behind them (the run ends
with `coffer verify`). Ids and amounts come from the environment .ci/run sets up."""

import os
import random

import schemathesis

# Hypothesis reseeds the global `random` for every example: use a generator of our own.
rng = random.Random()

WALLETS = [w for w in os.environ.get("ST_WALLETS", "").split(",") if w]
OWNERS = [o for o in os.environ.get("ST_OWNERS", "").split(",") if o]

def _amount():
    return f"{rng.randint(1, 50000) / 100:.2f}"

@schemathesis.hook
def map_path_parameters(context, path_parameters):
    path = context.operation.path if context.operation else ""
    if path_parameters and "id" in path_parameters and rng.random() < 0.7:
        if path.startswith("/coffer/v1/owners/") and OWNERS:
            path_parameters["id"] = rng.choice(OWNERS)
        elif path.startswith("/coffer/v1/wallets/") and WALLETS:
            path_parameters["id"] = rng.choice(WALLETS)
    return path_parameters

@schemathesis.hook
def map_body(context, body):

    if isinstance(body, dict) and WALLETS and rng.random() < 0.7:
        for field in ("wallet", "from", "to"):
            if field in body:
                body[field] = rng.choice(WALLETS)
        if "owner" in body and OWNERS:
            body["owner"] = rng.choice(OWNERS)
        if "amount" in body and rng.random() < 0.8:
            body["amount"] = _amount()
        if isinstance(body.get("transfers"), list):
            for t in body["transfers"]:
                if isinstance(t, dict):
                    t["from"], t["to"] = rng.sample(WALLETS, 2)
                    t["amount"] = _amount()
    return body


@schemathesis.hook
def map_headers(context, headers):
    if headers and "Idempotency-Key" in headers and rng.random() < 0.8:
        headers["Idempotency-Key"] = f"fuzz-{rng.getrandbits(64):x}"
    if headers and "Coffer-On-Behalf-Of" in headers and OWNERS:
        # Mostly act as the key's own platform (no header), else as a real owner below it.
        if rng.random() < 0.7:
            del headers["Coffer-On-Behalf-Of"]
        else:
            headers["Coffer-On-Behalf-Of"] = rng.choice(OWNERS)
    return headers


@schemathesis.hook
def map_query(context, query):
    # The event feed's long poll (`wait`, up to 30 s) would hold every example that finds no
    # event for its whole wait: keep the fuzzed waits short so the run stays quick.
    if isinstance(query, dict) and "wait" in query:
        query["wait"] = 0 if rng.random() < 0.9 else 1
    return query
