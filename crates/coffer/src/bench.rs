//! `coffer bench`: durable transfers/s through the store at several writer counts (uniform over
//! N wallets, balance checks on), and in-process balance reads/s. Runs on a fresh data directory
//! under the system temp dir (removed afterwards) unless `--keep` is given; with `--database`, on
//! PostgreSQL in a fresh schema of that database (dropped afterwards unless `--keep`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::Args as ClapArgs;
use coffer_core::*;
use coffer_store::sqlite::SqliteStore;
use coffer_store::testdb::TestDatabase;
use coffer_store::{Store, StoreError};

use crate::config::Config;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Writer counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,128")]
    writers: Vec<u32>,
    /// Seconds per writer count.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Wallets the transfers are spread over.
    #[arg(long, default_value_t = 10_000)]
    wallets: u32,
    /// Seconds of balance reads.
    #[arg(long, default_value_t = 3)]
    read_seconds: u64,
    /// Keep the benchmark's data directory.
    #[arg(long)]
    keep: bool,
    /// Print one JSON object with every figure at the end instead of text lines.
    #[arg(long)]
    json: bool,
}

/// What the benchmark reports: text lines as it goes, or every figure in one JSON object.
struct Out {
    json: bool,
    figures: serde_json::Map<String, serde_json::Value>,
}

impl Out {
    fn say(&self, text: String) {
        if !self.json {
            println!("{text}");
        }
    }
    fn set(&mut self, key: &str, v: serde_json::Value) {
        self.figures.insert(key.into(), v);
    }
}

/// xorshift64*: load generation only, not security.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

async fn setup(store: &Arc<dyn Store>, n: u32) -> anyhow::Result<(OwnerId, Arc<Vec<AccountId>>)> {
    let usd: CurrencyCode = "USD".parse()?;
    let p = match store
        .execute(Command::CreatePlatform {
            name: "bench".into(),
            default_currency: usd,
            currency_exponents: Default::default(),
        })
        .await?
        .outcome
    {
        Outcome::Owner(o) => o.id,
        o => return Err(anyhow!("{o:?}")),
    };
    let types = WalletType::ALL;
    let owners = n.div_ceil(types.len() as u32);
    let mut tasks = Vec::new();
    for i in 0..owners {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let m = match store
                .execute(Command::CreateMerchant { parent: p, name: format!("m{i}"), default_currency: None })
                .await?
                .outcome
            {
                Outcome::Owner(o) => o.id,
                o => return Err(anyhow!("{o:?}")),
            };
            let mut ids = Vec::new();
            for t in types {
                let a = match store
                    .execute(Command::OpenWallet {
                        owner: m,
                        wallet_type: *t,
                        currency: usd,
                        overdraft_limit: 0,
                        min_balance: 0,
                    })
                    .await?
                    .outcome
                {
                    Outcome::Account(a) => a.id,
                    o => return Err(anyhow!("{o:?}")),
                };
                let dep = MoneyOp::Deposit {
                    account: a,
                    amount: Money::new(100_000_000, usd),
                    source: SystemAccount::Opening,
                };
                store
                    .execute(Command::Move(Movement {
                        platform: p,
                        idempotency_key: format!("seed-{a}"),
                        metadata: Default::default(),
                        op: dep,
                    }))
                    .await?;
                ids.push(a);
            }
            Ok::<_, anyhow::Error>(ids)
        }));
    }
    let mut wallets = Vec::new();
    for t in tasks {
        wallets.extend(t.await??);
    }
    wallets.truncate(n as usize);
    Ok((p, Arc::new(wallets)))
}

async fn transfers(
    store: &Arc<dyn Store>,
    p: OwnerId,
    wallets: &Arc<Vec<AccountId>>,
    writers: u32,
    secs: u64,
    run: usize,
) -> anyhow::Result<(u64, u64, f64)> {
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let usd: CurrencyCode = "USD".parse()?;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, wallets, accepted, refused) = (store.clone(), wallets.clone(), accepted.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) << 20) ^ run as u64);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let from = wallets[(rng.next() % wallets.len() as u64) as usize];
                let mut to = wallets[(rng.next() % wallets.len() as u64) as usize];
                if to == from {
                    to = wallets[(rng.next() % wallets.len() as u64) as usize];
                }
                let amount = Money::new(1 + (rng.next() % 10_000) as i64, usd);
                let op = if to == from {
                    MoneyOp::Fee { account: from, amount }
                } else {
                    MoneyOp::Transfer { from, to, amount }
                };
                let cmd = Command::Move(Movement {
                    platform: p,
                    idempotency_key: format!("b{run}-{w}-{n}"),
                    metadata: Default::default(),
                    op,
                });
                n += 1;
                match store.execute(cmd).await {
                    Ok(_) => accepted.fetch_add(1, Ordering::Relaxed),
                    Err(StoreError::Rejected(_)) => refused.fetch_add(1, Ordering::Relaxed),
                    Err(e) => return Err(anyhow::Error::from(e)),
                };
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((accepted.load(Ordering::Relaxed), refused.load(Ordering::Relaxed), start.elapsed().as_secs_f64()))
}

