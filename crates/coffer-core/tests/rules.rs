//! Table tests for the ledger rules. Each case names what it checks.

use coffer_core::*;

fn usd(minor: i64) -> Money {
    Money::new(minor, "USD".parse().unwrap())
}
fn eur(minor: i64) -> Money {
    Money::new(minor, "EUR".parse().unwrap())
}

/// A platform with a merchant, its sub-merchant and a few wallets, built through `execute`.
struct World {
    l: Ledger,
    ids: CountingIds,
    now: i64,
    keys: u32,
    p: OwnerId,
    m: OwnerId,
    s: OwnerId,
    /// merchant OPERATING USD, min_balance 10.00
    op: AccountId,
    /// merchant RESERVE USD
    res: AccountId,
    /// merchant OPERATING EUR
    op_eur: AccountId,
    /// sub-merchant OPERATING USD
    sub: AccountId,
}

impl World {
    fn new() -> Self {
        let mut w = World {
            l: Ledger::new(CurrencyTable::default()),
            ids: CountingIds::default(),
            now: 1_000_000,
            keys: 0,
            p: OwnerId(Default::default()),
            m: OwnerId(Default::default()),
            s: OwnerId(Default::default()),
            op: AccountId(Default::default()),
            res: AccountId(Default::default()),
            op_eur: AccountId(Default::default()),
            sub: AccountId(Default::default()),
        };
        w.p = w.owner(Command::CreatePlatform {
            name: "P".into(),
            default_currency: "USD".parse().unwrap(),
            currency_exponents: Default::default(),
        });
        w.m = w.owner(Command::CreateMerchant { parent: w.p, name: "M".into(), default_currency: None });
        w.s = w.owner(Command::CreateMerchant { parent: w.m, name: "S".into(), default_currency: None });
        w.op = w.wallet(w.m, WalletType::Operating, "USD", 1000);
        w.res = w.wallet(w.m, WalletType::Reserve, "USD", 0);
        w.op_eur = w.wallet(w.m, WalletType::Operating, "EUR", 0);
        w.sub = w.wallet(w.s, WalletType::Operating, "USD", 0);
        w
    }
    fn run(&mut self, c: Command) -> Result<Outcome, LedgerError> {
        self.now += 1000;
        let mut ctx = Ctx { now: Timestamp(self.now), ids: &mut self.ids };
        self.l.execute(&c, &mut ctx)
    }
    fn owner(&mut self, c: Command) -> OwnerId {
        match self.run(c).unwrap() {
            Outcome::Owner(o) => o.id,
            o => panic!("{o:?}"),
        }
    }
    fn wallet(&mut self, owner: OwnerId, t: WalletType, cur: &str, min_balance: i64) -> AccountId {
        match self
            .run(Command::OpenWallet {
                owner,
                wallet_type: t,
                currency: cur.parse().unwrap(),
                overdraft_limit: 0,
                min_balance,
            })
            .unwrap()
        {
            Outcome::Account(a) => a.id,
            o => panic!("{o:?}"),
        }
    }
    fn mv(&mut self, op: MoneyOp) -> Result<Outcome, LedgerError> {
        self.keys += 1;
        let key = format!("k{}", self.keys);
        self.run(Command::Move(Movement { platform: self.p, idempotency_key: key, metadata: Default::default(), op }))
    }
    fn ok(&mut self, op: MoneyOp) -> Outcome {
        self.mv(op).unwrap()
    }
    fn bal(&self, a: AccountId) -> (i64, i64, i64) {
        let a = self.l.account(a).unwrap();
        (a.posted, a.held, a.incoming)
    }
    fn deposit(&mut self, a: AccountId, m: Money) {
        self.ok(MoneyOp::Deposit { account: a, amount: m, source: SystemAccount::External });
    }
    fn hold(&mut self, a: AccountId, m: Money, expires: Option<i64>) -> HoldId {
        match self.ok(MoneyOp::HoldCreate { account: a, amount: m, expires_at: expires.map(Timestamp) }) {
            Outcome::Entry { hold: Some(h), .. } => h.id,
            o => panic!("{o:?}"),
        }
    }
    /// Sum of posted over every account, per currency: zero when money is conserved.
    fn conserved(&self) -> bool {
        let mut sums = std::collections::BTreeMap::new();
        for a in self.l.accounts() {
            *sums.entry(a.currency).or_insert(0i128) += a.posted as i128;
        }
        sums.values().all(|s| *s == 0)
    }
}

