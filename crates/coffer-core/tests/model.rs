//! Property test: random operation sequences against a deliberately simple reference model.
//! After every step: money is conserved per currency, the ledger agrees with the model on every
//! wallet's balances and on accept/refuse, and a refused command changed nothing.

use std::collections::BTreeMap;

use coffer_core::*;
use proptest::prelude::*;

const WALLETS: usize = 5; // 0..4 USD (various min_balance), 4 is EUR
const MIN_BALANCE: [i64; WALLETS] = [0, 500, 0, 1000, 0];

#[derive(Debug, Clone)]
enum Op {
    Deposit(usize, i64),
    Payout(usize, i64),
    Transfer(usize, usize, i64),
    Fee(usize, i64),
    Hold(usize, i64),
    Capture(usize, Option<i64>, usize),
    Release(usize),
    Incoming(usize, i64),
    Settle(usize),
    Cancel(usize),
    Freeze(usize, bool),
    Fx(usize, i64),
    /// Send again the n-th accepted movement, with its key: must replay and change nothing.
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let w = 0..WALLETS;
    let amt = 1i64..3000;
    prop_oneof![
        3 => (w.clone(), amt.clone()).prop_map(|(w, a)| Op::Deposit(w, a)),
        2 => (w.clone(), amt.clone()).prop_map(|(w, a)| Op::Payout(w, a)),
        3 => (w.clone(), w.clone(), amt.clone()).prop_map(|(f, t, a)| Op::Transfer(f, t, a)),
        1 => (w.clone(), amt.clone()).prop_map(|(w, a)| Op::Fee(w, a)),
        3 => (w.clone(), amt.clone()).prop_map(|(w, a)| Op::Hold(w, a)),
        2 => (0usize..8, proptest::option::of(amt.clone()), w.clone()).prop_map(|(h, a, d)| Op::Capture(h, a, d)),
        1 => (0usize..8).prop_map(Op::Release),
        2 => (w.clone(), amt.clone()).prop_map(|(w, a)| Op::Incoming(w, a)),
        1 => (0usize..8).prop_map(Op::Settle),
        1 => (0usize..8).prop_map(Op::Cancel),
        1 => (w.clone(), any::<bool>()).prop_map(|(w, f)| Op::Freeze(w, f)),
        1 => (0usize..2, amt.clone()).prop_map(|(w, a)| Op::Fx(w, a)), // the merchant's USD wallets
        1 => (0usize..16).prop_map(Op::Replay),
    ]
}

/// The reference model: the rules written as plainly as possible.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    posted: [i64; WALLETS],
    held: [i64; WALLETS],
    incoming: [i64; WALLETS],
    frozen: [bool; WALLETS],
    holds: Vec<(usize, i64, bool)>,     // wallet, amount, open
    incomings: Vec<(usize, i64, bool)>, // wallet, amount, pending
}

impl Model {
    fn avail(&self, w: usize) -> i64 {
        self.posted[w] - self.held[w]
    }
    fn cur(w: usize) -> &'static str {
        if w == 4 {
            "EUR"
        } else {
            "USD"
        }
    }
    /// Apply; false when the rules refuse.
    fn apply(&mut self, op: &Op) -> bool {
        match *op {
            Op::Deposit(w, a) => {
                !self.frozen[w] && {
                    self.posted[w] += a;
                    true
                }
            }
            Op::Payout(w, a) => {
                !self.frozen[w] && a <= (self.avail(w) - MIN_BALANCE[w]).max(0) && {
                    self.posted[w] -= a;
                    true
                }
            }
            Op::Transfer(f, t, a) => {
                f != t && Self::cur(f) == Self::cur(t) && !self.frozen[f] && !self.frozen[t] && self.avail(f) >= a && {
                    self.posted[f] -= a;
                    self.posted[t] += a;
                    true
                }
            }
            Op::Fee(w, a) => {
                !self.frozen[w] && self.avail(w) >= a && {
                    self.posted[w] -= a;
                    true
                }
            }
            Op::Hold(w, a) => {
                !self.frozen[w] && self.avail(w) >= a && {
                    self.held[w] += a;
                    self.holds.push((w, a, true));
                    true
                }
            }
            Op::Capture(h, amt, d) => {
                let Some(&(w, a, open)) = self.holds.get(h) else {
                    return false;
                };
                let take = amt.unwrap_or(a);
                open && take <= a && d != w && Self::cur(d) == Self::cur(w) && !self.frozen[w] && !self.frozen[d] && {
                    self.held[w] -= a;
                    self.posted[w] -= take;
                    self.posted[d] += take;
                    self.holds[h].2 = false;
                    true
                }
            }
            Op::Release(h) => {
                let Some(&(w, a, open)) = self.holds.get(h) else {
                    return false;
                };
                open && {
                    self.held[w] -= a;
                    self.holds[h].2 = false;
                    true
                }
            }
            Op::Incoming(w, a) => {
                !self.frozen[w] && {
                    self.incoming[w] += a;
                    self.incomings.push((w, a, true));
                    true
                }
            }
            Op::Settle(i) => {
                let Some(&(w, a, pending)) = self.incomings.get(i) else {
                    return false;
                };
                pending && !self.frozen[w] && {
                    self.incoming[w] -= a;
                    self.posted[w] += a;
                    self.incomings[i].2 = false;
                    true
                }
            }
            Op::Cancel(i) => {
                let Some(&(w, a, pending)) = self.incomings.get(i) else {
                    return false;
                };
                pending && {
                    self.incoming[w] -= a;
                    self.incomings[i].2 = false;
                    true
                }
            }
            Op::Freeze(w, f) => {
                self.frozen[w] = f;
                true
            }
            // USD -> EUR at 0.5: half, rounded half to even.
            Op::Fx(w, a) => {
                !self.frozen[w] && !self.frozen[4] && self.avail(w) >= a && {
                    let b = a / 2 + if a % 2 == 1 && (a / 2) % 2 == 1 { 1 } else { 0 };
                    b > 0 && {
                        self.posted[w] -= a;
                        self.posted[4] += b;
                        true
                    }
                }
            }
            Op::Replay(_) => true,
        }
    }
}

