//! Pages in a real browser: `/docs` in headless Chromium (Debian's `chromium`, driven by
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
