//! Pages in a real browser: `/docs` and `/dashboard` in headless Chromium (Debian's `chromium`, driven by
//! Playwright for Python): every operation of the OpenAPI document is listed, nothing is loaded
//! from anywhere but the server, and the page logs no error (`tests/browser/docs_page.py`).
//!
//! Needs `/usr/bin/chromium` and the `playwright` Python package (`.ci/run` installs both). With
//! `COFFER_REQUIRE_BROWSER=1` (set by CI) their absence fails the test; otherwise the test says
//! it did not run and passes, so that `cargo test` works on a machine without them.

mod common;

use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_present() -> bool {
    let playwright = Command::new("python3").args(["-c", "import playwright"]).status().is_ok_and(|s| s.success());
    let ok = playwright && std::path::Path::new(CHROMIUM).exists();
    if !ok {
        assert!(
            std::env::var_os("COFFER_REQUIRE_BROWSER").is_none(),
            "COFFER_REQUIRE_BROWSER is set but chromium or playwright is missing"
        );
        eprintln!("NOT RUN: {CHROMIUM} or the Python package playwright is missing");
    }
    ok
}

#[test]
fn the_reference_page_lists_every_operation_without_errors() {
    if !browser_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = common::serve(&["--data".as_ref(), dir.path().join("data").as_os_str()]);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/docs_page.py");
    let run = Command::new("python3").args([script, &server.root, out.to_str().unwrap(), CHROMIUM]).output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{report}\n{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(v["operations"].as_u64().unwrap() >= 50, "{v}");
}

/// `/dashboard` against the demo ledger, signed in with a merchant's key, at 1280 px and at a
/// phone's width (`tests/browser/dashboard.py`): figures equal the API's, the chart's points are
/// the entries, a deposit shows live, a sibling's ids show "not found", no request leaves the
/// server, no console error, and all its assets weigh at most 300 KB compressed. Screenshots of
/// each view are written to `target/tmp/browser/`.
#[test]
fn the_dashboard_shows_what_the_api_says_to_a_merchant() {
    if !browser_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, creds) = common::demo(dir.path());
    let admin = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(args)
            .arg("--data")
            .arg(&data)
            .env("COFFER_LOG", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let platforms = admin(&["platform", "list"]);
    let demo = platforms.as_array().unwrap().iter().find(|p| p["name"] == "Coffer Demo").unwrap();
    let platform = demo["id"].as_str().unwrap().to_string();
    let platform_key = admin(&["key", "create", "--owner", &platform])["key"].as_str().unwrap().to_string();
    let (merchant, sibling) = (common::credentials(&creds, "onerway"), common::credentials(&creds, "uqpay"));
    let inputs = dir.path().join("inputs.json");
    let given = serde_json::json!({
        "merchant_key": merchant["key"], "merchant": merchant["merchant"],
        "sibling": sibling["merchant"], "platform_key": platform_key,
    });
    std::fs::write(&inputs, given.to_string()).unwrap();
    let server = common::serve(&["--data".as_ref(), data.as_os_str()]);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.py");
    let args = [script, &server.root, out.to_str().unwrap(), CHROMIUM, inputs.to_str().unwrap()];
    let run = Command::new("python3").args(args).output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{report}\n{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(v["figures_checked"].as_u64().unwrap() >= 20 && v["chart_points"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["screenshots"].as_array().unwrap().len(), 18, "{v}");
}