struct Harness {
    l: Ledger,
    ids: CountingIds,
    now: i64,
    p: OwnerId,
    w: [AccountId; WALLETS],
    holds: Vec<HoldId>,
    incomings: Vec<IncomingId>,
    accepted: Vec<Command>,
    n: u64,
}

fn usd_or_eur(w: usize, minor: i64) -> Money {
    Money::new(minor, Model::cur(w).parse().unwrap())
}

impl Harness {
    fn new() -> Self {
        let mut h = Harness {
            l: Ledger::new(CurrencyTable::default()),
            ids: CountingIds::default(),
            now: 1,
            p: OwnerId(Default::default()),
            w: [AccountId(Default::default()); WALLETS],
            holds: vec![],
            incomings: vec![],
            accepted: vec![],
            n: 0,
        };
        let Outcome::Owner(p) = h
            .run(&Command::CreatePlatform {
                name: "P".into(),
                default_currency: "USD".parse().unwrap(),
                currency_exponents: Default::default(),
            })
            .unwrap()
        else {
            panic!()
        };
        h.p = p.id;
        let Outcome::Owner(m) =
            h.run(&Command::CreateMerchant { parent: p.id, name: "M".into(), default_currency: None }).unwrap()
        else {
            panic!()
        };
        let Outcome::Owner(s) =
            h.run(&Command::CreateMerchant { parent: m.id, name: "S".into(), default_currency: None }).unwrap()
        else {
            panic!()
        };
        let specs = [
            (m.id, WalletType::Operating),
            (m.id, WalletType::Reserve),
            (s.id, WalletType::Operating),
            (s.id, WalletType::Gift),
            (m.id, WalletType::Operating),
        ];
        for (i, (owner, t)) in specs.into_iter().enumerate() {
            let Outcome::Account(a) = h
                .run(&Command::OpenWallet {
                    owner,
                    wallet_type: t,
                    currency: Model::cur(i).parse().unwrap(),
                    overdraft_limit: 0,
                    min_balance: MIN_BALANCE[i],
                })
                .unwrap()
            else {
                panic!()
            };
            h.w[i] = a.id;
        }
        h
    }
    fn run(&mut self, c: &Command) -> Result<Outcome, LedgerError> {
        self.now += 1;
        let mut ctx = Ctx { now: Timestamp(self.now), ids: &mut self.ids };
        self.l.execute(c, &mut ctx)
    }
    fn mv(&mut self, op: MoneyOp) -> Command {
        self.n += 1;
        Command::Move(Movement {
            platform: self.p,
            idempotency_key: format!("k{}", self.n),
            metadata: BTreeMap::new(),
            op,
        })
    }
    fn hold(&self, i: usize) -> HoldId {
        self.holds.get(i).copied().unwrap_or(HoldId(uuid::Uuid::from_u128(u128::MAX)))
    }
    fn incoming(&self, i: usize) -> IncomingId {
        self.incomings.get(i).copied().unwrap_or(IncomingId(uuid::Uuid::from_u128(u128::MAX)))
    }
    fn command(&mut self, op: &Op) -> Option<Command> {
        let w = self.w;
        Some(match *op {
            Op::Deposit(i, a) => {
                self.mv(MoneyOp::Deposit { account: w[i], amount: usd_or_eur(i, a), source: SystemAccount::External })
            }
            Op::Payout(i, a) => self.mv(MoneyOp::Payout { account: w[i], amount: usd_or_eur(i, a) }),
            Op::Transfer(f, t, a) => self.mv(MoneyOp::Transfer { from: w[f], to: w[t], amount: usd_or_eur(f, a) }),
            Op::Fee(i, a) => self.mv(MoneyOp::Fee { account: w[i], amount: usd_or_eur(i, a) }),
            Op::Hold(i, a) => {
                self.mv(MoneyOp::HoldCreate { account: w[i], amount: usd_or_eur(i, a), expires_at: None })
            }
            Op::Capture(h, a, d) => {
                let cur = self.l.hold(self.hold(h)).and_then(|h| self.l.account(h.account)).map(|a| a.currency);
                let amount = a.map(|a| Money::new(a, cur.unwrap_or("USD".parse().unwrap())));
                let hold = self.hold(h);
                self.mv(MoneyOp::HoldCapture { hold, amount, destination: AccountRef::Id(w[d]) })
            }
            Op::Release(h) => {
                let hold = self.hold(h);
                self.mv(MoneyOp::HoldRelease { hold })
            }
            Op::Incoming(i, a) => self.mv(MoneyOp::IncomingCreate { account: w[i], amount: usd_or_eur(i, a) }),
            Op::Settle(i) => {
                let incoming = self.incoming(i);
                self.mv(MoneyOp::IncomingSettle { incoming })
            }
            Op::Cancel(i) => {
                let incoming = self.incoming(i);
                self.mv(MoneyOp::IncomingCancel { incoming })
            }
            Op::Freeze(i, f) => Command::SetWalletStatus {
                account: w[i],
                status: if f { WalletStatus::Frozen } else { WalletStatus::Active },
            },
            Op::Fx(i, a) => self.mv(MoneyOp::FxConvert {
                from: w[i],
                to: w[4],
                amount: usd_or_eur(i, a),
                rate: "0.5".parse().unwrap(),
                rate_source: None,
            }),
            Op::Replay(n) => return self.accepted.get(n).cloned(),
        })
    }
    /// Everything observable of the working set.
    fn snapshot(&self) -> (Vec<Account>, Vec<Hold>, Vec<Incoming>, Counters) {
        let mut a: Vec<Account> = self.l.accounts().cloned().collect();
        a.sort_by_key(|a| a.id);
        let mut h: Vec<Hold> = self.l.holds().cloned().collect();
        h.sort_by_key(|h| h.id);
        let mut i: Vec<Incoming> = self.l.incomings().cloned().collect();
        i.sort_by_key(|i| i.id);
        (a, h, i, self.l.counters())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn ledger_agrees_with_reference_model(ops in proptest::collection::vec(op(), 1..120)) {
        let mut h = Harness::new();
        let mut model = Model::default();
        for op in &ops {
            let Some(cmd) = h.command(op) else { continue };
            let before = h.snapshot();
            let mut next = model.clone();
            let model_ok = next.apply(op);
            let got = h.run(&cmd);
            match (&got, model_ok) {
                (Ok(Outcome::Replay { .. }), _) => {
                    prop_assert!(matches!(op, Op::Replay(_)), "unexpected replay for {:?}", op);
                    prop_assert_eq!(&h.snapshot(), &before, "a replay changed state");
                }
                (Ok(out), true) => {
                    model = next;
                    if let Outcome::Entry { hold: Some(hd), .. } = out {
                        if hd.status == HoldStatus::Open { h.holds.push(hd.id); }
                    }
                    if let Outcome::Entry { incoming: Some(i), .. } = out {
                        if i.status == IncomingStatus::Pending { h.incomings.push(i.id); }
                    }
                    if matches!(cmd, Command::Move(_)) { h.accepted.push(cmd.clone()); }
                }
                (Err(_), false) => prop_assert_eq!(&h.snapshot(), &before, "a refused command changed state: {:?}", op),
                (got, want) => prop_assert!(false, "{:?}: ledger said {:?}, model said ok={}", op, got, want),
            }
            // Agreement with the model on every wallet.
            for (i, id) in h.w.iter().enumerate() {
                let a = h.l.account(*id).unwrap();
                prop_assert_eq!((a.posted, a.held, a.incoming), (model.posted[i], model.held[i], model.incoming[i]), "wallet {} after {:?}", i, op);
                prop_assert!(a.available() >= -a.overdraft_limit.unwrap());
            }
            // Conservation: settled balances sum to zero per currency over all accounts.
            let mut sums: BTreeMap<CurrencyCode, i128> = BTreeMap::new();
            for a in h.l.accounts() { *sums.entry(a.currency).or_default() += a.posted as i128; }
            prop_assert!(sums.values().all(|s| *s == 0), "not conserved: {:?}", sums);
        }
    }
}