fn code(r: Result<Outcome, LedgerError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn refusals_table() {
    // (what it checks, setup+operation, expected error code). Each case starts from a world whose
    // merchant OPERATING USD wallet holds 100.00 (min_balance 10.00).
    type Case = (&'static str, fn(&mut World) -> Result<Outcome, LedgerError>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "deposit of zero is refused",
            |w| w.mv(MoneyOp::Deposit { account: w.op, amount: usd(0), source: SystemAccount::External }),
            "amount_not_positive",
        ),
        (
            "negative deposit is refused",
            |w| w.mv(MoneyOp::Deposit { account: w.op, amount: usd(-5), source: SystemAccount::External }),
            "amount_not_positive",
        ),
        (
            "deposit in the wrong currency is refused",
            |w| w.mv(MoneyOp::Deposit { account: w.op, amount: eur(5), source: SystemAccount::External }),
            "currency_mismatch",
        ),
        (
            "deposit from the fee account is refused",
            |w| w.mv(MoneyOp::Deposit { account: w.op, amount: usd(5), source: SystemAccount::Fees }),
            "invalid_argument",
        ),
        (
            "payout beyond withdrawable (min_balance) is refused",
            |w| w.mv(MoneyOp::Payout { account: w.op, amount: usd(9_001) }),
            "below_min_balance",
        ),
        (
            "payout beyond available is refused",
            |w| w.mv(MoneyOp::Payout { account: w.op, amount: usd(10_001) }),
            "insufficient_funds",
        ),
        (
            "payout from a wallet with no min_balance beyond available",
            |w| w.mv(MoneyOp::Payout { account: w.res, amount: usd(1) }),
            "insufficient_funds",
        ),
        (
            "transfer beyond available is refused",
            |w| w.mv(MoneyOp::Transfer { from: w.op, to: w.sub, amount: usd(10_001) }),
            "insufficient_funds",
        ),
        (
            "transfer to itself is refused",
            |w| w.mv(MoneyOp::Transfer { from: w.op, to: w.op, amount: usd(1) }),
            "invalid_argument",
        ),
        (
            "transfer across currencies is refused",
            |w| w.mv(MoneyOp::Transfer { from: w.op, to: w.op_eur, amount: usd(1) }),
            "currency_mismatch",
        ),
        (
            "fee beyond available is refused",
            |w| w.mv(MoneyOp::Fee { account: w.op, amount: usd(10_001) }),
            "insufficient_funds",
        ),
        (
            "hold beyond available is refused",
            |w| w.mv(MoneyOp::HoldCreate { account: w.op, amount: usd(10_001), expires_at: None }),
            "insufficient_funds",
        ),
        (
            "hold with a deadline in the past is refused",
            |w| {
                let t = w.now - 1;
                w.mv(MoneyOp::HoldCreate { account: w.op, amount: usd(1), expires_at: Some(Timestamp(t)) })
            },
            "invalid_argument",
        ),
        (
            "unbalanced postings are refused",
            |w| {
                let (op, sub) = (w.op, w.sub);
                w.mv(MoneyOp::Postings {
                    postings: vec![
                        Posting { account: AccountRef::Id(op), amount: usd(-100) },
                        Posting { account: AccountRef::Id(sub), amount: usd(99) },
                    ],
                })
            },
            "unbalanced",
        ),
        ("empty postings are refused", |w| w.mv(MoneyOp::Postings { postings: vec![] }), "invalid_argument"),
        (
            "a zero posting is refused",
            |w| {
                let op = w.op;
                w.mv(MoneyOp::Postings { postings: vec![Posting { account: AccountRef::Id(op), amount: usd(0) }] })
            },
            "invalid_argument",
        ),
        (
            "postings that overdraw are refused",
            |w| {
                let (op, sub) = (w.op, w.sub);
                w.mv(MoneyOp::Postings {
                    postings: vec![
                        Posting { account: AccountRef::Id(op), amount: usd(-10_001) },
                        Posting { account: AccountRef::Id(sub), amount: usd(10_001) },
                    ],
                })
            },
            "insufficient_funds",
        ),
        (
            "an unknown account is not found",
            |w| w.mv(MoneyOp::Payout { account: AccountId(uuid::Uuid::from_u128(999_999)), amount: usd(1) }),
            "account_not_found",
        ),
        (
            "an unknown hold is not found",
            |w| w.mv(MoneyOp::HoldRelease { hold: HoldId(uuid::Uuid::from_u128(999_999)) }),
            "hold_not_found",
        ),
        (
            "a frozen wallet refuses credits",
            |w| {
                w.run(Command::SetWalletStatus { account: w.sub, status: WalletStatus::Frozen }).unwrap();
                w.mv(MoneyOp::Transfer { from: w.op, to: w.sub, amount: usd(1) })
            },
            "wallet_not_active",
        ),
        (
            "a frozen destination is reported before an empty source",
            |w| {
                w.run(Command::SetWalletStatus { account: w.sub, status: WalletStatus::Frozen }).unwrap();
                w.mv(MoneyOp::Transfer { from: w.res, to: w.sub, amount: usd(1) })
            },
            "wallet_not_active",
        ),
        (
            "a frozen wallet refuses debits",
            |w| {
                w.run(Command::SetWalletStatus { account: w.op, status: WalletStatus::Frozen }).unwrap();
                w.mv(MoneyOp::Payout { account: w.op, amount: usd(1) })
            },
            "wallet_not_active",
        ),
        (
            "a wallet with money cannot close",
            |w| w.run(Command::SetWalletStatus { account: w.op, status: WalletStatus::Closed }),
            "wallet_not_empty",
        ),
        (
            "a closed wallet cannot reopen",
            |w| {
                w.run(Command::SetWalletStatus { account: w.res, status: WalletStatus::Closed }).unwrap();
                w.run(Command::SetWalletStatus { account: w.res, status: WalletStatus::Active })
            },
            "invalid_transition",
        ),
        (
            "a deleted owner's wallets refuse movements",
            |w| {
                w.run(Command::SetOwnerStatus { owner: w.s, status: OwnerStatus::Deleted }).unwrap();
                w.mv(MoneyOp::Transfer { from: w.op, to: w.sub, amount: usd(1) })
            },
            "owner_not_active",
        ),
        (
            "a deleted owner cannot come back",
            |w| {
                w.run(Command::SetOwnerStatus { owner: w.s, status: OwnerStatus::Deleted }).unwrap();
                w.run(Command::SetOwnerStatus { owner: w.s, status: OwnerStatus::Active })
            },
            "invalid_transition",
        ),
        (
            "a second wallet of the same type and currency is refused",
            |w| {
                let m = w.m;
                w.run(Command::OpenWallet {
                    owner: m,
                    wallet_type: WalletType::Operating,
                    currency: "USD".parse().unwrap(),
                    overdraft_limit: 0,
                    min_balance: 0,
                })
            },
            "wallet_exists",
        ),
        (
            "a wallet in an unknown currency is refused",
            |w| {
                let m = w.m;
                w.run(Command::OpenWallet {
                    owner: m,
                    wallet_type: WalletType::Gift,
                    currency: "ZZZ".parse().unwrap(),
                    overdraft_limit: 0,
                    min_balance: 0,
                })
            },
            "unknown_currency",
        ),
        (
            "a sub-merchant cannot have sub-merchants",
            |w| {
                let s = w.s;
                w.run(Command::CreateMerchant { parent: s, name: "x".into(), default_currency: None })
            },
            "invalid_argument",
        ),
        (
            "a platform may not lower an exponent",
            |w| {
                w.run(Command::CreatePlatform {
                    name: "Q".into(),
                    default_currency: "USD".parse().unwrap(),
                    currency_exponents: [("USD".parse().unwrap(), 1)].into(),
                })
            },
            "invalid_argument",
        ),
        (
            "an empty idempotency key is refused",
            |w| {
                let p = w.p;
                let op = w.op;
                w.run(Command::Move(Movement {
                    platform: p,
                    idempotency_key: String::new(),
                    metadata: Default::default(),
                    op: MoneyOp::Payout { account: op, amount: usd(1) },
                }))
            },
            "invalid_argument",
        ),
        (
            "an over-long idempotency key is refused",
            |w| {
                let p = w.p;
                let op = w.op;
                w.run(Command::Move(Movement {
                    platform: p,
                    idempotency_key: "k".repeat(256),
                    metadata: Default::default(),
                    op: MoneyOp::Payout { account: op, amount: usd(1) },
                }))
            },
            "invalid_argument",
        ),
        (
            "a reversal cannot be reversed",
            |w| {
                let p = w.p;
                let op = w.op;
                w.l.insert_entry_ref(EntryRef {
                    seq: 77,
                    platform: p,
                    kind: EntryKind::Reversal,
                    posted: vec![(op, 1)],
                    reversed_by: None,
                });
                w.mv(MoneyOp::Reverse { seq: 77 })
            },
            "not_reversible",
        ),
        (
            "an entry of another platform is not found",
            |w| {
                let op = w.op;
                w.l.insert_entry_ref(EntryRef {
                    seq: 78,
                    platform: OwnerId(uuid::Uuid::from_u128(5)),
                    kind: EntryKind::Deposit,
                    posted: vec![(op, 1)],
                    reversed_by: None,
                });
                w.mv(MoneyOp::Reverse { seq: 78 })
            },
            "transaction_not_found",
        ),
        (
            "a balance past the bound is refused, not wrapped",
            |w| w.mv(MoneyOp::Deposit { account: w.op, amount: usd(i64::MAX / 4), source: SystemAccount::External }),
            "amount_out_of_range",
        ),
        (
            "an FX conversion needs two currencies",
            |w| {
                w.mv(MoneyOp::FxConvert {
                    from: w.op,
                    to: w.res,
                    amount: usd(100),
                    rate: "1.1".parse().unwrap(),
                    rate_source: None,
                })
            },
            "invalid_argument",
        ),
        (
            "an FX conversion is within one owner",
            |w| {
                w.mv(MoneyOp::FxConvert {
                    from: w.sub,
                    to: w.op_eur,
                    amount: usd(100),
                    rate: "1.1".parse().unwrap(),
                    rate_source: None,
                })
            },
            "invalid_argument",
        ),
    ];
    for (what, f, want) in cases {
        let mut w = World::new();
        w.deposit(w.op, usd(10_000));
        let before = (w.bal(w.op), w.bal(w.sub), w.bal(w.res), w.l.counters());
        let got = code(f(&mut w));
        assert_eq!(got, want, "{what}");
        // A refused money movement changes no balance and takes no sequence number.
        if want != "ok"
            && !what.contains("frozen")
            && !what.contains("deleted")
            && !what.contains("reopen")
            && !what.contains("reversal")
        {
            assert_eq!((w.bal(w.op), w.bal(w.sub), w.bal(w.res), w.l.counters()), before, "{what}: state changed");
        }
        assert!(w.conserved(), "{what}");
    }
}

