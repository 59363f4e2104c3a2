//! The embedded store on a small filesystem that fills up while `coffer serve` runs: writes are
//! answered 503 `unavailable` with Retry-After (reads go on), `/readyz` is not ready, and once
//! space is freed the store commits again by itself, without a restart. Afterwards every
//! acknowledged write is in the journal, none that was refused is, and `coffer verify` passes.
//!
//! The filesystem is a tmpfs of a few MiB this test mounts, which needs root; elsewhere it is
//! skipped with a message, unless `COFFER_REQUIRE_FAULT_TESTS=1` (set by CI) makes that a failure.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

struct Mount(tempfile::TempDir);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn small_filesystem() -> Option<Mount> {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(Mount(dir));
    }
    if std::env::var("COFFER_REQUIRE_FAULT_TESTS").is_ok_and(|v| v == "1") {
        panic!("cannot mount a small tmpfs (root is needed) and COFFER_REQUIRE_FAULT_TESTS=1");
    }
    eprintln!("SKIPPED: full-disk test: cannot mount a small tmpfs here (root is needed)");
    None
}

fn cli(data: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("COFFER_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "coffer {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Fill the filesystem holding `path` with one file, to the last byte.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_503_and_recovers_without_a_restart() {
    let Some(fs) = small_filesystem() else { return };
    let data = fs.0.path().join("data");
    let p = cli(&data, &["platform", "create", "--name", "P", "--currency", "USD"])["id"].as_str().unwrap().to_string();
    let key = cli(&data, &["key", "create", "--owner", &p])["key"].as_str().unwrap().to_string();
    let wallet = cli(&data, &["wallet", "open", "--owner", &p, "--type", "OPERATING", "--currency", "USD"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let server = common::serve(&["--data".as_ref(), data.as_os_str()]);
    let http = reqwest::Client::new();
    let deposit = |k: String| {
        let (http, root, key, wallet) = (http.clone(), server.root.clone(), key.clone(), wallet.clone());
        async move {
            let t = Instant::now();
            let r = http
                .post(format!("{root}/coffer/v1/deposits"))
                .bearer_auth(&key)
                .header("idempotency-key", &k)
                .json(&json!({"wallet": wallet, "amount": "1.00"}))
                .send()
                .await
                .unwrap();
            let retry = r.headers().contains_key("retry-after");
            let st = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (st, v, retry, t.elapsed())
        }
    };
    let ready = || {
        let (http, root) = (http.clone(), server.root.clone());
        async move { http.get(format!("{root}/readyz")).send().await.unwrap().status().as_u16() }
    };
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let (st, v, _, _) = deposit(format!("before-{i}")).await;
        assert_eq!(st, 201, "{v}");
        acked.push(format!("before-{i}"));
    }

    fill(&fs.0.path().join("filler"));
    // The log's spare pages run out after a while: then every write is refused, quickly.
    let mut i = 0;
    while refused.len() < 30 {
        let k = format!("full-{i}");
        i += 1;
        assert!(i < 20_000, "the store kept accepting writes on a full disk");
        let (st, v, retry, took) = deposit(k.clone()).await;
        match st {
            201 => acked.push(k),
            503 => {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
                assert!(retry, "503 without Retry-After");
                assert!(took < Duration::from_secs(2), "a refused write took {took:?}");
                refused.push(k);
            }
            s => panic!("a write on a full disk answered {s}: {v}"),
        }
    }
    assert_eq!(ready().await, 503, "/readyz while the disk is full");
    let r = http.get(format!("{}/coffer/v1/wallets/{wallet}", server.root)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "reads go on");

    std::fs::remove_file(fs.0.path().join("filler")).unwrap();
    let t = Instant::now();
    while ready().await != 200 {
        assert!(t.elapsed() < Duration::from_secs(10), "not ready again after space was freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("ready again {:?} after space was freed", t.elapsed());
    for i in 0..20 {
        let (st, v, _, _) = deposit(format!("after-{i}")).await;
        assert_eq!(st, 201, "{v}");
        acked.push(format!("after-{i}"));
    }
    drop(server);

    let out = Command::new(env!("CARGO_BIN_EXE_coffer")).arg("--data").arg(&data).arg("verify").output().unwrap();
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stdout));
    let db = rusqlite::Connection::open_with_flags(data.join("coffer.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut st = db.prepare("SELECT idem_key FROM entries").unwrap();
    let journal: std::collections::HashSet<String> =
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    for k in &acked {
        assert!(journal.contains(k), "acknowledged {k} is missing");
    }
    for k in &refused {
        assert!(!journal.contains(k), "refused {k} is in the journal");
    }
    eprintln!("{} acknowledged, {} refused while full", acked.len(), refused.len());
}
