//! Operator commands while `coffer serve` holds the data directory: sent to it through the
//! directory's socket, with the output and exit code they have offline.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn coffer_in(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .current_dir(cwd)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("COFFER_LOG", "error")
        .env_remove("COFFER_CONFIG")
        .output()
        .unwrap()
}

fn ok_json(data: &Path, args: &[&str]) -> Value {
    let out = coffer_in(Path::new("/"), data, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Exit code and stderr of a refusal.
fn refusal(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = coffer_in(Path::new("/"), data, args);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The status line of a GET with a bearer key.
fn http_status(root: &str, path: &str, key: &str) -> String {
    use std::io::{Read, Write};
    let addr = root.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn operator_commands_run_in_the_server_as_they_would_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let server = common::serve(&["--data".as_ref(), d.as_os_str()]);
    let sock = d.join("coffer.sock");
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);

    // Writes made through the socket, visible at once to the HTTP API (a key made now works).
    let p = ok_json(&d, &["platform", "create", "--name", "Acme"]);
    let p = p["id"].as_str().unwrap().to_string();
    let key = ok_json(&d, &["key", "create", "--owner", &p, "--scope", "READ_ONLY"]);
    assert!(http_status(&server.root, "/coffer/v1/me", key["key"].as_str().unwrap()).contains("200"));
    let revoked = ok_json(&d, &["key", "revoke", key["id"].as_str().unwrap()]);
    assert_eq!(revoked["status"], "REVOKED");
    assert!(http_status(&server.root, "/coffer/v1/me", key["key"].as_str().unwrap()).contains("401"));

    // A relative file is the caller's: written in its directory, not the server's.
    let out = coffer_in(tmp.path(), &d, &["demo", "--credentials", "creds.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let creds = tmp.path().join("creds.json");
    assert_eq!(std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777, 0o600);

    // CSV text comes back as it is.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let w = ok_json(&d, &["wallet", "open", "--owner", &p, "--type", "OPERATING", "--currency", "USD"]);
    let w = w["id"].as_str().unwrap().to_string();
    ok_json(&d, &["tx", "deposit", "--wallet", &w, "--amount", "12.34", "--key", "d-1"]);
    let csv = coffer_in(Path::new("/"), &d, &["statement", "--wallet", &w, "--from", &today, "--to", &today, "--csv"]);
    assert!(csv.status.success());
    let served_csv = String::from_utf8(csv.stdout).unwrap();
    assert!(served_csv.contains("12.34"), "{served_csv}");

    let bad = ["wallet", "open", "--owner", &p, "--type", "CHECKING", "--currency", "USD"];
    let served_refusal = refusal(&d, &bad);
    assert_eq!(served_refusal.0, Some(1));
    assert!(served_refusal.1.contains("expected one of OPERATING"), "{}", served_refusal.1);
    let served_show = ok_json(&d, &["owner", "show", &p]);
    let served_wallet = ok_json(&d, &["balance", "--wallet", &w]);
    // A command the server does not run for others is refused as before.
    let (code, err) = refusal(&d, &["migrate"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("in use by another Coffer process"), "{err}");

    // Killed: the socket stays behind, and commands run offline, with the same results.
    drop(server);
    assert!(sock.exists());
    assert_eq!(refusal(&d, &bad), served_refusal);
    assert_eq!(ok_json(&d, &["owner", "show", &p]), served_show);
    assert_eq!(ok_json(&d, &["balance", "--wallet", &w]), served_wallet);
    let csv = coffer_in(Path::new("/"), &d, &["statement", "--wallet", &w, "--from", &today, "--to", &today, "--csv"]);
    assert_eq!(String::from_utf8(csv.stdout).unwrap(), served_csv);

    // The next server replaces the stale socket, and removes it when it stops.
    let again = common::serve(&["--data".as_ref(), d.as_os_str()]);
    assert_eq!(ok_json(&d, &["owner", "show", &p]), served_show);
    let pid = again.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    again.wait_success();
    assert!(!sock.exists(), "a clean stop removes the socket");
}

/// `coffer --server URL --api-key KEY ...` from a directory with no ledger.
fn remote(root: &str, key: &str, args: &[&str]) -> Output {
    let nowhere = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .current_dir(nowhere.path())
        .args(["--server", root, "--api-key", key])
        .args(args)
        .env("COFFER_LOG", "error")
        .env_remove("COFFER_CONFIG")
        .env_remove("COFFER_DATA")
        .output()
        .unwrap()
}

fn remote_ok(root: &str, key: &str, args: &[&str]) -> Value {
    let out = remote(root, key, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn remote_refused(root: &str, key: &str, args: &[&str], needle: &str) {
    let out = remote(root, key, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn commands_reach_a_remote_node_through_the_api_with_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let server = common::serve(&["--data".as_ref(), d.as_os_str()]);
    let root = server.root.as_str();
    let p = ok_json(&d, &["platform", "create", "--name", "Acme"]);
    let p = p["id"].as_str().unwrap().to_string();
    let pk = ok_json(&d, &["key", "create", "--owner", &p]);
    let pk = pk["key"].as_str().unwrap().to_string();

    let m = remote_ok(root, &pk, &["merchant", "create", "--parent", &p, "--name", "Shop"]);
    let m = m["id"].as_str().unwrap().to_string();
    let sib = remote_ok(root, &pk, &["merchant", "create", "--parent", &p, "--name", "Other"]);
    let w = remote_ok(root, &pk, &["wallet", "open", "--owner", &m, "--type", "OPERATING", "--currency", "USD"]);
    let w = w["id"].as_str().unwrap().to_string();
    let dep = ["tx", "deposit", "--wallet", &w, "--amount", "100.00", "--key", "r-1", "--meta", "order=7"];
    let first = remote_ok(root, &pk, &dep);
    assert_eq!(remote_ok(root, &pk, &dep)["transaction"]["seq"], first["transaction"]["seq"], "replayed");
    assert_eq!(first["transaction"]["metadata"]["order"], "7");
    let h = remote_ok(root, &pk, &["hold", "create", "--wallet", &w, "--amount", "30", "--expires-in", "600"]);
    let h = h["hold"]["id"].as_str().unwrap().to_string();
    let r = remote_ok(root, &pk, &["wallet", "open", "--owner", &m, "--type", "RESERVE", "--currency", "USD"]);
    remote_ok(root, &pk, &["hold", "capture", &h, "--amount", "20", "--to", r["id"].as_str().unwrap()]);
    let bal = remote_ok(root, &pk, &["balance", "--wallet", &w]);
    assert_eq!((bal["posted"].as_str(), bal["held"].as_str()), (Some("80.00"), Some("0.00")), "{bal}");
    // The same figures as the operator sees through the socket.
    assert_eq!(ok_json(&d, &["balance", "--wallet", &w])["posted"], "80.00");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let csv = remote(root, &pk, &["statement", "--wallet", &w, "--from", &today, "--to", &today, "--csv"]);
    assert!(String::from_utf8(csv.stdout).unwrap().contains("100.00"));
    let events = remote_ok(root, &pk, &["events", "--platform", &p, "--limit", "100"]);
    assert!(!events["data"].as_array().unwrap().is_empty(), "{events}");
    remote_ok(
        root,
        &pk,
        &["fx", "set-rate", "--platform", &p, "--base", "USD", "--quote", "GBP", "--rate", "0.79", "--source", "desk"],
    );
    assert_eq!(
        remote_ok(root, &pk, &["fx", "rate", "--platform", &p, "--base", "USD", "--quote", "GBP"])["rate"],
        "0.79"
    );

    // Refusals carry the API's reason and exit 1; operator-only commands are refused.
    remote_refused(root, &pk, &["wallet", "open", "--owner", &m, "--type", "CHECKING", "--currency", "USD"], "type");
    remote_refused(root, &pk, &["platform", "list"], "operator");
    remote_refused(root, "ck_nope.0000", &["owner", "show", &m], "API key");
    // A merchant's key reaches its own subtree only.
    let mk = remote_ok(root, &pk, &["key", "create", "--owner", &m, "--scope", "READ_ONLY"]);
    let mk = mk["key"].as_str().unwrap();
    assert_eq!(remote_ok(root, mk, &["owner", "show", &m])["id"], m.as_str());
    remote_refused(root, mk, &["owner", "show", sib["id"].as_str().unwrap()], "not found");
    remote_refused(root, mk, &["tx", "payout", "--wallet", &w, "--amount", "1"], "");
}
