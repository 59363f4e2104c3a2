//! Recompute every balance from the journal and compare with the stored state. Pure: a store
//! feeds it each account's lines (in `seq` order per account), each entry's lines (for
//! conservation), and then the stored accounts, open holds and pending incoming credits.

use std::collections::HashMap;

use crate::model::*;
use crate::money::CurrencyCode;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Running {
    posted: i128,
    held: i128,
    incoming: i128,
    last_seq: Seq,
}

#[derive(Debug, Default)]
pub struct Verifier {
    running: HashMap<AccountId, Running>,
    problems: Vec<String>,
    entries: u64,
    lines: u64,
    entry_lines: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub entries: u64,
    pub lines: u64,
    pub accounts: u64,
    /// One human-readable line per difference; empty when the ledger is consistent.
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a problem the store found itself (e.g. a missing line).
    pub fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    /// Feed one account's journal line; each account's lines must come in `seq` order.
    pub fn account_line(&mut self, seq: Seq, l: &Line) {
        self.lines += 1;
        let r = self.running.entry(l.account).or_default();
        if seq <= r.last_seq {
            self.problems.push(format!("account {}: line {seq} comes after line {}", l.account, r.last_seq));
        }
        r.last_seq = seq;
        r.posted += l.posted as i128;
        r.held += l.held as i128;
        r.incoming += l.incoming as i128;
        let journal = (l.posted_after as i128, l.held_after as i128, l.incoming_after as i128);
        if (r.posted, r.held, r.incoming) != journal {
            self.problems.push(format!(
                "entry {seq}: account {} running balance (posted, held, incoming) recomputes to {:?}, the line records {:?}",
                l.account,
                (r.posted, r.held, r.incoming),
                journal
            ));
            // Resynchronise so that one bad line is reported once.
            (r.posted, r.held, r.incoming) = journal;
        }
    }

    /// Feed one entry with its lines: its posted deltas must sum to zero per currency.
    pub fn entry(&mut self, seq: Seq, lines: &[Line]) {
        self.entries += 1;
        self.entry_lines += lines.len() as u64;
        if lines.is_empty() {
            self.problems.push(format!("entry {seq} has no lines"));
        }
        let mut sums: Vec<(CurrencyCode, i128)> = Vec::new();
        for l in lines {
            match sums.iter_mut().find(|(c, _)| *c == l.currency) {
                Some((_, s)) => *s += l.posted as i128,
                None => sums.push((l.currency, l.posted as i128)),
            }
        }
        for (c, s) in sums {
            if s != 0 {
                self.problems.push(format!("entry {seq}: postings in {c} sum to {s}, not zero"));
            }
        }
    }

    /// Compare with the stored state and produce the report.
    pub fn finish<'a>(
        mut self,
        accounts: impl IntoIterator<Item = &'a Account>,
        open_holds: impl IntoIterator<Item = &'a Hold>,
        pending: impl IntoIterator<Item = &'a Incoming>,
    ) -> Report {
        if self.entry_lines != self.lines {
            self.problems.push(format!(
                "entries list {} lines but the accounts' journals hold {}",
                self.entry_lines, self.lines
            ));
        }
        let mut held: HashMap<AccountId, i128> = HashMap::new();
        for h in open_holds {
            *held.entry(h.account).or_default() += h.amount as i128;
        }
        let mut incoming: HashMap<AccountId, i128> = HashMap::new();
        for i in pending {
            *incoming.entry(i.account).or_default() += i.amount as i128;
        }
        let mut n = 0u64;
        for a in accounts {
            n += 1;
            let r = self.running.remove(&a.id).unwrap_or_default();
            let stored = (a.posted as i128, a.held as i128, a.incoming as i128);
            if (r.posted, r.held, r.incoming) != stored {
                self.problems.push(format!(
                    "account {} ({} {}): stored (posted, held, incoming) {:?}, journal sums to {:?}",
                    a.id,
                    a.kind,
                    a.currency,
                    stored,
                    (r.posted, r.held, r.incoming)
                ));
            }
            let h = held.remove(&a.id).unwrap_or(0);
            if h != a.held as i128 {
                self.problems.push(format!("account {}: held {} but its open holds sum to {h}", a.id, a.held));
            }
            let i = incoming.remove(&a.id).unwrap_or(0);
            if i != a.incoming as i128 {
                self.problems
                    .push(format!("account {}: incoming {} but its pending credits sum to {i}", a.id, a.incoming));
            }
            if let Some(limit) = a.overdraft_limit {
                if a.available() < -limit {
                    self.problems.push(format!(
                        "account {}: available {} is below minus its overdraft limit {limit}",
                        a.id,
                        a.available()
                    ));
                }
            }
        }
        for id in self.running.keys() {
            self.problems.push(format!("journal lines name account {id}, which is not stored"));
        }
        for id in held.keys() {
            self.problems.push(format!("open holds name account {id}, which is not stored"));
        }
        for id in incoming.keys() {
            self.problems.push(format!("pending credits name account {id}, which is not stored"));
        }
        Report { entries: self.entries, lines: self.lines, accounts: n, problems: self.problems }
    }
}
