//! The storage suite every backend must pass. A backend test file implements [`Backend`] and
//! calls each `check_*` function (see `tests/sqlite.rs`).

use std::sync::Arc;
use std::time::Duration;

use coffer_core::*;
use coffer_store::{Page, Store, StoreError};

/// Opens the backend's ledger under test; a second `open` after `shutdown` reopens the same one.
#[async_trait::async_trait]
pub trait Backend: Sync {
    async fn open(&self) -> Arc<dyn Store>;
}

pub fn usd(minor: i64) -> Money {
    Money::new(minor, "USD".parse().unwrap())
}

pub struct Fixture {
    pub p: OwnerId,
    pub m: OwnerId,
    pub s: OwnerId,
    pub op: AccountId,
    pub sub: AccountId,
}

async fn owner(s: &dyn Store, c: Command) -> Owner {
    match s.execute(c).await.unwrap().outcome {
        Outcome::Owner(o) => o,
        o => panic!("{o:?}"),
    }
}

pub async fn wallet(s: &dyn Store, owner: OwnerId, t: WalletType, min_balance: i64) -> AccountId {
    let c = Command::OpenWallet {
        owner,
        wallet_type: t,
        currency: "USD".parse().unwrap(),
        overdraft_limit: 0,
        min_balance,
    };
    match s.execute(c).await.unwrap().outcome {
        Outcome::Account(a) => a.id,
        o => panic!("{o:?}"),
    }
}

pub async fn fixture(s: &dyn Store) -> Fixture {
    let p = owner(
        s,
        Command::CreatePlatform {
            name: "P".into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        },
    )
    .await
    .id;
    let m = owner(s, Command::CreateMerchant { parent: p, name: "M".into(), default_currency: None }).await.id;
    let sm = owner(s, Command::CreateMerchant { parent: m, name: "S".into(), default_currency: None }).await.id;
    let op = wallet(s, m, WalletType::Operating, 1_000).await;
    let sub = wallet(s, sm, WalletType::Operating, 0).await;
    Fixture { p, m, s: sm, op, sub }
}

pub fn mv(p: OwnerId, key: &str, op: MoneyOp) -> Command {
    Command::Move(Movement { platform: p, idempotency_key: key.into(), metadata: Default::default(), op })
}

async fn bal(s: &dyn Store, a: AccountId) -> (i64, i64, i64) {
    let a = s.account(a).await.unwrap().unwrap();
    (a.posted, a.held, a.incoming)
}

fn code(r: Result<coffer_store::Receipt, StoreError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(StoreError::Rejected(e)) => e.code().into(),
        Err(e) => format!("store error: {e}"),
    }
}

async fn assert_verified(s: &dyn Store) {
    let r = s.verify().await.unwrap();
    assert!(r.is_ok(), "verify found: {:#?}", r.problems);
}

