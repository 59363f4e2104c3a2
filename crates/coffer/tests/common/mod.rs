//! A `coffer serve` child process for end-to-end tests, killed when dropped; a writer process
//! (`writer`); the demo ledger and its credentials. Each test file uses some of them.
#![allow(dead_code)]

pub mod writer;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    /// `http://ADDR` of the running server.
    pub root: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the server to exit (after a signal) and check it exited with success.
    pub fn wait_success(mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve did not stop cleanly: {status}");
    }
}

/// Start `coffer serve --listen 127.0.0.1:0` with `args` (where the ledger is) and wait until
/// it announces its address.
pub fn serve(args: &[&std::ffi::OsStr]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("COFFER_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve exited early");
    }
    let addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in err.lines() {});
    Server { child, root: format!("http://{addr}") }
}

/// `coffer demo --credentials` on a new data directory inside `dir`: the directory and the
/// credentials file's content (`{"merchants": [...]}`).
#[allow(dead_code)]
pub fn demo(dir: &std::path::Path) -> (std::path::PathBuf, serde_json::Value) {
    let data = dir.join("data");
    let file = dir.join("creds.json");
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["demo", "--data", data.to_str().unwrap(), "--credentials", file.to_str().unwrap()])
        .env("COFFER_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (data, serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap())
}

/// The demo credential of one dialect's merchant.
#[allow(dead_code)]
pub fn credentials(creds: &serde_json::Value, dialect: &str) -> serde_json::Value {
    creds["merchants"].as_array().unwrap().iter().find(|c| c["dialect"] == dialect).unwrap().clone()
}
