//! The README's command-line tour, its HTTP API walk-through and its FX example, run as one
//! shell script against a running `coffer serve`, exactly as written there (only the port, the
//! binary and the rates file are the test's). Every `coffer` command must succeed and print
//! JSON; every HTTP call must answer 2xx.

mod common;

use std::process::Command;

/// The first ```sh block after the heading `heading`.
fn block(readme: &str, heading: &str) -> String {
    let at = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading:?}"));
    let start = readme[at..].find("```sh\n").expect("a sh block") + at + "```sh\n".len();
    let end = readme[start..].find("```").expect("the block's end") + start;
    readme[start..end].to_string()
}

/// A file in the ECB format with a rate on the README's past instant and today.
fn rates_file() -> String {
    let today = chrono::Utc::now().format("%Y-%m-%d");
    format!("Date,USD,JPY,GBP,\n{today},1.0850,163.10,0.8420,\n2026-11-20,1.0832,162.35,0.8401,\n")
}

#[test]
fn the_readme_tour_works_against_a_running_server() {
    if Command::new("jq").arg("--version").output().is_err() {
        assert!(std::env::var_os("COFFER_REQUIRE_TOUR").is_none(), "jq is required for the tour");
        eprintln!("skipped: the tour needs jq");
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("eurofxref.csv"), rates_file()).unwrap();
    let data = tmp.path().join("coffer-data");
    let server = common::serve(&["--data".as_ref(), data.as_os_str()]);
    let addr = server.root.trim_start_matches("http://");

    let alias = "alias coffer='cargo run -q --release -p coffer -- --data ./coffer-data'";
    let tour = block(&readme, "## A tour of the command line");
    assert!(tour.contains(alias), "the tour's alias changed: update this test");
    let http = block(&readme, "## The HTTP API");
    let curl = "c() { curl -s -H";
    assert!(http.contains(curl), "the walk-through's curl helper changed: update this test");
    let script = [tour, http, block(&readme, "## FX rates and overviews")].join("\n");
    let script = script
        .replace(alias, r#"coffer() { checked "$COFFER_BIN" --data ./coffer-data "$@"; }"#)
        .replace(curl, "c() { curl -sSf -H")
        .replace("127.0.0.1:8080", addr);
    let prelude = r#"set -euo pipefail
checked() {
  local out
  out=$("$@")
  jq -e . >/dev/null <<<"$out" || { echo "not JSON from: $*" >&2; return 1; }
  printf '%s\n' "$out"
}
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .current_dir(tmp.path())
        .env("COFFER_BIN", env!("CARGO_BIN_EXE_coffer"))
        .env("COFFER_LOG", "error")
        .env_remove("COFFER_DATA")
        .env_remove("COFFER_CONFIG")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the tour stopped: {stderr}\n--- output so far:\n{stdout}");
    // The last lines really ran: the verify of the tour and the past overview of the FX example.
    assert!(stdout.contains(r#""ok":true"#), "{stdout}");
    assert!(stdout.contains("2026-11-20T12:00:00"), "{stdout}");
    assert!(data.join("coffer.sock").exists(), "the commands went to the running server");
    drop(server);
}
