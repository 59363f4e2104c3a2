//! Crash test: a child process writes from many concurrent writers and is killed with SIGKILL at
//! a random moment; after each kill, `coffer verify` passes and every write whose commit the
//! child had acknowledged is in the journal with the sequence number it was acknowledged with.
//! Cycles: `COFFER_CRASH_CYCLES` (default 20).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn coffer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let cycles: u32 = std::env::var("COFFER_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut total = 0usize;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for cycle in 0..cycles {
        let mut child = coffer()
            .args(["crash-writer", "--writers", "32", "--run", &cycle.to_string(), "--data"])
            .arg(&data)
            .env("COFFER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // A line cut by the kill has no newline: it was never a complete acknowledgement.
                    Ok(_) if line.ends_with('\n') => {
                        let _ = tx.send(line.trim_end().to_string());
                    }
                    Ok(_) => break,
                }
            }
        });
        let start = Instant::now();
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l == "READY" => {}
            Ok(l) => panic!("unexpected line before READY: {l}"),
            Err(e) => panic!("cycle {cycle}: the writer did not start: {e}"),
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(30 + seed % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acks: Vec<(String, i64)> = rx
            .try_iter()
            .map(|l| {
                let mut p = l.split(' ');
                assert_eq!(p.next(), Some("ACK"), "{l}");
                (p.next().unwrap().to_string(), p.next().unwrap().parse().unwrap())
            })
            .collect();

        let out = coffer().arg("verify").arg("--data").arg(&data).env("COFFER_LOG", "error").output().unwrap();
        assert!(
            out.status.success(),
            "cycle {cycle}: verify failed after SIGKILL:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let db =
            rusqlite::Connection::open_with_flags(data.join("coffer.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut st = db.prepare("SELECT idem_key, seq FROM entries").unwrap();
        let journal: std::collections::HashMap<String, i64> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        for (key, seq) in &acks {
            assert_eq!(journal.get(key), Some(seq), "cycle {cycle}: acknowledged write {key} (seq {seq}) is missing");
        }
        total += acks.len();
        eprintln!("cycle {cycle}: {} acknowledged writes survived ({:?})", acks.len(), start.elapsed());
    }
    assert!(total > 0, "no write was acknowledged in {cycles} cycles");
}
