//! Hidden test helper (`coffer crash-writer`): opens the store (the data directory, or with
//! `--database` PostgreSQL, where several may run at once as nodes), sets up a platform with a
//! few wallets (idempotently; start one alone first on a new database), then writes deposits and
//! transfers from many concurrent writers until it is killed. After each acknowledged write it prints `ACK <key> <seq>` and flushes, so a
//! test that kills it with SIGKILL knows what must have survived.

use std::io::Write;
use std::sync::Arc;

use anyhow::anyhow;
use clap::Args as ClapArgs;
use coffer_core::*;
use coffer_store::{Store, StoreError};

use crate::config::Config;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Concurrent writers.
    #[arg(long, default_value_t = 32)]
    writers: u32,
    /// Distinguishes the keys of one run from another's.
    #[arg(long, default_value = "0")]
    run: String,
}

async fn setup(store: &dyn Store) -> anyhow::Result<(OwnerId, Vec<AccountId>)> {
    let p = match store.platforms().await?.into_iter().find(|p| p.name == "crash") {
        Some(p) => p,
        None => match store
            .execute(Command::CreatePlatform {
                name: "crash".into(),
                default_currency: "USD".parse()?,
                currency_exponents: Default::default(),
            })
            .await?
            .outcome
        {
            Outcome::Owner(o) => o,
            o => return Err(anyhow!("{o:?}")),
        },
    };
    let m = match store.children(p.id).await?.into_iter().next() {
        Some(m) => m,
        None => match store
            .execute(Command::CreateMerchant { parent: p.id, name: "m".into(), default_currency: None })
            .await?
            .outcome
        {
            Outcome::Owner(o) => o,
            o => return Err(anyhow!("{o:?}")),
        },
    };
    let mut wallets = Vec::new();
    for t in WalletType::ALL {
        let c = Command::OpenWallet {
            owner: m.id,
            wallet_type: *t,
            currency: "USD".parse()?,
            overdraft_limit: 0,
            min_balance: 0,
        };
        wallets.push(crate::demo::open_wallet(store, c).await?);
    }
    Ok((p.id, wallets))
}

pub async fn run(args: Args, cfg: &Config) -> anyhow::Result<()> {
    let store = cfg.open().await?;
    let (p, wallets) = setup(&*store).await?;
    println!("READY");
    std::io::stdout().flush()?;
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let (store, wallets, out) = (store.clone(), wallets.clone(), out.clone());
        let run = args.run.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0u64.. {
                let a = wallets[(n as usize + w as usize) % wallets.len()];
                let b = wallets[(n as usize * 7 + w as usize + 1) % wallets.len()];
                let key = format!("r{run}-w{w}-{n}");
                let op = if n % 3 == 0 || a == b {
                    MoneyOp::Deposit {
                        account: a,
                        amount: Money::new(100 + n as i64 % 900, "USD".parse().unwrap()),
                        source: SystemAccount::External,
                    }
                } else {
                    MoneyOp::Transfer { from: a, to: b, amount: Money::new(1 + n as i64 % 50, "USD".parse().unwrap()) }
                };
                let cmd = Command::Move(Movement {
                    platform: p,
                    idempotency_key: key.clone(),
                    metadata: Default::default(),
                    op,
                });
                match store.execute(cmd).await {
                    Ok(r) => {
                        let seq = r.entry().map(|e| e.seq).unwrap_or(0);
                        let mut o = out.lock().unwrap();
                        let _ = writeln!(o, "ACK {key} {seq}");
                        let _ = o.flush();
                    }
                    Err(StoreError::Rejected(_)) => {}
                    Err(e) => {
                        eprintln!("writer {w}: {e}");
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