#[test]
fn deposit_payout_transfer_fee_move_money_double_entry() {
    let mut w = World::new();
    w.deposit(w.op, usd(10_000));
    assert_eq!(w.bal(w.op), (10_000, 0, 0));
    // Payout may take everything above min_balance (10.00).
    w.ok(MoneyOp::Payout { account: w.op, amount: usd(9_000) });
    assert_eq!(w.bal(w.op), (1_000, 0, 0));
    w.ok(MoneyOp::Transfer { from: w.op, to: w.sub, amount: usd(400) });
    // Transfers are not payouts: they may go below min_balance.
    w.ok(MoneyOp::Transfer { from: w.op, to: w.sub, amount: usd(500) });
    w.ok(MoneyOp::Fee { account: w.sub, amount: usd(50) });
    assert_eq!(w.bal(w.op), (100, 0, 0));
    assert_eq!(w.bal(w.sub), (850, 0, 0));
    let fees = w.l.account_by_key(w.p, AccountKind::System(SystemAccount::Fees), "USD".parse().unwrap()).unwrap();
    assert_eq!(fees.posted, 50);
    let ext = w.l.account_by_key(w.p, AccountKind::System(SystemAccount::External), "USD".parse().unwrap()).unwrap();
    assert_eq!(ext.posted, -10_000 + 9_000);
    assert!(w.conserved());
}

