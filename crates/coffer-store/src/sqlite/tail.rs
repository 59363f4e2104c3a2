//! The journal's tail: what the entries committed after the last checkpoint add to the derived
//! state, kept in memory until the writer's next checkpoint writes it to disk (see the module
//! doc of `sqlite`). Readers merge it with the derived rows on disk, so every read sees every
//! acknowledged write: an account's lines and running balances, and idempotency keys.

use std::collections::HashMap;

use coffer_core::*;

pub use crate::codec::Values;

/// One account's line of an entry in the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailLine {
    pub seq: Seq,
    pub kind: EntryKind,
    pub created_at: Timestamp,
    pub v: Values,
}

/// An entry in the tail: what the checkpoint writes of it.
#[derive(Debug, Clone)]
pub struct TailEntry {
    pub seq: Seq,
    pub idem_hash: i64,
}

/// A committed entry as the tail takes it: its lines with their accounts' numbers.
#[derive(Debug, Clone)]
pub struct Journaled {
    pub entry: TailEntry,
    pub kind: EntryKind,
    pub created_at: Timestamp,
    pub lines: Vec<(i64, Values)>,
}

#[derive(Debug, Default)]
pub struct Tail {
    /// The derived rows on disk cover exactly the entries with seq <= `checkpoint`.
    pub checkpoint: Seq,
    /// The entries after it, in seq order.
    pub entries: Vec<TailEntry>,
    /// Each account's (by number) lines in the tail, in seq order.
    pub by_account: HashMap<i64, Vec<TailLine>>,
    /// Idempotency hash -> the tail entries with it.
    idem: HashMap<i64, Vec<Seq>>,
}

impl Tail {
    pub fn new(checkpoint: Seq) -> Self {
        Tail { checkpoint, ..Default::default() }
    }

    /// Add a committed entry (entries come in seq order).
    pub fn push(&mut self, j: Journaled) {
        let Journaled { entry: e, kind, created_at, lines } = j;
        debug_assert!(self.entries.last().is_none_or(|l| l.seq < e.seq), "tail entries in seq order");
        for &(no, v) in &lines {
            self.by_account.entry(no).or_default().push(TailLine { seq: e.seq, kind, created_at, v });
        }
        self.idem.entry(e.idem_hash).or_default().push(e.seq);
        self.entries.push(e);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last seq in the tail, or the checkpoint when it is empty.
    pub fn last_seq(&self) -> Seq {
        self.entries.last().map_or(self.checkpoint, |e| e.seq)
    }

    /// The derived rows on disk now cover every entry up to `seq`: keep only what follows.
    pub fn checkpointed(&mut self, seq: Seq) {
        if seq >= self.last_seq() {
            *self = Tail::new(seq);
            return;
        }
        let keep = self.entries.partition_point(|e| e.seq <= seq);
        self.entries.drain(..keep);
        self.by_account.retain(|_, lines| {
            lines.retain(|l| l.seq > seq);
            !lines.is_empty()
        });
        self.idem.retain(|_, seqs| {
            seqs.retain(|s| *s > seq);
            !seqs.is_empty()
        });
        self.checkpoint = seq;
    }

    /// Tail entries whose idempotency hash is `hash`.
    pub fn idem(&self, hash: i64) -> &[Seq] {
        self.idem.get(&hash).map_or(&[], Vec::as_slice)
    }

    /// The account's tail lines with `after < seq < before`, newest first, at most `limit`.
    pub fn history(&self, account_no: i64, before: Seq, after: Seq, limit: usize) -> Vec<TailLine> {
        let Some(lines) = self.by_account.get(&account_no) else { return Vec::new() };
        lines.iter().rev().filter(|l| l.seq < before && l.seq > after).take(limit).copied().collect()
    }

    /// The account's balances (posted, held, incoming) just after `seq`, if a tail line of the
    /// account is at or before it.
    pub fn balance_at(&self, account_no: i64, seq: Seq) -> Option<(i64, i64, i64)> {
        let lines = self.by_account.get(&account_no)?;
        let l = lines.iter().rev().find(|l| l.seq <= seq)?;
        Some((l.v[3], l.v[4], l.v[5]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_and_balances_read_the_tail() {
        let mut t = Tail::new(10);
        let j = |seq, at, lines: Vec<(i64, Values)>| Journaled {
            entry: TailEntry { seq, idem_hash: 5 },
            kind: EntryKind::Transfer,
            created_at: Timestamp(at),
            lines,
        };
        t.push(j(11, 1, vec![(1, [10, 0, 0, 10, 0, 0]), (2, [-10, 0, 0, -10, 0, 0])]));
        t.push(j(13, 2, vec![(1, [5, 0, 0, 15, 0, 0])]));
        assert_eq!(t.history(1, u64::MAX, 0, 10).iter().map(|l| l.seq).collect::<Vec<_>>(), vec![13, 11]);
        assert_eq!(t.history(1, 13, 0, 10).len(), 1);
        assert_eq!(t.balance_at(1, 12), Some((10, 0, 0)));
        assert_eq!(t.balance_at(1, 10), None);
        assert_eq!(t.idem(5), &[11, 13]);
        assert_eq!((t.len(), t.last_seq()), (2, 13));
        t.checkpointed(11);
        assert_eq!((t.len(), t.checkpoint, t.idem(5)), (1, 11, &[13][..]));
        assert_eq!(t.history(2, u64::MAX, 0, 10), vec![]);
        t.checkpointed(13);
        assert!(t.is_empty() && t.checkpoint == 13 && t.idem(5).is_empty());
    }
}
