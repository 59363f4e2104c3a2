//! The shared journal tail answers exactly what the store holds, for readers at the head,
//! behind the tail (catching up), far ahead of it, and with two platforms' entries interleaved.

use std::sync::Arc;

use coffer_app::tail::{Settled, Tail};
use coffer_app::Directory;
use coffer_core::*;
use coffer_store::sqlite::SqliteStore;
use coffer_store::{Page, Store};

async fn run(s: &dyn Store, c: Command) -> Outcome {
    s.execute(c).await.unwrap().outcome
}

async fn platform_with_wallet(s: &dyn Store, name: &str) -> (OwnerId, AccountId) {
    let usd: CurrencyCode = "USD".parse().unwrap();
    let c =
        Command::CreatePlatform { name: name.into(), default_currency: usd, currency_exponents: Default::default() };
    let Outcome::Owner(p) = run(s, c).await else { panic!() };
    let c = Command::OpenWallet {
        owner: p.id,
        wallet_type: WalletType::Operating,
        currency: usd,
        overdraft_limit: 0,
        min_balance: 0,
    };
    let Outcome::Account(a) = run(s, c).await else { panic!() };
    (p.id, a.id)
}

async fn deposit(s: &dyn Store, platform: OwnerId, account: AccountId, key: String) {
    let op = MoneyOp::Deposit {
        account,
        amount: Money { minor: 1, currency: "USD".parse().unwrap() },
        source: SystemAccount::External,
    };
    let m = Movement { platform, idempotency_key: key, metadata: Default::default(), op };
    run(s, Command::Move(m)).await;
}

/// The store's own answer, oldest first.
async fn truth(s: &dyn Store, platform: OwnerId, from: Seq, to: Seq) -> Vec<Seq> {
    let page = Page { after: Some(from - 1), before: Some(to + 1), limit: 100_000 };
    let mut seqs: Vec<Seq> = s.entries(platform, page).await.unwrap().iter().map(|e| e.seq).collect();
    seqs.reverse();
    seqs
}

fn seqs(s: &Settled) -> Vec<Seq> {
    s.entries.iter().map(|e| e.entry.seq).collect()
}

#[tokio::test]
async fn every_reader_gets_what_the_store_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(&tmp.path().join("data"), Default::default()).unwrap());
    let dir = Directory::new(raw.clone());
    // A small tail as well, so that its oldest entries go while readers use it.
    let small = Tail::new(300);
    let dir_tail = Tail::default();
    let (p, a) = platform_with_wallet(&*raw, "P").await;
    let (q, b) = platform_with_wallet(&*raw, "Q").await;
    let mut cursor = 1;
    for round in 0..30u32 {
        for i in 0..(round % 7 + 1) * 60 {
            let (pl, acc) = if (i + round) % 3 == 0 { (q, b) } else { (p, a) };
            deposit(&*raw, pl, acc, format!("{round}.{i}")).await;
        }
        let settled = raw.settled_seq().await.unwrap();
        // At the head, in windows, as the feed reads (a tail extended moments ago may answer
        // less than asked: then through < to, and the rest comes later).
        while cursor <= settled {
            let to = settled.min(cursor + 999);
            let got = dir.settled_entries(p, cursor, to).await.unwrap();
            assert_eq!(seqs(&got), truth(&*raw, p, cursor, got.through).await, "head {cursor}..={}", got.through);
            assert!(got.through <= to && got.through + 1 >= cursor);
            let s = small.entries(&dir, p, cursor, to).await.unwrap();
            assert_eq!(seqs(&s), truth(&*raw, p, cursor, s.through).await, "small tail, head {cursor}..={}", s.through);
            if got.through.min(s.through) < to {
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            cursor = got.through.min(s.through) + 1;
        }
        // Behind, inside, and far ahead of what the tail holds; the other platform too.
        for (pl, from, to) in [(p, 1, settled), (p, settled / 2, settled), (q, 1, settled), (p, settled, settled)] {
            for tail in [&dir_tail, &small] {
                let got = tail.entries(&dir, pl, from.max(1), to).await.unwrap();
                assert_eq!(seqs(&got), truth(&*raw, pl, from.max(1), got.through).await, "{from}..={to}");
            }
        }
    }
    assert!(cursor > 5000, "the run covered more than one window: {cursor}");
}