#[test]
fn holds_count_against_available_and_capture_partially() {
    let mut w = World::new();
    w.deposit(w.op, usd(10_000));
    let h = w.hold(w.op, usd(3_000), None);
    assert_eq!(w.bal(w.op), (10_000, 3_000, 0));
    assert_eq!(w.l.account(w.op).unwrap().available(), 7_000);
    // The held part cannot be paid out.
    assert_eq!(code(w.mv(MoneyOp::Payout { account: w.op, amount: usd(6_001) })), "below_min_balance");
    assert_eq!(
        code(w.mv(MoneyOp::HoldCapture { hold: h, amount: Some(usd(3_001)), destination: AccountRef::Id(w.sub) })),
        "capture_exceeds_hold"
    );
    // Partial capture moves 20.00 and releases the rest.
    w.ok(MoneyOp::HoldCapture { hold: h, amount: Some(usd(2_000)), destination: AccountRef::Id(w.sub) });
    assert_eq!(w.bal(w.op), (8_000, 0, 0));
    assert_eq!(w.bal(w.sub), (2_000, 0, 0));
    assert_eq!(w.l.hold(h).unwrap().status, HoldStatus::Captured);
    assert_eq!(code(w.mv(MoneyOp::HoldRelease { hold: h })), "hold_not_open");
    // Full capture into a system account.
    let h2 = w.hold(w.op, usd(1_000), None);
    w.ok(MoneyOp::HoldCapture {
        hold: h2,
        amount: None,
        destination: AccountRef::System(SystemAccount::External, "USD".parse().unwrap()),
    });
    assert_eq!(w.bal(w.op), (7_000, 0, 0));
    assert!(w.conserved());
}

