//! `coffer backup` while another process writes to the ledger, and `coffer restore`: the
//! restored ledger verifies and holds every write acknowledged before the backup began; a
//! backup never overwrites a file, a restore never overwrites a ledger, and a file that is not
//! a good ledger is refused with nothing restored.

mod common;

use std::ffi::OsString;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

fn coffer(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("COFFER_LOG", "error")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_backup_under_write_load_restores_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (data, file, restored) = (dir.path().join("data"), dir.path().join("copy.db"), dir.path().join("restored"));
    let ledger: Vec<OsString> = vec!["--data".into(), data.clone().into()];
    let writer = common::writer::start(&ledger, 8, "b");
    std::thread::sleep(Duration::from_millis(400));
    // Every write acknowledged before the backup begins.
    let before: Vec<String> = writer.acks.try_iter().collect();
    let taken = json(&coffer(&data, &["backup", "--to", file.to_str().unwrap()]));
    std::thread::sleep(Duration::from_millis(200));
    let after = writer.kill();
    assert!(before.len() > 50 && !after.is_empty(), "writes went on before, during and after the backup");
    assert_eq!(taken["verified"], true, "{taken}");
    let made = json(&coffer(&restored, &["restore", "--from", file.to_str().unwrap()]));
    assert_eq!(made["last_seq"], taken["last_seq"], "{made}");
    assert!(coffer(&restored, &["verify"]).status.success());
    let db = rusqlite::Connection::open(restored.join("coffer.db")).unwrap();
    for ack in before.iter().filter(|l| l.starts_with("ACK ")) {
        let mut p = ack.split(' ').skip(1);
        let (key, seq): (&str, i64) = (p.next().unwrap(), p.next().unwrap().parse().unwrap());
        let found: Option<i64> = db.query_row("SELECT seq FROM entries WHERE idem_key = ?1", [key], |r| r.get(0)).ok();
        assert_eq!(found, Some(seq), "acknowledged write {key} is in the restored ledger");
    }
    // Never over a file or a ledger; a bad file restores nothing.
    let again = coffer(&data, &["backup", "--to", file.to_str().unwrap()]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    let over = coffer(&restored, &["restore", "--from", file.to_str().unwrap()]);
    assert!(!over.status.success() && String::from_utf8_lossy(&over.stderr).contains("already holds a ledger"));
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a ledger at all").unwrap();
    let bad = coffer(&dir.path().join("nothing"), &["restore", "--from", junk.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(!dir.path().join("nothing").join("coffer.db").exists(), "nothing restored");
}