/// Movements are durable and survive a reopen; the read view and the journal agree.
pub async fn check_durable_lifecycle(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    s.execute(mv(f.p, "d1", MoneyOp::Deposit { account: f.op, amount: usd(10_000), source: SystemAccount::External }))
        .await
        .unwrap();
    s.execute(mv(f.p, "t1", MoneyOp::Transfer { from: f.op, to: f.sub, amount: usd(2_500) })).await.unwrap();
    let r = s.execute(mv(f.p, "p1", MoneyOp::Payout { account: f.op, amount: usd(1_000) })).await.unwrap();
    let e = r.entry().unwrap().clone();
    assert_eq!(e.kind, EntryKind::Payout);
    assert_eq!(s.entry(e.seq).await.unwrap().unwrap(), e, "the journal holds what was answered");
    assert_eq!(bal(&*s, f.op).await, (6_500, 0, 0));
    assert_eq!(bal(&*s, f.sub).await, (2_500, 0, 0));
    let kids = s.children(f.m).await.unwrap();
    assert_eq!(kids.iter().map(|o| o.id).collect::<Vec<_>>(), vec![f.s]);
    assert_eq!(s.accounts_of(f.m).await.unwrap().iter().map(|a| a.id).collect::<Vec<_>>(), vec![f.op]);
    assert_verified(&*s).await;
    s.shutdown().await;
    drop(s);

    let s = b.open().await;
    assert_eq!(bal(&*s, f.op).await, (6_500, 0, 0));
    assert_eq!(bal(&*s, f.sub).await, (2_500, 0, 0));
    assert_eq!(s.owner(f.s).await.unwrap().unwrap().parent, Some(f.m));
    // Sequence numbers continue after a reopen.
    let r = s.execute(mv(f.p, "p2", MoneyOp::Payout { account: f.op, amount: usd(500) })).await.unwrap();
    assert_eq!(r.entry().unwrap().seq, e.seq + 1);
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// The same key and request replays the first result, even after a reopen; another request under
/// the same key is a conflict; neither changes anything.
pub async fn check_idempotency(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let dep =
        |amt| mv(f.p, "dep-1", MoneyOp::Deposit { account: f.op, amount: usd(amt), source: SystemAccount::External });
    let first = s.execute(dep(700)).await.unwrap();
    assert!(!first.replayed);
    let again = s.execute(dep(700)).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.entry(), first.entry());
    assert_eq!(code(s.execute(dep(701)).await), "idempotency_conflict");
    s.shutdown().await;
    drop(s);
    let s = b.open().await;
    let again = s.execute(dep(700)).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.entry(), first.entry());
    assert_eq!(bal(&*s, f.op).await, (700, 0, 0));
    // Keys are scoped per platform: another platform may use the same key.
    let q = fixture(&*s).await;
    let r = s
        .execute(mv(
            q.p,
            "dep-1",
            MoneyOp::Deposit { account: q.op, amount: usd(700), source: SystemAccount::External },
        ))
        .await
        .unwrap();
    assert!(!r.replayed);
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// A refused command changes nothing, and later commands are unaffected.
pub async fn check_refusals_change_nothing(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    s.execute(mv(f.p, "d", MoneyOp::Deposit { account: f.op, amount: usd(5_000), source: SystemAccount::External }))
        .await
        .unwrap();
    let before = (bal(&*s, f.op).await, bal(&*s, f.sub).await);
    let refused = [
        mv(f.p, "x1", MoneyOp::Payout { account: f.op, amount: usd(4_001) }),
        mv(f.p, "x2", MoneyOp::Transfer { from: f.op, to: f.sub, amount: usd(5_001) }),
        mv(f.p, "x3", MoneyOp::HoldCreate { account: f.op, amount: usd(0), expires_at: None }),
        mv(f.p, "x4", MoneyOp::Reverse { seq: 999_999 }),
        mv(f.p, "x5", MoneyOp::HoldRelease { hold: HoldId(uuid::Uuid::nil()) }),
    ];
    for c in refused {
        assert!(matches!(s.execute(c).await, Err(StoreError::Rejected(_))));
    }
    assert_eq!((bal(&*s, f.op).await, bal(&*s, f.sub).await), before);
    // A refused key was not consumed: it can be used for an acceptable request.
    s.execute(mv(f.p, "x1", MoneyOp::Payout { account: f.op, amount: usd(4_000) })).await.unwrap();
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// Holds, reversals and incoming credits that the working set must fetch from storage.
pub async fn check_cold_state(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    s.execute(mv(f.p, "d", MoneyOp::Deposit { account: f.op, amount: usd(10_000), source: SystemAccount::External }))
        .await
        .unwrap();
    let hold = |r: coffer_store::Receipt| match r.outcome {
        Outcome::Entry { hold: Some(h), .. } => h,
        o => panic!("{o:?}"),
    };
    let h1 = hold(
        s.execute(mv(f.p, "h1", MoneyOp::HoldCreate { account: f.op, amount: usd(3_000), expires_at: None }))
            .await
            .unwrap(),
    );
    let h2 = hold(
        s.execute(mv(f.p, "h2", MoneyOp::HoldCreate { account: f.op, amount: usd(1_000), expires_at: None }))
            .await
            .unwrap(),
    );
    assert_eq!(s.open_holds(f.op).await.unwrap().iter().map(|h| h.id).collect::<Vec<_>>(), vec![h1.id, h2.id]);
    s.execute(mv(f.p, "r1", MoneyOp::HoldRelease { hold: h1.id })).await.unwrap();
    assert_eq!(s.hold(h1.id).await.unwrap().unwrap().status, HoldStatus::Released);
    // The released hold is no longer in memory: the store must load it to refuse precisely.
    assert_eq!(
        code(
            s.execute(mv(
                f.p,
                "c1",
                MoneyOp::HoldCapture { hold: h1.id, amount: None, destination: AccountRef::Id(f.sub) }
            ))
            .await
        ),
        "hold_not_open"
    );
    s.execute(mv(
        f.p,
        "c2",
        MoneyOp::HoldCapture { hold: h2.id, amount: Some(usd(400)), destination: AccountRef::Id(f.sub) },
    ))
    .await
    .unwrap();
    assert_eq!(bal(&*s, f.op).await, (9_600, 0, 0));
    assert_eq!(bal(&*s, f.sub).await, (400, 0, 0));

    let t = s.execute(mv(f.p, "t", MoneyOp::Transfer { from: f.op, to: f.sub, amount: usd(100) })).await.unwrap();
    let seq = t.entry().unwrap().seq;
    s.shutdown().await;
    drop(s);
    let s = b.open().await;
    s.execute(mv(f.p, "rev", MoneyOp::Reverse { seq })).await.unwrap();
    assert_eq!(bal(&*s, f.sub).await, (400, 0, 0));
    assert_eq!(code(s.execute(mv(f.p, "rev2", MoneyOp::Reverse { seq })).await), "already_reversed");

    let inc = match s
        .execute(mv(f.p, "i", MoneyOp::IncomingCreate { account: f.sub, amount: usd(250) }))
        .await
        .unwrap()
        .outcome
    {
        Outcome::Entry { incoming: Some(i), .. } => i,
        o => panic!("{o:?}"),
    };
    assert_eq!(bal(&*s, f.sub).await, (400, 0, 250));
    let pending = s.pending_incomings(f.sub).await.unwrap();
    assert_eq!(pending.iter().map(|i| (i.id, i.amount)).collect::<Vec<_>>(), vec![(inc.id, 250)]);
    assert!(s.pending_incomings(f.op).await.unwrap().is_empty(), "only the wallet's own");
    s.execute(mv(f.p, "is", MoneyOp::IncomingSettle { incoming: inc.id })).await.unwrap();
    assert_eq!(bal(&*s, f.sub).await, (650, 0, 0));
    assert!(s.pending_incomings(f.sub).await.unwrap().is_empty(), "a settled credit is no longer pending");
    assert_eq!(
        code(s.execute(mv(f.p, "ic", MoneyOp::IncomingCancel { incoming: inc.id })).await),
        "incoming_not_pending"
    );
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// A hold expires at its deadline with nobody calling, including across a restart.
pub async fn check_hold_expiry(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    s.execute(mv(f.p, "d", MoneyOp::Deposit { account: f.op, amount: usd(10_000), source: SystemAccount::External }))
        .await
        .unwrap();
    let now = Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64);
    let soon = Timestamp(now.0 + 300_000);
    let later = Timestamp(now.0 + 1_500_000);
    let h = |r: coffer_store::Receipt| match r.outcome {
        Outcome::Entry { hold: Some(h), .. } => h.id,
        o => panic!("{o:?}"),
    };
    let h1 = h(s
        .execute(mv(f.p, "h1", MoneyOp::HoldCreate { account: f.op, amount: usd(1_000), expires_at: Some(soon) }))
        .await
        .unwrap());
    let h2 = h(s
        .execute(mv(f.p, "h2", MoneyOp::HoldCreate { account: f.op, amount: usd(2_000), expires_at: Some(later) }))
        .await
        .unwrap());
    assert_eq!(bal(&*s, f.op).await, (10_000, 3_000, 0));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(s.hold(h1).await.unwrap().unwrap().status, HoldStatus::Expired);
    assert_eq!(bal(&*s, f.op).await, (10_000, 2_000, 0));
    s.shutdown().await;
    drop(s);
    // h2's deadline passes while the store is closed; it expires on open.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let s = b.open().await;
    let mut status = HoldStatus::Open;
    for _ in 0..40 {
        status = s.hold(h2).await.unwrap().unwrap().status;
        if status == HoldStatus::Expired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, HoldStatus::Expired);
    assert_eq!(bal(&*s, f.op).await, (10_000, 0, 0));
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// Many concurrent writers: group-committed, each command on its own, money conserved.
pub async fn check_concurrent_writers(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let mut wallets = vec![f.op, f.sub];
    for i in 0..18 {
        let o =
            owner(&*s, Command::CreateMerchant { parent: f.p, name: format!("m{i}"), default_currency: None }).await;
        wallets.push(wallet(&*s, o.id, WalletType::Operating, 0).await);
    }
    for (i, w) in wallets.iter().enumerate() {
        s.execute(mv(
            f.p,
            &format!("seed{i}"),
            MoneyOp::Deposit { account: *w, amount: usd(1_000), source: SystemAccount::External },
        ))
        .await
        .unwrap();
    }
    let before = s.stats();
    let wallets = Arc::new(wallets);
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let s = s.clone();
        let wallets = wallets.clone();
        let p = f.p;
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for i in 0..40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let from = wallets[(x % 20) as usize];
                let to = wallets[((x >> 8) % 20) as usize];
                let amount = usd(1 + (x >> 16) as i64 % 300);
                let key = format!("w{t}-{i}");
                match s.execute(mv(p, &key, MoneyOp::Transfer { from, to, amount })).await {
                    Ok(_) => accepted += 1,
                    Err(StoreError::Rejected(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    assert!(accepted > 0);
    let mut total = 0i64;
    for w in wallets.iter() {
        let a = s.account(*w).await.unwrap().unwrap();
        assert!(a.available() >= 0, "{a:?}");
        total += a.posted;
    }
    assert_eq!(total, 20 * 1_000, "transfers neither create nor destroy money");
    let after = s.stats();
    let commands = after.commands - before.commands;
    let commits = after.commits - before.commits;
    assert!(commands >= 64 * 40);
    assert!(commits < commands, "concurrent commands share commits ({commands} commands in {commits} commits)");
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// After shutdown, commands are refused with `Closed` rather than lost.
pub async fn check_shutdown(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    assert_eq!(s.ready().await, Ok(()));
    s.shutdown().await;
    assert!(s.ready().await.is_err(), "a stopped store is not ready");
    assert!(matches!(
        s.execute(mv(f.p, "late", MoneyOp::Deposit { account: f.op, amount: usd(1), source: SystemAccount::External }))
            .await,
        Err(StoreError::Closed)
    ));
}

/// History pages walk an account's journal newest first, unaffected by writes in between; the
/// balances at a past instant equal those read at that instant.
pub async fn check_history_and_as_of(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let now =
        || Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64);
    let mut snapshots = Vec::new();
    for i in 0..12 {
        let op = if i % 3 == 2 {
            MoneyOp::Transfer { from: f.op, to: f.sub, amount: usd(10 + i) }
        } else {
            MoneyOp::Deposit { account: f.op, amount: usd(100 + i), source: SystemAccount::External }
        };
        s.execute(mv(f.p, &format!("h{i}"), op)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
        snapshots.push((now(), bal(&*s, f.op).await, bal(&*s, f.sub).await));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for (t, op, sub) in &snapshots {
        let seq = s.seq_at(*t).await.unwrap();
        let got = s.balances_at(vec![f.op, f.sub], seq).await.unwrap();
        assert_eq!(got, vec![*op, *sub], "balances at {t:?} (seq {seq})");
    }
    assert_eq!(s.seq_at(Timestamp(0)).await.unwrap(), 0);
    assert_eq!(s.balances_at(vec![f.op], 0).await.unwrap(), vec![(0, 0, 0)]);

    // Page through the operating wallet's journal 5 at a time while writes continue.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s.history(f.op, Page { before, after: None, limit: 5 }).await.unwrap();
        s.execute(mv(
            f.p,
            &format!("late{}", seen.len()),
            MoneyOp::Deposit { account: f.op, amount: usd(1), source: SystemAccount::External },
        ))
        .await
        .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|h| h.seq);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 12, "the first page fixed the window: later writes do not shift it");
    assert!(seen.windows(2).all(|w| w[0].seq > w[1].seq), "newest first, no repeats");
    for w in seen.windows(2) {
        assert_eq!(w[1].line.posted_after + w[0].line.posted, w[0].line.posted_after, "running balance");
    }
    let entries = s.entries(f.p, Page { before: None, after: None, limit: 3 }).await.unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries[0].seq > entries[1].seq);
    s.shutdown().await;
}

/// Request ids: claimed once (also by racing callers), remembered across a restart, and free
/// again once their window has passed; scopes do not see each other's ids.
pub async fn check_nonces(b: &dyn Backend) {
    let s = b.open().await;
    let now = Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64);
    let later = Timestamp(now.0 + 600_000_000);
    assert!(s.claim_nonce("owner-a", "REQ-1", later).await.unwrap());
    assert!(!s.claim_nonce("owner-a", "REQ-1", later).await.unwrap(), "a replay is refused");
    assert!(s.claim_nonce("owner-b", "REQ-1", later).await.unwrap(), "scopes are separate");
    let racers: Vec<_> = (0..16)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_nonce("owner-a", "RACE", later).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        won += r.await.unwrap() as usize;
    }
    assert_eq!(won, 1, "exactly one of 16 racing claims wins");
    // An expired claim may be made again.
    assert!(s.claim_nonce("owner-a", "OLD", Timestamp(now.0 - 1)).await.unwrap());
    assert!(s.claim_nonce("owner-a", "OLD", later).await.unwrap(), "its window had passed");
    s.shutdown().await;
    let s = b.open().await;
    assert!(!s.claim_nonce("owner-a", "REQ-1", later).await.unwrap(), "remembered across a restart");
    assert!(!s.claim_nonce("owner-a", "OLD", later).await.unwrap());
    s.shutdown().await;
}

/// Server settings: the first value written wins, also across a restart.
pub async fn check_settings(b: &dyn Backend) {
    let s = b.open().await;
    assert_eq!(s.setting("signing").await.unwrap(), None);
    assert_eq!(s.init_setting("signing", "first".into()).await.unwrap(), "first");
    assert_eq!(s.init_setting("signing", "second".into()).await.unwrap(), "first", "never overwritten");
    assert_eq!(s.setting("signing").await.unwrap().as_deref(), Some("first"));
    s.shutdown().await;
    let s = b.open().await;
    assert_eq!(s.setting("signing").await.unwrap().as_deref(), Some("first"));
    s.shutdown().await;
}

/// Exchange rates: recorded with the commit's time, never overwritten, read as of an instant,
/// kept per platform and across a restart.
pub async fn check_rates(b: &dyn Backend) {
    use coffer_core::fx::RateQuote;
    let s = b.open().await;
    let f = fixture(&*s).await;
    let other = owner(
        &*s,
        Command::CreatePlatform {
            name: "Q".into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        },
    )
    .await
    .id;
    let (eur, usd): (CurrencyCode, CurrencyCode) = ("EUR".parse().unwrap(), "USD".parse().unwrap());
    let quote = |rate: &str, effective_at: i64| RateQuote {
        base: eur,
        quote: usd,
        rate: rate.parse().unwrap(),
        source: "test".into(),
        effective_at: Timestamp(effective_at),
        recorded_at: Timestamp(0),
    };
    let first = s.record_rates(f.p, vec![quote("1.0800", 1_000), quote("1.0900", 2_000)]).await.unwrap();
    assert!(first.iter().all(|q| q.recorded_at.0 > 1_000_000_000_000_000), "the store sets recorded_at");
    let t1 = first[0].recorded_at;
    let later = Timestamp(t1.0 + 10_000_000);
    let at = |t: Timestamp| {
        let s = s.clone();
        async move { s.rates_at(f.p, vec![(eur, usd), (usd, eur)], t).await.unwrap() }
    };
    assert_eq!(at(later).await.len(), 1, "only the pair that exists");
    assert_eq!(at(later).await[0].rate.to_string(), "1.09", "latest effective");
    assert!(at(Timestamp(t1.0 - 1)).await.is_empty(), "nothing was recorded before t1");
    // A correction of the first day, recorded later, does not change what t1 saw.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let corr = s.record_rates(f.p, vec![quote("1.1000", 2_000)]).await.unwrap();
    assert!(corr[0].recorded_at > t1);
    assert_eq!(at(t1).await[0].rate.to_string(), "1.09");
    assert_eq!(at(Timestamp(corr[0].recorded_at.0 + 1)).await[0].rate.to_string(), "1.1");
    assert!(s.rates_at(other, vec![(eur, usd)], later).await.unwrap().is_empty(), "per platform");
    s.shutdown().await;
    let s = b.open().await;
    let kept = s.rates_at(f.p, vec![(eur, usd)], Timestamp(i64::MAX)).await.unwrap();
    assert_eq!(kept[0].rate.to_string(), "1.1");
    assert_eq!(s.rates_at(f.p, vec![(eur, usd)], t1).await.unwrap()[0].rate.to_string(), "1.09");
    s.shutdown().await;
}

/// Several entries read at once come back in the order asked, missing ones left out.
pub async fn check_entries_at(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let mut seqs = Vec::new();
    for i in 0..3 {
        let op = MoneyOp::Deposit { account: f.op, amount: usd(100 + i), source: SystemAccount::External };
        let r = s.execute(mv(f.p, &format!("e{i}"), op)).await.unwrap();
        seqs.push(r.entry().unwrap().seq);
    }
    let asked = vec![seqs[2], 999_999, seqs[0], seqs[1]];
    let got: Vec<Seq> = s.entries_at(asked).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(got, vec![seqs[2], seqs[0], seqs[1]]);
    s.shutdown().await;
}

/// Entries found by metadata through the index: exactly those carrying the key and value, of
/// the platform asked for, newest first, paged; still there after a restart.
pub async fn check_tagged(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let mut refs = Vec::new();
    for i in 0..7u32 {
        let op = MoneyOp::Deposit { account: f.op, amount: usd(100 + i as i64), source: SystemAccount::External };
        let reference = if i % 3 == 0 { "INV-1" } else { "INV-2" };
        let metadata = [("reference".to_string(), reference.to_string()), ("n".to_string(), i.to_string())].into();
        let m = Movement { platform: f.p, idempotency_key: format!("t{i}"), metadata, op };
        let seq = s.execute(Command::Move(m)).await.unwrap().entry().unwrap().seq;
        if i % 3 == 0 {
            refs.push(seq);
        }
    }
    s.execute(mv(f.p, "untagged", MoneyOp::Deposit { account: f.op, amount: usd(1), source: SystemAccount::External }))
        .await
        .unwrap();
    refs.reverse();
    let all = Page { before: None, after: None, limit: 100 };
    let seqs = |v: Vec<Entry>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(s.tagged(f.p, "reference", "INV-1", all).await.unwrap()), refs);
    assert_eq!(seqs(s.tagged(f.p, "reference", "INV-1", Page { limit: 2, ..all }).await.unwrap()), refs[..2]);
    assert_eq!(
        seqs(s.tagged(f.p, "reference", "INV-1", Page { before: Some(refs[1]), ..all }).await.unwrap()),
        refs[2..]
    );
    assert_eq!(s.tagged(f.p, "n", "4", all).await.unwrap().len(), 1);
    assert!(s.tagged(f.p, "reference", "INV-3", all).await.unwrap().is_empty());
    assert!(s.tagged(f.m, "reference", "INV-1", all).await.unwrap().is_empty(), "another platform's index");
    let e = &s.tagged(f.p, "n", "4", all).await.unwrap()[0];
    assert_eq!((e.metadata["n"].as_str(), e.lines.len()), ("4", 2), "whole entries");
    s.shutdown().await;
    drop(s);
    let s = b.open().await;
    assert_eq!(seqs(s.tagged(f.p, "reference", "INV-1", all).await.unwrap()), refs);
    s.shutdown().await;
}

/// Text a store cannot hold (NUL, control characters, over-long) is refused on its own, before
/// it joins a batch: commands racing it in the same instant all commit, and nothing it carried
/// is stored or looked up.
pub async fn check_bad_text_fails_alone(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let later = Timestamp(i64::MAX / 2);
    let deposit = || MoneyOp::Deposit { account: f.op, amount: usd(1), source: SystemAccount::External };
    let bad_meta = |k: &str, v: &str| {
        let mut c = mv(f.p, &format!("meta-{}", k.len() + v.len()), deposit());
        if let Command::Move(m) = &mut c {
            m.metadata.insert(k.into(), v.into());
        }
        c
    };
    let bad: Vec<Command> = vec![
        mv(f.p, "nul\0key", deposit()),
        mv(f.p, &"k".repeat(300), deposit()),
        bad_meta("key", "value\0"),
        bad_meta("ke\0y", "value"),
        Command::CreateMerchant { parent: f.p, name: "a\0b".into(), default_currency: None },
        Command::RevokeApiKey { id: "ck_\0".into() },
        Command::SetKeyPublicKey { id: "ck_x".into(), public_key: Some("AAAA\0".into()) },
    ];
    for round in 0..3 {
        let mut tasks = Vec::new();
        for (i, c) in bad.iter().enumerate() {
            let (s, c) = (s.clone(), c.clone());
            tasks.push(tokio::spawn(async move { (format!("bad {i}"), s.execute(c).await.map(|_| ())) }));
        }
        for i in 0..40 {
            let (s, c) = (s.clone(), mv(f.p, &format!("good-{round}-{i}"), deposit()));
            tasks.push(tokio::spawn(async move { (format!("good {i}"), s.execute(c).await.map(|_| ())) }));
        }
        let s2 = s.clone();
        tasks.push(tokio::spawn(async move {
            let r = s2.claim_nonce("scope", "req\0id", later).await.map(|_| ());
            ("bad nonce".to_string(), r)
        }));
        for t in tasks {
            let (what, r) = t.await.unwrap();
            match (what.starts_with("good"), r) {
                (true, Ok(())) => {}
                (false, Err(StoreError::Rejected(LedgerError::InvalidArgument { .. }))) => {}
                (_, r) => panic!("{what}: {r:?}"),
            }
        }
    }
    assert_eq!(s.api_key("ck_\0").await.unwrap(), None, "a lookup of an impossible id finds nothing");
    assert_eq!(bal(&*s, f.op).await.0, 120, "every good deposit and only those");
    assert_verified(&*s).await;
    s.shutdown().await;
}

/// The directory version grows with every change to an owner or a key, before the change is
/// acknowledged, and stays put through money movements (caches of owners and keys rely on it).
pub async fn check_directory_version(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let v = || async { s.directory_version().await.unwrap() };
    let v0 = v().await;
    s.execute(mv(f.p, "dv-1", MoneyOp::Deposit { account: f.op, amount: usd(5), source: SystemAccount::External }))
        .await
        .unwrap();
    assert_eq!(v().await, v0, "a movement leaves the directory as it was");
    s.execute(Command::SetOwnerStatus { owner: f.s, status: OwnerStatus::Suspended }).await.unwrap();
    let v1 = v().await;
    assert!(v1 > v0, "suspending an owner: {v0} -> {v1}");
    let key = Command::CreateApiKey {
        id: "ck_000000000000000000d1".into(),
        owner: f.m,
        scope: KeyScope::ReadOnly,
        secret_hash: "0".repeat(64),
    };
    s.execute(key).await.unwrap();
    let v2 = v().await;
    assert!(v2 > v1, "creating a key: {v1} -> {v2}");
    s.execute(Command::RevokeApiKey { id: "ck_000000000000000000d1".into() }).await.unwrap();
    let v3 = v().await;
    assert!(v3 > v2, "revoking a key: {v2} -> {v3}");
    s.shutdown().await;
}

/// What a reader walking the journal in order relies on (the event feed): at or below the
/// settled position (`settled_seq`) the journal never changes any more, even while concurrent
/// writers commit out of order and refused commands leave unused entry numbers. Samples taken
/// during the writes are compared with the journal once every writer is done; the position
/// never moves back and, once writes stop, reaches the last entry.
pub async fn check_settled_position(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    // Pairs of wallets no other pair touches: batches of different writers commit independently.
    let mut pairs = Vec::new();
    for i in 0..8 {
        let o =
            owner(&*s, Command::CreateMerchant { parent: f.p, name: format!("m{i}"), default_currency: None }).await;
        let (a, b) =
            (wallet(&*s, o.id, WalletType::Operating, 0).await, wallet(&*s, o.id, WalletType::Reserve, 0).await);
        let fund = MoneyOp::Deposit { account: a, amount: usd(1_000), source: SystemAccount::External };
        s.execute(mv(f.p, &format!("fund{i}"), fund)).await.unwrap();
        pairs.push((a, b));
    }
    let below = |seq: Seq| {
        let s = s.clone();
        async move {
            let page = Page { before: Some(seq + 1), after: None, limit: 10_000 };
            s.entries(f.p, page).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>()
        }
    };
    let mut writers = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        let (a, b) = pairs[t % 8];
        writers.push(tokio::spawn(async move {
            for i in 0..25 {
                // Every third one is refused (more than the wallets hold): an unused number.
                let amount = usd(if i % 3 == 0 { 1_000_000 } else { 1 });
                let op = MoneyOp::Transfer { from: a, to: b, amount };
                let _ = s.execute(mv(f.p, &format!("t{t}-{i}"), op)).await;
                let op = MoneyOp::Transfer { from: b, to: a, amount: usd(1) };
                let _ = s.execute(mv(f.p, &format!("b{t}-{i}"), op)).await;
            }
        }));
    }
    let mut samples: Vec<(Seq, Vec<Seq>)> = Vec::new();
    while writers.iter().any(|w| !w.is_finished()) {
        let settled = s.settled_seq().await.unwrap();
        if let Some((last, _)) = samples.last() {
            assert!(settled >= *last, "the settled position moved back: {last} then {settled}");
        }
        samples.push((settled, below(settled).await));
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(samples.len() > 3, "sampled while writing");
    for (settled, seen) in &samples {
        assert_eq!(&below(*settled).await, seen, "entries at or below {settled} changed after it was settled");
    }
    let last = below(u64::MAX - 1).await[0];
    let since = std::time::Instant::now();
    while s.settled_seq().await.unwrap() < last {
        assert!(since.elapsed() < std::time::Duration::from_secs(5), "the settled position stopped short of {last}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    s.shutdown().await;
}

/// Balance alerts: stored durably at a position past every entry made before, after which new
/// entries come; deleted once (a second delete keeps the first position), never removed.
pub async fn check_alerts(b: &dyn Backend) {
    use coffer_core::alerts::Alert;
    let s = b.open().await;
    let f = fixture(&*s).await;
    let dep = |k: &str| mv(f.p, k, MoneyOp::Deposit { account: f.op, amount: usd(5), source: SystemAccount::External });
    let first = s.execute(dep("a")).await.unwrap().entry().unwrap().seq;
    let new = |n: u128| Alert {
        id: AlertId(uuid::Uuid::from_u128(n)),
        platform: f.p,
        wallet: f.op,
        field: AlertField::Available,
        direction: AlertDirection::Below,
        threshold: 100,
        created_seq: 0,
        deleted_seq: None,
        created_at: Timestamp(0),
    };
    let a = s.put_alert(new(1)).await.unwrap();
    assert!(a.created_seq >= first && a.created_at.0 > 0, "{a:?}");
    let later = s.execute(dep("b")).await.unwrap().entry().unwrap().seq;
    assert!(later > a.created_seq, "an entry after the alert comes after its position");
    let b2 = s.put_alert(new(2)).await.unwrap();
    assert!(b2.created_seq >= later);
    assert_eq!(s.alerts(f.p).await.unwrap(), vec![a.clone(), b2.clone()]);
    assert!(s.alerts(OwnerId(uuid::Uuid::from_u128(9))).await.unwrap().is_empty(), "per platform");
    let gone = s.delete_alert(f.p, a.id).await.unwrap().unwrap();
    assert!(gone.deleted_seq.is_some_and(|d| d >= b2.created_seq), "{gone:?}");
    let again = s.delete_alert(f.p, a.id).await.unwrap().unwrap();
    assert_eq!(again.deleted_seq, gone.deleted_seq, "deleted once");
    assert_eq!(s.delete_alert(f.p, AlertId(uuid::Uuid::from_u128(7))).await.unwrap(), None);
    assert_eq!(s.delete_alert(OwnerId(uuid::Uuid::from_u128(9)), b2.id).await.unwrap(), None, "not another platform's");
    s.shutdown().await;
    let s = b.open().await;
    assert_eq!(s.alerts(f.p).await.unwrap(), vec![gone, b2], "durable");
    s.shutdown().await;
}

/// Status changes: each at a journal number of its own between the entries around it, settled
/// without a later entry, recorded with a webhook document when given (not when the document's
/// write loses), durable, and never given a number again after a reopen.
pub async fn check_status_changes(b: &dyn Backend) {
    let s = b.open().await;
    let f = fixture(&*s).await;
    let dep = |k: &str| mv(f.p, k, MoneyOp::Deposit { account: f.op, amount: usd(5), source: SystemAccount::External });
    let first = s.execute(dep("a")).await.unwrap().entry().unwrap().seq;
    s.execute(Command::SetWalletStatus { account: f.op, status: WalletStatus::Frozen }).await.unwrap();
    s.execute(Command::SetWalletStatus { account: f.op, status: WalletStatus::Active }).await.unwrap();
    let settle = |at_least: Seq| {
        let s = s.clone();
        async move {
            let since = std::time::Instant::now();
            while s.settled_seq().await.unwrap() < at_least {
                assert!(since.elapsed() < std::time::Duration::from_secs(5), "not settled up to {at_least}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    let changes = s.status_changes(f.p, 1, u64::MAX - 1).await.unwrap();
    let seen: Vec<(&str, &str)> = changes.iter().map(|c| (c.from.as_str(), c.to.as_str())).collect();
    assert_eq!(seen, [("ACTIVE", "FROZEN"), ("FROZEN", "ACTIVE")]);
    assert!(first < changes[0].seq && changes[0].seq < changes[1].seq, "{changes:?}");
    assert!(changes.iter().all(|c| c.subject == StatusSubject::Wallet(f.op) && c.owner == f.m && c.created_at.0 > 0));
    settle(changes[1].seq).await;
    // A webhook document with a status change; a losing write records none.
    let hook = uuid::Uuid::from_u128(77);
    s.save_webhook(f.p, hook, "{}".into(), None, None).await.unwrap();
    let change = StatusChange {
        seq: 0,
        platform: f.p,
        owner: f.m,
        subject: StatusSubject::WebhookEndpoint(hook),
        from: "ENABLED".into(),
        to: "DISABLED".into(),
        reason: Some("failing".into()),
        created_at: Timestamp(0),
    };
    assert!(s.save_webhook(f.p, hook, "{}".into(), Some(9), Some(change.clone())).await.is_err());
    assert_eq!(s.save_webhook(f.p, hook, "{}".into(), Some(1), Some(change)).await.unwrap(), 2);
    let later = s.execute(dep("b")).await.unwrap().entry().unwrap().seq;
    let all = s.status_changes(f.p, 1, later).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[2].seq > changes[1].seq && all[2].seq < later, "{all:?}");
    assert_eq!((all[2].reason.as_deref(), all[2].subject), (Some("failing"), StatusSubject::WebhookEndpoint(hook)));
    assert_eq!(s.status_changes(f.p, all[1].seq + 1, later).await.unwrap(), all[2..].to_vec(), "by number");
    assert!(s.status_changes(OwnerId(uuid::Uuid::from_u128(9)), 1, later).await.unwrap().is_empty(), "per platform");
    s.execute(Command::SetOwnerStatus { owner: f.m, status: OwnerStatus::Suspended }).await.unwrap();
    s.shutdown().await;
    let s = b.open().await;
    let kept = s.status_changes(f.p, 1, u64::MAX - 1).await.unwrap();
    assert_eq!(kept[..3], all[..], "durable");
    assert_eq!(kept[3].subject, StatusSubject::Owner(f.m));
    s.execute(Command::SetOwnerStatus { owner: f.m, status: OwnerStatus::Active }).await.unwrap();
    let after = s.execute(dep("c")).await.unwrap().entry().unwrap().seq;
    let last = s.status_changes(f.p, 1, u64::MAX - 1).await.unwrap();
    assert!(last[3].seq < last[4].seq && last[4].seq < after, "numbers never taken twice: {last:?} then {after}");
    s.shutdown().await;
}