#[test]
fn holds_expire_only_at_their_deadline_and_then_cannot_be_captured() {
    let mut w = World::new();
    w.deposit(w.op, usd(10_000));
    let deadline = w.now + 10_000;
    let h = w.hold(w.op, usd(1_000), Some(deadline));
    assert_eq!(w.l.due_holds(Timestamp(deadline - 1), 10), vec![]);
    assert_eq!(w.l.next_deadline(), Some(Timestamp(deadline)));
    assert_eq!(code(w.run(Command::Move(coffer_core::ledger::expiry_movement(w.p, h)))), "hold_not_due");
    w.now = deadline; // the next command runs after the deadline
    assert_eq!(
        code(w.mv(MoneyOp::HoldCapture { hold: h, amount: None, destination: AccountRef::Id(w.sub) })),
        "hold_expired"
    );
    assert_eq!(w.l.due_holds(Timestamp(deadline), 10), vec![(w.p, h)]);
    assert_eq!(code(w.mv(MoneyOp::HoldExpire { hold: h })), "invalid_argument", "callers cannot expire holds");
    w.run(Command::Move(coffer_core::ledger::expiry_movement(w.p, h))).unwrap();
    assert_eq!(w.bal(w.op), (10_000, 0, 0));
    assert_eq!(w.l.hold(h).unwrap().status, HoldStatus::Expired);
    assert_eq!(w.l.next_deadline(), None);
}

