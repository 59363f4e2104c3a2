//! The projector: writes the derived `lines` table (each account's lines, for history and
//! as-of balances) behind the journal, so that a commit writes only the entries, with their
//! lines inside (see the module doc of `postgres`).
//!
//! Every node runs one; one at a time works: a step is one transaction that holds the row of
//! `coffer_projection` (`FOR UPDATE SKIP LOCKED`: the others skip), projects the entries after
//! `projected_seq` that are certain to be final and moves `projected_seq` to the last of them.
//! A node that dies mid-step loses its connection, the server rolls the step back and releases
//! the row: the next node's step takes over, with nothing to hand over.
//!
//! **Which entries are final.** Entry numbers come from a sequence, so a batch with a lower
//! number can commit after one with a higher number, and a batch that rolls back leaves a gap
//! for ever. The projector never passes a missing number until it knows the missing number is
//! dead: every batch takes a transaction id before it takes its numbers, so when a snapshot
//! shows entry `s` but not some `g < s`, the batch holding `g` took its id before that
//! snapshot's `xmax`. Once a later snapshot's `xmin` (the oldest transaction still running) is
//! at least that `xmax`, the batch has ended: every number below `s` it does not show is a
//! rolled-back batch's. [`frontier`] is that rule over plain data. A status change holds a
//! number of its own (`status_changes`): shown, it counts like an entry (with no lines).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::Notify;

use crate::codec::LINE_BYTES;
use crate::StoreError;

/// Most entries one step projects.
pub const STEP_ENTRIES: i64 = 10_000;
/// Wait between two steps when the last one found less than a full step to do.
const IDLE: Duration = Duration::from_millis(25);
/// Wait after a failed step (the database away, say).
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// One word of line `i` of `e.lines`, in SQL: `0` is the account number, `1..=6` the values
/// (big-endian, see [`crate::codec`]).
fn word(k: usize) -> String {
    format!("('x' || encode(substring(e.lines FROM i * {LINE_BYTES} + {} FOR 8), 'hex'))::bit(64)::BIGINT", k * 8 + 1)
}

/// SQL: every line of the entries `e` that `filter` (a condition on `e`) selects, as rows of
/// (account_no, seq, posted, held, incoming, posted_after, held_after, incoming_after): the
/// `lines` table's columns.
pub fn decoded_lines(filter: &str) -> String {
    format!(
        "SELECT {} AS account_no, e.seq, {} AS posted, {} AS held, {} AS incoming, {} AS posted_after,
           {} AS held_after, {} AS incoming_after
         FROM entries e CROSS JOIN LATERAL generate_series(0, length(e.lines) / {LINE_BYTES} - 1) AS i
         WHERE {filter}",
        word(0),
        word(1),
        word(2),
        word(3),
        word(4),
        word(5),
        word(6)
    )
}

/// SQL condition: entry `e` has a line of the account whose 8-byte number is `param`
/// (a `BYTEA`), or with `any`, of one of the numbers in `param` (a `BYTEA[]`).
pub fn names_account(param: &str, any: bool) -> String {
    let test = if any { format!("= ANY({param})") } else { format!("= {param}") };
    format!(
        "EXISTS (SELECT 1 FROM generate_series(0, length(e.lines) / {LINE_BYTES} - 1) AS i
                 WHERE substring(e.lines FROM i * {LINE_BYTES} + 1 FOR 8) {test})"
    )
}

/// What a snapshot tells about running transactions (transaction ids as numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The oldest transaction still running.
    pub xmin: i64,
    /// The first transaction id not yet handed out.
    pub xmax: i64,
}

/// Every entry number below `below` is final once a snapshot's `xmin` is at least `xid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub below: i64,
    pub xid: i64,
}

/// How far projection may go: given the projected position `p`, the entry numbers after it
/// that snapshot `snap` shows (ascending), and what an earlier step left pending, the new
/// position and what is pending now.
pub fn frontier(p: i64, seqs: &[i64], snap: Snapshot, pending: Option<Pending>) -> (i64, Option<Pending>) {
    let decided = pending.filter(|x| snap.xmin >= x.xid);
    let final_below = decided.map_or(p + 1, |x| x.below.max(p + 1));
    let mut q = p;
    for &s in seqs {
        // Every number between q and s is missing: s may be taken only if they are all dead.
        if s == q + 1 || s <= final_below {
            q = s;
        } else {
            break;
        }
    }
    let stuck = seqs.last().is_some_and(|last| *last > q);
    let pending = match pending {
        Some(x) if decided.is_none() => Some(x),
        _ if stuck => Some(Pending { below: *seqs.last().expect("stuck means shown"), xid: snap.xmax }),
        _ => None,
    };
    (q, pending)
}

/// A node's projector: what it remembers between its steps.
#[derive(Default)]
pub struct Projector {
    pending: Option<Pending>,
}