async fn reads(store: &Arc<dyn Store>, wallets: &Arc<Vec<AccountId>>, secs: u64) -> anyhow::Result<(u64, f64)> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for t in 0..threads {
        let (store, wallets) = (store.clone(), wallets.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xDEAD_BEEF ^ ((t as u64 + 1) << 32));
            let mut n = 0u64;
            let mut sum = 0i64;
            loop {
                for _ in 0..1024 {
                    let id = wallets[(rng.next() % wallets.len() as u64) as usize];
                    let a = store.account(id).await?.ok_or_else(|| anyhow!("wallet {id} missing"))?;
                    sum = sum.wrapping_add(a.available());
                    n += 1;
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            std::hint::black_box(sum);
            Ok::<_, anyhow::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

/// The process's resident memory, in bytes (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

pub async fn run(args: Args, cfg: &Config) -> anyhow::Result<()> {
    if args.wallets < 2 {
        bail!("--wallets must be at least 2");
    }
    let base_rss = resident_bytes();
    let mut out = Out { json: args.json, figures: Default::default() };
    let dir = std::env::temp_dir().join(format!("coffer-bench-{}", std::process::id()));
    // On PostgreSQL: a schema of its own in the given database, dropped afterwards.
    let mut scratch = None;
    let store: Arc<dyn Store> = match &cfg.database {
        Some(url) => {
            let db = TestDatabase::create_in(url, "coffer_bench", "run").await?;
            let store = coffer_store::postgres::PgStore::open(&db.url(), cfg.pg_options()).await?;
            out.say(format!(
                "coffer bench: PostgreSQL store in schema {} of {}, {} wallets",
                db.schema(),
                cfg.location(),
                args.wallets
            ));
            out.set("store", "postgres".into());
            scratch = Some(db);
            Arc::new(store)
        }
        None => {
            let store = SqliteStore::open(&dir, cfg.store_options())?;
            out.say(format!(
                "coffer bench: SQLite store in {} (journal-first, each batch fsynced before it is answered), {} wallets",
                dir.display(),
                args.wallets
            ));
            out.set("store", "sqlite".into());
            Arc::new(store)
        }
    };
    let t = Instant::now();
    let (p, wallets) = setup(&store, args.wallets).await?;
    out.set("wallets", wallets.len().into());
    out.say(format!("setup: {} wallets opened and funded in {:.1}s", wallets.len(), t.elapsed().as_secs_f64()));
    out.say(format!(
        "{:>8} {:>14} {:>10} {:>10} {:>16}",
        "writers", "transfers/s", "accepted", "refused", "commands/commit"
    ));
    let mut runs = Vec::new();
    for (i, w) in args.writers.iter().enumerate() {
        let before = store.stats();
        let (ok, refused, secs) = transfers(&store, p, &wallets, *w, args.seconds, i).await?;
        let after = store.stats();
        let per_commit = (after.commands - before.commands) as f64 / (after.commits - before.commits).max(1) as f64;
        out.say(format!("{:>8} {:>14.0} {:>10} {:>10} {:>16.1}", w, ok as f64 / secs, ok, refused, per_commit));
        runs.push(serde_json::json!({
            "writers": w, "transfers_per_sec": (ok as f64 / secs).round(), "accepted": ok, "refused": refused,
            "commands_per_commit": (per_commit * 10.0).round() / 10.0,
        }));
    }
    out.set("transfers", runs.into());
    let (n, secs) = reads(&store, &wallets, args.read_seconds).await?;
    out.say(format!("balance reads: {:.0}/s in-process ({} reads in {:.1}s)", n as f64 / secs, n, secs));
    out.set("balance_reads_per_sec", (n as f64 / secs).round().into());
    if let (Some(base), Some(now)) = (base_rss, resident_bytes()) {
        let per = now.saturating_sub(base) as f64 / wallets.len() as f64;
        out.say(format!(
            "resident memory: {} MiB over a base of {} MiB: {per:.0} bytes per wallet",
            (now - base.min(now)) >> 20,
            base >> 20
        ));
        out.set("bytes_per_wallet", per.round().into());
    }
    let report = store.verify().await?;
    out.say(format!("verify: {} entries, {} problems", report.entries, report.problems.len()));
    out.set("verify", serde_json::json!({"entries": report.entries, "problems": report.problems.len()}));
    store.shutdown().await;
    drop(store);
    if cfg.database.is_none() {
        let t = Instant::now();
        let again = SqliteStore::open(&dir, cfg.store_options())?;
        out.say(format!("reopen after a clean shutdown: {:.2}s", t.elapsed().as_secs_f64()));
        out.set("reopen_secs", ((t.elapsed().as_secs_f64() * 100.0).round() / 100.0).into());
        again.shutdown().await;
    }
    match scratch {
        Some(db) if args.keep => {
            out.say(format!("kept schema {}", db.schema()));
            std::mem::forget(db);
        }
        Some(db) => drop(db),
        None if args.keep => out.say(format!("kept {}", dir.display())),
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if out.json {
        println!("{}", serde_json::Value::Object(out.figures));
    }
    if !report.is_ok() {
        bail!("verify found differences after the benchmark: {:?}", report.problems);
    }
    Ok(())
}
