"""Drive a running Coffer's /dashboard in headless Chromium (Debian's, through Playwright), signed
in with a demo merchant's key, and check it against the API: every figure of the balances view
equals the API's; the wallet chart has one point per entry in its period and ends at the balance;
a deposit made through the API shows within 2 s; a sibling merchant's ids in the URL show "not
found" and no data; no request leaves the server's host; the console logs no error. Screenshots
of each view at 1280 px and at a phone's width go to OUT_DIR. Prints a JSON report.

usage: dashboard.py BASE_URL OUT_DIR CHROMIUM INPUT_JSON
INPUT_JSON: {"merchant_key", "merchant", "sibling", "platform_key"}"""
import gzip
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import sync_playwright

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


class Api:
    def __init__(self, base, key):
        self.base, self.key = base + "/coffer/v1", key

    def call(self, path, body=None, method=None):
        req = urllib.request.Request(self.base + path, method=method or ("POST" if body is not None else "GET"))
        req.add_header("Authorization", "Bearer " + self.key)
        data = None
        if body is not None:
            req.add_header("Content-Type", "application/json")
            req.add_header("Idempotency-Key", str(uuid.uuid4()))
            data = json.dumps(body).encode()
        with urllib.request.urlopen(req, data) as r:
            return json.load(r)

    def all(self, path):
        out, cursor = [], None
        while True:
            sep = "&" if "?" in path else "?"
            page = self.call(path + sep + "limit=200" + (f"&cursor={cursor}" if cursor else ""))
            out += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out


def weight(base):
    """Every dashboard asset, gzip-compressed, in bytes."""
    total = 0
    for path in ("/dashboard", "/dashboard/app.js", "/dashboard/app.css"):
        with urllib.request.urlopen(base + path) as r:
            total += len(gzip.compress(r.read(), 9))
    return total


def check_balances(page, merchant_api, merchant, failures):
    wallets = merchant_api.all(f"/owners/{merchant}/wallets")
    rows = page.locator("#balances tbody tr")
    if rows.count() != len(wallets):
        failures.append(f"balances: {rows.count()} rows for {len(wallets)} wallets")
    checked = 0
    for w in wallets:
        for field in ("posted", "held", "available", "withdrawable", "incoming"):
            cell = page.locator(f'#balances tr[data-wallet="{w["id"]}"] td[data-field="{field}"]')
            shown = cell.inner_text().strip()
            checked += 1
            if shown != w[field]:
                failures.append(f"balances: {w['type']} {w['currency']} {field} shows {shown}, the API says {w[field]}")
    overview = merchant_api.call(f"/owners/{merchant}/overview?display_currency=USD")
    total = page.locator("#total").inner_text().strip()
    if total != f"{overview['total']} USD":
        failures.append(f"total shows {total}, the API says {overview['total']} USD")
    for c in overview["currencies"]:
        shown = page.locator(f'#overview tr[data-currency="{c["currency"]}"] td[data-field="converted"]').inner_text().strip()
        checked += 1
        if shown != c["converted"]:
            failures.append(f"overview: {c['currency']} shows {shown}, the API says {c['converted']}")
    return checked + 1, wallets


