//! Durability off the writer's critical path. The writer commits each batch to the WAL without
//! waiting for the disk (`synchronous = NORMAL`) and hands the batch's answers and published
//! state to the syncer, then starts on the next batch. The syncer calls `fdatasync` on the WAL
//! file, which makes every commit written before the call durable (the WAL is a log: a crash
//! keeps a prefix of its commits), and only then publishes those batches (balances, the
//! journal's tail) and answers their callers, in commit order. So a batch's fsync overlaps the
//! next batch's work, and nothing is answered or shown to a reader before it is on disk.
//!
//! A failed `fdatasync` leaves what is on disk unknown: every batch waiting on it and every
//! later one is answered with a storage error, and the store refuses writes until restarted
//! (opening replays the WAL: exactly the commits that reached the disk).

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use coffer_core::*;
use parking_lot::RwLock;

use super::tail::{Journaled, Tail};
use super::{Counters, Reply, View};
use crate::side::Side;
use crate::{Receipt, StoreError};

/// What a committed batch changes in the view readers see.
#[derive(Default)]
pub struct ViewUpdate {
    pub owners: Vec<Owner>,
    pub accounts: Vec<Account>,
    pub keys: Vec<ApiKey>,
}

/// A batch committed to the WAL, waiting for the disk.
pub struct Committed {
    pub view: ViewUpdate,
    pub tail: Vec<Journaled>,
    pub answers: Vec<(Reply, Result<Receipt, StoreError>)>,
    pub sides: Vec<Side>,
    /// The last journal number taken when the batch committed (by an entry or a status change).
    pub through: Seq,
}

pub struct Syncer {
    tx: Option<mpsc::Sender<Committed>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// What the syncer publishes to.
#[derive(Clone)]
pub struct Published {
    pub view: Arc<RwLock<View>>,
    pub tail: Arc<RwLock<Tail>>,
    pub counters: Arc<Counters>,
    /// Tests only: how long to wait before each `fdatasync` (a slow disk).
    pub delay: std::time::Duration,
}

impl Syncer {
    pub fn start(wal: File, to: Published) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Committed>();
        let handle = std::thread::Builder::new()
            .name("coffer-sync".into())
            .spawn(move || run(rx, wal, to))
            .map_err(|e| StoreError::Open(format!("cannot start the sync thread: {e}")))?;
        Ok(Syncer { tx: Some(tx), handle: Some(handle) })
    }

    pub fn send(&self, c: Committed) {
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(c)) = tx.send(c) {
                    fail(c, &StoreError::Storage("the sync thread has stopped".into()));
                }
            }
            None => fail(c, &StoreError::Closed),
        }
    }

    /// Wait until every batch sent so far is answered and published, then stop.
    pub fn finish(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(rx: mpsc::Receiver<Committed>, wal: File, to: Published) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        if !to.delay.is_zero() {
            std::thread::sleep(to.delay);
        }
        let syncing = std::time::Instant::now();
        let synced = if to.counters.failed.load(Ordering::Relaxed) {
            Err(StoreError::Storage("the store failed and must be restarted".into()))
        } else {
            wal.sync_data().map_err(|e| StoreError::Storage(format!("fdatasync of the WAL failed: {e}")))
        };
        metrics::histogram!("coffer_wal_sync_seconds").record(syncing.elapsed().as_secs_f64());
        metrics::histogram!("coffer_wal_sync_batches").record(batches.len() as f64);
        match synced {
            Ok(()) => batches.into_iter().for_each(|c| publish(c, &to)),
            Err(e) => {
                if !to.counters.failed.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "the WAL could not be made durable; refusing all writes until restarted");
                }
                batches.into_iter().for_each(|c| fail(c, &e));
            }
        }
    }
}

/// The batch is on disk: show it to readers, then answer its callers.
fn publish(c: Committed, to: &Published) {
    if !c.view.owners.is_empty() || !c.view.accounts.is_empty() || !c.view.keys.is_empty() {
        let mut v = to.view.write();
        if !c.view.owners.is_empty() || !c.view.keys.is_empty() {
            v.version += 1;
        }
        for o in c.view.owners {
            v.put_owner(o);
        }
        for a in c.view.accounts {
            v.put_account(a);
        }
        for k in c.view.keys {
            v.keys.insert(k.id.clone(), k);
        }
    }
    if !c.tail.is_empty() {
        let mut t = to.tail.write();
        for j in c.tail {
            t.push(j);
        }
    }
    // Numbers only grow; a batch without one leaves the position as it is.
    to.counters.durable_seq.fetch_max(c.through, Ordering::Release);
    c.sides.into_iter().for_each(|x| x.deliver(None));
    for (reply, answer) in c.answers {
        let _ = reply.send(answer);
    }
}

fn fail(c: Committed, e: &StoreError) {
    c.sides.into_iter().for_each(|x| x.deliver(Some(e)));
    for (reply, _) in c.answers {
        let _ = reply.send(Err(e.for_batch()));
    }
}
