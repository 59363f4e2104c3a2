"""Load a running Coffer's /docs in headless Chromium (Debian's, driven by Playwright) and check
that every operation of /openapi.json is on the page, that nothing was requested from anywhere
but the server, and that the page logged no error. Writes a screenshot to OUT_DIR.

usage: docs_page.py BASE_URL OUT_DIR [CHROMIUM]"""
import json
import re
import sys
import urllib.parse
import urllib.request

from playwright.sync_api import sync_playwright

METHODS = ("get", "put", "post", "delete", "patch")


def main(base, out, chromium):
    host = urllib.parse.urlparse(base).hostname
    spec = json.load(urllib.request.urlopen(base + "/openapi.json"))
    ops = sorted((m, p) for p, item in spec["paths"].items() for m in item if m in METHODS)
    errors, outside = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def only_here(route):
            if urllib.parse.urlparse(route.request.url).hostname == host:
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_here)
        page.goto(base + "/docs", wait_until="networkidle")
        # RapiDoc renders into its shadow root, one element per operation, id "<method>-<path>"
        # with each "{" and "}" of the path written "-".
        page.wait_for_function(
            "n => { const d = document.querySelector('rapi-doc');"
            " return d && d.shadowRoot && Array.from(d.shadowRoot.querySelectorAll('[id]'))"
            ".filter(e => /^(get|put|post|delete|patch)-/.test(e.id)).length >= n }",
            arg=len(ops),
            timeout=20000,
        )
        shown = set(
            page.evaluate(
                "() => Array.from(document.querySelector('rapi-doc').shadowRoot.querySelectorAll('[id]'), e => e.id)"
            )
        )
        page.screenshot(path=f"{out}/docs.png")
        browser.close()
    missing = [f"{m.upper()} {p}" for m, p in ops if f"{m}-{re.sub('[{}]', '-', p)}" not in shown]
    report = {"operations": len(ops), "missing": missing, "errors": errors, "outside": outside}
    print(json.dumps(report))
    return 0 if not (missing or errors or outside) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "/usr/bin/chromium"))
