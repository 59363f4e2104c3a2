"""The official UQPay Python SDK (`uqpay==4.0.0`, unchanged) against a served Coffer: its
sandbox base URL pointed at Coffer's UQPay dialect, then `banking.balances.list_transactions`
called as the SDK's users call it (no parameters; then paging, a currency and a window with a
+08:00 offset). Prints both answers as one JSON object.

    python3 uqpay_list_transactions.py ROOT CLIENT_ID API_KEY
"""
import json
import sys

import uqpay.client


def main(root, client_id, api_key):
    uqpay.client._BASE_URLS["sandbox"] = f"{root}/api"
    client = uqpay.client.UQPayClient(client_id, api_key, environment="sandbox", webhook_secret="unused", max_retries=0)
    plain = client.banking.balances.list_transactions()
    filtered = client.banking.balances.list_transactions(
        {"page_size": 100, "page_number": 1, "currency": "USD", "start_time": "2020-01-01T00:00:00+08:00"}
    )
    print(json.dumps({"plain": plain, "filtered": filtered}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