def check_chart(page, merchant_api, wallet, failures):
    """The wallet chart (last 30 days): a point per history line, the last one the balance."""
    page.wait_for_selector("#wallet-chart svg")
    now = datetime.now(timezone.utc)
    frm = (now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = merchant_api.all(f"/wallets/{wallet}/history?from={frm}")
    points = page.locator("#wallet-chart circle.pt")
    if points.count() != len(lines):
        failures.append(f"chart: {points.count()} points for {len(lines)} entries")
    last = points.last.get_attribute("data-posted")
    balance = merchant_api.call(f"/wallets/{wallet}")["posted"]
    if last != balance:
        failures.append(f"chart: last point {last}, balance {balance}")
    seqs = [int(points.nth(i).get_attribute("data-seq")) for i in range(points.count())]
    if seqs != sorted(line["transaction"] for line in lines):
        failures.append("chart: the points are not the entries, in order")
    return len(lines)


def main(base, out, chromium, inputs):
    host = urllib.parse.urlparse(base).hostname
    merchant_api, platform_api = Api(base, inputs["merchant_key"]), Api(base, inputs["platform_key"])
    merchant, sibling = inputs["merchant"], inputs["sibling"]
    sibling_wallet = platform_api.all(f"/owners/{sibling}/wallets")[0]["id"]
    hook = platform_api.call("/webhook-endpoints", {"url": "https://hooks.invalid/coffer", "owner": merchant})
    report = {"failures": [], "errors": [], "outside": [], "screenshots": [], "weight_gzip": weight(base)}
    failures = report["failures"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name, (w, h) in WIDTHS.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            expected_404 = [False]

            def console(m, expected_404=expected_404):
                # An API answer of 404 is what the not-found step asks for; Chromium logs it.
                if m.type == "error" and not (expected_404[0] and "404" in m.text):
                    report["errors"].append(f"{name}: {m.text}")

            page.on("console", console)
            page.on("pageerror", lambda e, name=name: report["errors"].append(f"{name}: {e}"))

            def only_here(route):
                if urllib.parse.urlparse(route.request.url).hostname == host:
                    route.continue_()
                else:
                    report["outside"].append(route.request.url)
                    route.abort()

            page.route("**/*", only_here)

            def shot(view):
                path = f"{out}/dashboard-{view}-{name}.png"
                page.screenshot(path=path, full_page=True)
                report["screenshots"].append(path)

            started = time.monotonic()
            page.goto(base + "/dashboard")
            page.wait_for_selector("#key")
            shot("signin")
            page.fill("#key", inputs["merchant_key"])
            page.press("#key", "Enter")
            page.wait_for_selector("#balances tbody tr")
            page.wait_for_selector("#total")
            report[f"sign_in_seconds_{name}"] = round(time.monotonic() - started, 3)
            checked, wallets = check_balances(page, merchant_api, merchant, failures)
            # First view of a signed-in tab: navigation to balances shown, best of three loads.
            loads = []
            for _ in range(3):
                page.reload()
                page.wait_for_selector("#balances tbody tr")
                page.wait_for_selector("#total")
                loads.append(page.evaluate("() => performance.getEntriesByName('coffer-ready')[0].startTime"))
            report[f"first_view_ms_{name}"] = round(min(loads))
            if min(loads) >= 1000:
                failures.append(f"{name}: the first view took {min(loads):.0f} ms (best of 3)")
            report["figures_checked"] = checked
            page.wait_for_selector("#owner-chart svg")
            # The owner's movements: every wallet's entries merged, newest first, each once.
            seqs = set()
            for w in wallets:
                seqs |= {t["seq"] for t in merchant_api.all(f"/transactions?wallet={w['id']}")}
            page.wait_for_selector("#movements tbody tr")
            shown = [int(r.get_attribute("data-seq")) for r in page.locator("#movements tbody tr").all()]
            if shown != sorted(seqs, reverse=True)[:25]:
                failures.append(f"owner movements: {shown} for {sorted(seqs, reverse=True)[:25]}")
            shot("balances")

            usd = next(x for x in wallets if x["type"] == "OPERATING" and x["currency"] == "USD")
            page.click(f'#balances tr[data-wallet="{usd["id"]}"] a')
            page.wait_for_selector("#figures [data-field=posted]")
            page.wait_for_selector("#movements tbody tr")
            report["chart_points"] = check_chart(page, merchant_api, usd["id"], failures)
            pending = merchant_api.call(f"/wallets/{usd['id']}/incoming")["data"]
            page.wait_for_selector("#incoming")
            for i in pending:
                row = page.locator(f'#incoming tr[data-incoming="{i["id"]}"] td.num').inner_text().strip()
                if row != i["amount"]:
                    failures.append(f"incoming {i['id']}: shows {row}, the API says {i['amount']}")
            if not pending or page.locator("#incoming tbody tr").count() != len(pending):
                failures.append(f"incoming: {page.locator('#incoming tbody tr').count()} rows for {len(pending)} credits")
            shown = page.locator("#figures [data-field=posted]").inner_text()
            if shown != usd["posted"]:
                failures.append(f"wallet posted shows {shown}, the API says {usd['posted']}")
            shot("wallet")
            page.locator("#movements tbody tr").first.click()
            page.wait_for_selector("#entry-h")
            shot("entry")

            # Live: a deposit through the API shows within 2 s (no reload).
            before = page.locator("#figures [data-field=posted]").inner_text()
            platform_api.call("/deposits", {"wallet": usd["id"], "amount": "1.25"})
            after = platform_api.call(f"/wallets/{usd['id']}")["posted"]
            started = time.monotonic()
            try:
                page.wait_for_function(
                    "v => document.querySelector('#figures [data-field=posted]').textContent === v",
                    arg=after, timeout=2000)
                report[f"live_seconds_{name}"] = round(time.monotonic() - started, 3)
            except Exception:
                failures.append(f"{name}: a deposit did not show within 2 s ({before} -> {after})")
            page.wait_for_function(
                "n => document.querySelectorAll('#wallet-chart circle.pt').length === n",
                arg=report["chart_points"] + 1, timeout=2000)

            # A sibling merchant's ids: "not found", and nothing of theirs.
            expected_404[0] = True
            for path in (f"#/wallets/{sibling_wallet}", f"#/owners/{sibling}"):
                page.goto(base + "/dashboard" + path)
                page.wait_for_selector("#message")
                text = page.locator("#main").inner_text()
                if "Not found" not in text or page.locator("#figures, #balances").count():
                    failures.append(f"{path}: {text[:200]}")
            shot("not-found")
            # "View as" an owner out of reach: refused, and back to the key's own owner.
            page.goto(base + "/dashboard#/")
            page.fill("#as-owner", sibling)
            page.press("#as-owner", "Enter")
            page.wait_for_selector("#flash")
            if "not in this key's reach" not in page.locator("#flash").inner_text():
                failures.append("view as a sibling: no refusal shown")
            page.wait_for_selector("#balances tbody tr")
            if page.locator(f'#balances tr[data-wallet="{sibling_wallet}"]').count():
                failures.append("view as a sibling: its wallets are shown")
            expected_404[0] = False

            page.goto(base + "/dashboard#/webhooks")
            page.wait_for_selector("#webhooks a")
            shot("webhooks")
            page.click(f'#webhooks a[href="#/webhooks/{hook["id"]}"]')
            page.wait_for_selector("#webhook")
            if hook["id"] not in page.locator("#webhook").inner_text():
                failures.append("webhook: the endpoint's detail is not shown")
            shot("webhook")

            page.goto(base + "/dashboard#/owners/" + merchant)
            page.click("#theme")
            page.wait_for_selector("#balances tbody tr")
            shot("balances-theme")
            if page.evaluate("() => document.cookie") or "ck_" in page.url:
                failures.append("the key is in a cookie or the URL")

            # The platform's tree, searched: the matching merchant shown, the others hidden.
            page.click("#signout")
            page.fill("#key", inputs["platform_key"])
            page.press("#key", "Enter")
            page.wait_for_selector("#balances")
            page.fill("#tree-search", "uqpay")
            page.wait_for_selector(f'#tree a[data-owner="{sibling}"]')
            page.wait_for_selector(f'#tree a[data-owner="{merchant}"]', state="hidden")
            shot("tree-search")
            page.close()
        browser.close()
    print(json.dumps(report))
    bad = report["failures"] or report["errors"] or report["outside"] or report["weight_gzip"] > 300 * 1024
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], json.load(open(sys.argv[4]))))
