//! A running `coffer crash-writer` (a process writing from many writers, printing each
//! acknowledged write), for tests that kill it or copy its ledger while it writes.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `coffer crash-writer` and the acknowledgements it printed.
pub struct Writer {
    child: Child,
    pub acks: mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
}

pub fn start(ledger: &[OsString], writers: u32, run: &str) -> Writer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(ledger)
        .args(["crash-writer", "--writers", &writers.to_string(), "--run", run])
        .env("COFFER_LOG", "error")
        // Checkpoints within each run, so kills land before, during and after them.
        .env("COFFER_CHECKPOINT_ENTRIES", "1500")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, acks) = mpsc::channel::<String>();
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
    match acks.recv_timeout(Duration::from_secs(30)) {
        Ok(l) if l == "READY" => {}
        Ok(l) => panic!("unexpected line before READY: {l}"),
        Err(e) => panic!("run {run}: the writer did not start: {e}"),
    }
    Writer { child, acks, reader }
}

impl Writer {
    /// SIGKILL, then the writes it acknowledged: (idempotency key, seq).
    pub fn kill(mut self) -> Vec<(String, i64)> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.join().unwrap();
        self.acks
            .try_iter()
            .map(|l| {
                let mut p = l.split(' ');
                assert_eq!(p.next(), Some("ACK"), "{l}");
                (p.next().unwrap().to_string(), p.next().unwrap().parse().unwrap())
            })
            .collect()
    }
}