#[test]
fn incoming_credits_settle_into_posted_or_cancel() {
    let mut w = World::new();
    let inc = |o: Outcome| match o {
        Outcome::Entry { incoming: Some(i), .. } => i.id,
        o => panic!("{o:?}"),
    };
    let i1 = inc(w.ok(MoneyOp::IncomingCreate { account: w.op, amount: usd(500) }));
    let i2 = inc(w.ok(MoneyOp::IncomingCreate { account: w.op, amount: usd(700) }));
    assert_eq!(w.bal(w.op), (0, 0, 1_200));
    assert_eq!(w.l.account(w.op).unwrap().available(), 0, "incoming is not available");
    w.ok(MoneyOp::IncomingSettle { incoming: i1 });
    w.ok(MoneyOp::IncomingCancel { incoming: i2 });
    assert_eq!(w.bal(w.op), (500, 0, 0));
    assert_eq!(code(w.mv(MoneyOp::IncomingSettle { incoming: i2 })), "incoming_not_pending");
    assert!(w.conserved());
}

#[test]
fn reversal_posts_the_opposite_once() {
    let mut w = World::new();
    w.deposit(w.op, usd(10_000));
    w.ok(MoneyOp::Transfer { from: w.op, to: w.sub, amount: usd(2_500) });
    let seq = w.l.counters().next_seq - 1;
    // A store loads the entry before the reversal runs.
    w.l.insert_entry_ref(EntryRef {
        seq,
        platform: w.p,
        kind: EntryKind::Transfer,
        posted: vec![(w.op, -2_500), (w.sub, 2_500)],
        reversed_by: None,
    });
    w.ok(MoneyOp::Reverse { seq });
    assert_eq!(w.bal(w.op), (10_000, 0, 0));
    assert_eq!(w.bal(w.sub), (0, 0, 0));
    assert_eq!(code(w.mv(MoneyOp::Reverse { seq })), "already_reversed");
}

#[test]
fn idempotency_replays_the_same_request_and_refuses_another() {
    let mut w = World::new();
    let mv = |w: &World, amount: i64| {
        Command::Move(Movement {
            platform: w.p,
            idempotency_key: "dep-1".into(),
            metadata: Default::default(),
            op: MoneyOp::Deposit { account: w.op, amount: usd(amount), source: SystemAccount::External },
        })
    };
    let first = w.run(mv(&w, 100)).unwrap();
    let Outcome::Entry { entry, .. } = first else { panic!() };
    assert_eq!(w.run(mv(&w, 100)).unwrap(), Outcome::Replay { seq: entry.seq });
    assert_eq!(code(w.run(mv(&w, 101))), "idempotency_conflict");
    assert_eq!(w.bal(w.op), (100, 0, 0));
}

#[test]
fn fx_conversion_moves_two_linked_legs_through_clearing() {
    let mut w = World::new();
    w.deposit(w.op, usd(10_000));
    // 100.00 USD at 0.9215 EUR per USD = 92.15 EUR
    let out = w.ok(MoneyOp::FxConvert {
        from: w.op,
        to: w.op_eur,
        amount: usd(10_000),
        rate: "0.9215".parse().unwrap(),
        rate_source: None,
    });
    let Outcome::Entry { entry, .. } = out else { panic!() };
    assert_eq!(entry.lines.len(), 4);
    assert_eq!(entry.fx.as_ref().unwrap().to_amount, 9_215);
    assert_eq!(w.bal(w.op_eur), (9_215, 0, 0));
    assert_eq!(w.bal(w.op), (0, 0, 0));
    let fx_usd =
        w.l.account_by_key(w.p, AccountKind::System(SystemAccount::FxClearing), "USD".parse().unwrap()).unwrap();
    assert_eq!(fx_usd.posted, 10_000);
    assert!(w.conserved());
}