impl Projector {
    /// One step: `None` when another node is projecting, else how many entries were projected.
    pub async fn step(&mut self, c: &impl GenericClient) -> Result<Option<i64>, StoreError> {
        let lock = c.prepare_cached("SELECT projected_seq FROM coffer_projection FOR UPDATE SKIP LOCKED").await?;
        let look = c
            .prepare_cached(
                "SELECT pg_snapshot_xmin(s)::text::BIGINT, pg_snapshot_xmax(s)::text::BIGINT,
                   ARRAY(SELECT seq FROM entries WHERE seq > (SELECT projected_seq FROM coffer_projection)
                         UNION ALL
                         SELECT seq FROM status_changes WHERE seq > (SELECT projected_seq FROM coffer_projection)
                         ORDER BY seq LIMIT $1)
                 FROM pg_current_snapshot() AS s",
            )
            .await?;
        let project = c
            .prepare_cached(&format!(
                "INSERT INTO lines (account_no, seq, posted, held, incoming, posted_after, held_after, incoming_after)
                 {}",
                decoded_lines("e.seq > $1 AND e.seq <= $2")
            ))
            .await?;
        let advance = c.prepare_cached("UPDATE coffer_projection SET projected_seq = $1").await?;
        let (_, locked, seen) = futures_util::try_join!(
            c.batch_execute("BEGIN"),
            c.query_opt(&lock, &[]),
            c.query_one(&look, &[&STEP_ENTRIES]),
        )?;
        let Some(locked) = locked else {
            c.batch_execute("COMMIT").await?;
            return Ok(None);
        };
        let p: i64 = locked.try_get(0)?;
        let snap = Snapshot { xmin: seen.try_get(0)?, xmax: seen.try_get(1)? };
        let seqs: Vec<i64> = seen.try_get(2)?;
        let (q, pending) = frontier(p, &seqs, snap, self.pending);
        self.pending = pending;
        if q == p {
            c.batch_execute("COMMIT").await?;
            return Ok(Some(0));
        }
        let (range, to): (
            [&(dyn tokio_postgres::types::ToSql + Sync); 2],
            [&(dyn tokio_postgres::types::ToSql + Sync); 1],
        ) = ([&p, &q], [&q]);
        futures_util::try_join!(c.execute(&project, &range), c.execute(&advance, &to), c.batch_execute("COMMIT"))?;
        Ok(Some(seqs.iter().take_while(|s| **s <= q).count() as i64))
    }
}

/// The node's projector task: a step, then another at once while there is a full step's work,
/// else after [`IDLE`]; until `stop` is notified.
pub async fn run(pool: Pool, stop: Arc<Notify>) {
    let mut p = Projector::default();
    loop {
        let wait = match pool.get().await {
            Ok(c) => match p.step(&c).await {
                Ok(Some(n)) if n >= STEP_ENTRIES => Duration::ZERO,
                Ok(_) => IDLE,
                Err(e) => {
                    crate::logs::error("projection step failed", &e);
                    // The step may have left its transaction open: end it, or drop the connection.
                    if c.batch_execute("ROLLBACK").await.is_err() {
                        drop(deadpool_postgres::Object::take(c));
                    }
                    AFTER_FAILURE
                }
            },
            Err(e) => {
                crate::logs::error("projection step found no connection", &StoreError::from(e));
                AFTER_FAILURE
            }
        };
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Snapshot = Snapshot { xmin: 100, xmax: 110 };

    #[test]
    fn contiguous_numbers_are_projected() {
        assert_eq!(frontier(10, &[11, 12, 13], S, None), (13, None));
        assert_eq!(frontier(10, &[], S, None), (10, None));
    }

    #[test]
    fn a_gap_waits_until_every_batch_that_could_fill_it_has_ended() {
        // 12 is missing: stop before it, remember what would decide it.
        let (q, pending) = frontier(10, &[11, 13, 14], S, None);
        assert_eq!((q, pending), (11, Some(Pending { below: 14, xid: 110 })));
        // A transaction older than 110 still runs: no progress, the same pending.
        let (q, again) = frontier(11, &[13, 14, 15], Snapshot { xmin: 105, xmax: 120 }, pending);
        assert_eq!((q, again), (11, pending));
        // All of them ended and 12 still is not there: it is dead; 15 follows 14.
        let (q, after) = frontier(11, &[13, 14, 15], Snapshot { xmin: 110, xmax: 120 }, pending);
        assert_eq!((q, after), (15, None));
        // Filled meanwhile: simply contiguous.
        assert_eq!(frontier(11, &[12, 13, 14], Snapshot { xmin: 105, xmax: 120 }, pending), (14, pending));
    }

    #[test]
    fn a_decided_gap_does_not_let_a_later_gap_through() {
        let pending = Some(Pending { below: 14, xid: 110 });
        // 12 dead, 16 missing (beyond what the pending decided): stop at 15, new pending.
        let (q, next) = frontier(11, &[13, 14, 15, 17], Snapshot { xmin: 110, xmax: 130 }, pending);
        assert_eq!((q, next), (15, Some(Pending { below: 17, xid: 130 })));
    }
}
