//! Crash tests: writer processes write from many concurrent writers and are killed with SIGKILL
//! at a random moment; after each kill, `coffer verify` passes and every write whose commit a
//! writer had acknowledged is in the journal with the sequence number it was acknowledged with.
//! On SQLite one process writes to a data directory (checkpointing its derived state every 1,500
//! entries, so a kill finds a journal tail to replay, or a checkpoint in flight); on PostgreSQL
//! three processes (nodes) write to one database and are killed together, and then one of two
//! nodes is killed while the other keeps writing and projecting. Cycles:
//! `COFFER_CRASH_CYCLES` (default 20; CI runs 50).

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_store::testdb::TestDatabase;
use common::writer::{start, Writer};

fn coffer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
}

fn cycles() -> u32 {
    std::env::var("COFFER_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

/// Each cycle: start `nodes` writers, kill them at a random moment, verify, and check that
/// every acknowledged write is in the `journal` (idempotency key -> seq).
fn crash_cycles(ledger: &[OsString], nodes: u32, journal: impl Fn() -> HashMap<String, i64>) {
    let mut total = 0usize;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for cycle in 0..cycles() {
        let start_at = Instant::now();
        let writers: Vec<Writer> = (0..nodes).map(|n| start(ledger, 32 / nodes, &format!("{cycle}n{n}"))).collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 400));
        let acks: Vec<(String, i64)> = writers.into_iter().flat_map(Writer::kill).collect();
        let out = coffer().args(ledger).arg("verify").env("COFFER_LOG", "error").output().unwrap();
        assert!(
            out.status.success(),
            "cycle {cycle}: verify failed after SIGKILL:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let journal = journal();
        for (key, seq) in &acks {
            assert_eq!(journal.get(key), Some(seq), "cycle {cycle}: acknowledged write {key} (seq {seq}) is missing");
        }
        total += acks.len();
        eprintln!("cycle {cycle}: {} acknowledged writes survived ({:?})", acks.len(), start_at.elapsed());
    }
    assert!(total > 0, "no write was acknowledged in {} cycles", cycles());
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = [OsString::from("--data"), data.clone().into_os_string()];
    crash_cycles(&ledger, 1, || {
        let db =
            rusqlite::Connection::open_with_flags(data.join("coffer.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut st = db.prepare("SELECT idem_key, seq FROM entries").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    });
}

#[test]
fn acknowledged_writes_survive_sigkill_of_postgres_nodes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(TestDatabase::create("crash")) else { return };
    let url = db.url();
    let ledger = [OsString::from("--database"), OsString::from(&url)];
    // One writer alone first: it sets the platform up, which racing nodes would each do.
    let _ = start(&ledger, 1, "setup").kill();
    let query = |q: &str| {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(conn);
            let rows = client.query(q, &[]).await.unwrap();
            drop(client);
            let _ = task.await;
            rows
        })
    };
    crash_cycles(&ledger, 3, || {
        query("SELECT idem_key, seq FROM entries").iter().map(|r| (r.get(0), r.get(1))).collect()
    });
    // Takeover: of two nodes writing, one is killed (holding the projector or not); the other
    // projects every entry up to the kill and beyond, and the ledger verifies.
    let one = |q: &str| -> i64 { query(q)[0].get(0) };
    for round in 0..3 {
        let a = start(&ledger, 16, &format!("takeover{round}a"));
        let b = start(&ledger, 16, &format!("takeover{round}b"));
        std::thread::sleep(Duration::from_millis(300));
        a.kill();
        let target = one("SELECT COALESCE(MAX(seq), 0) FROM entries");
        let since = Instant::now();
        while one("SELECT projected_seq FROM coffer_projection") < target {
            assert!(since.elapsed() < Duration::from_secs(20), "round {round}: the projection stopped at the kill");
            std::thread::sleep(Duration::from_millis(20));
        }
        b.kill();
        let out = coffer().args(ledger.clone()).arg("verify").env("COFFER_LOG", "error").output().unwrap();
        assert!(out.status.success(), "round {round}: verify failed:\n{}", String::from_utf8_lossy(&out.stdout));
    }
}