#[test]
fn platform_exponent_override_applies_to_its_wallets() {
    let mut w = World::new();
    let q = w.owner(Command::CreatePlatform {
        name: "Metered".into(),
        default_currency: "USD".parse().unwrap(),
        currency_exponents: [("USD".parse().unwrap(), 4)].into(),
    });
    let a = w.wallet(q, WalletType::Operating, "USD", 0);
    assert_eq!(w.l.account(a).unwrap().exponent, 4);
    assert_eq!(w.l.account(w.op).unwrap().exponent, 2);
}

#[test]
fn overdraft_limit_lets_available_go_negative_up_to_the_limit() {
    let mut w = World::new();
    w.run(Command::SetWalletLimits { account: w.sub, overdraft_limit: Some(500), min_balance: None }).unwrap();
    w.ok(MoneyOp::Fee { account: w.sub, amount: usd(500) });
    assert_eq!(w.bal(w.sub), (-500, 0, 0));
    assert_eq!(code(w.mv(MoneyOp::Fee { account: w.sub, amount: usd(1) })), "insufficient_funds");
    // Payouts never use the overdraft.
    w.deposit(w.sub, usd(600));
    assert_eq!(code(w.mv(MoneyOp::Payout { account: w.sub, amount: usd(101) })), "insufficient_funds");
}

#[test]
fn accounts_of_another_platform_are_not_found() {
    let mut w = World::new();
    let q = w.owner(Command::CreatePlatform {
        name: "Q".into(),
        default_currency: "USD".parse().unwrap(),
        currency_exponents: Default::default(),
    });
    let qm = w.owner(Command::CreateMerchant { parent: q, name: "QM".into(), default_currency: None });
    let qa = w.wallet(qm, WalletType::Operating, "USD", 0);
    w.deposit(w.op, usd(100));
    assert_eq!(code(w.mv(MoneyOp::Transfer { from: w.op, to: qa, amount: usd(1) })), "account_not_found");
}

#[test]
fn a_status_change_takes_its_own_journal_number_between_the_entries_around_it() {
    let mut w = World::new();
    w.l.take_changes();
    w.deposit(w.op, usd(500));
    let (op, m) = (w.op, w.m);
    w.run(Command::SetWalletStatus { account: op, status: WalletStatus::Frozen }).unwrap();
    // The same status again changes nothing and records nothing.
    w.run(Command::SetWalletStatus { account: op, status: WalletStatus::Frozen }).unwrap();
    w.run(Command::SetWalletStatus { account: op, status: WalletStatus::Active }).unwrap();
    w.run(Command::SetOwnerStatus { owner: w.s, status: OwnerStatus::Suspended }).unwrap();
    w.deposit(w.res, usd(1));
    let c = w.l.take_changes();
    let entries: Vec<Seq> = c.entries.iter().map(|e| e.seq).collect();
    let statuses: Vec<(Seq, &str, &str, OwnerId)> =
        c.statuses.iter().map(|s| (s.seq, s.from.as_str(), s.to.as_str(), s.owner)).collect();
    let first = entries[0];
    assert_eq!(entries, vec![first, first + 4]);
    assert_eq!(
        statuses,
        vec![
            (first + 1, "ACTIVE", "FROZEN", m),
            (first + 2, "FROZEN", "ACTIVE", m),
            (first + 3, "ACTIVE", "SUSPENDED", w.s)
        ]
    );
    assert_eq!(c.statuses[0].subject, StatusSubject::Wallet(op));
    assert_eq!(c.statuses[2].subject, StatusSubject::Owner(w.s));
    assert!(c.statuses.iter().all(|s| s.platform == w.p));
    assert_eq!(events::of_status(&c.statuses[0]), EventType::WalletStatusChanged);
    assert_eq!(events::of_status(&c.statuses[2]), EventType::OwnerStatusChanged);
}
