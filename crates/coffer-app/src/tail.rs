//! The settled tail of each platform's journal, in memory, shared by every reader of the event
//! feed on this node (long-polling consumers and webhook deliveries): N readers following the
//! journal cost one store read per window, not N.
//!
//! Per platform the tail is a run of entry numbers `[first, next)` and every entry of the
//! platform in it, oldest first. Only settled entries are ever added (the caller asks for
//! `to <= settled`), and a settled entry never changes, so the tail is exact without any
//! invalidation. A reader asking within or just past the run extends it (one reader at a time
//! per platform reads the store, the others wait for its answer); a reader far ahead of it
//! moves the run to where it is; a reader behind it (catching up after an outage) reads the store
//! directly and leaves the tail to those at the head. Past [`KEPT`] entries the oldest go.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use coffer_core::{Entry, OwnerId, Seq};
use coffer_store::{Page, Store, StoreError};

/// Entry numbers one store read covers.
const WINDOW: u64 = 1000;
/// Entries kept per platform: some seconds of a busy platform's journal.
const KEPT: usize = 20_000;
/// Platforms whose tail is kept; past it every tail is dropped (and rebuilt by use).
const MAX_PLATFORMS: usize = 1000;

#[derive(Default)]
struct Run {
    first: Seq,
    next: Seq,
    entries: VecDeque<Arc<Entry>>,
}

pub struct Tail {
    runs: parking_lot::Mutex<HashMap<OwnerId, Arc<tokio::sync::Mutex<Run>>>>,
    kept: usize,
}

impl Default for Tail {
    fn default() -> Self {
        Tail::new(KEPT)
    }
}

impl Tail {
    /// A tail keeping up to `kept` entries per platform.
    pub fn new(kept: usize) -> Self {
        Tail { runs: Default::default(), kept }
    }

    fn run(&self, platform: OwnerId) -> Arc<tokio::sync::Mutex<Run>> {
        let mut runs = self.runs.lock();
        if runs.len() >= MAX_PLATFORMS && !runs.contains_key(&platform) {
            runs.clear();
        }
        runs.entry(platform).or_default().clone()
    }

    /// Every entry of `platform` numbered `from..=to`, oldest first. `to` must be settled
    /// (`Store::settled_seq`): the tail keeps what it read.
    pub async fn entries(
        &self,
        store: &dyn Store,
        platform: OwnerId,
        from: Seq,
        to: Seq,
    ) -> Result<Vec<Arc<Entry>>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let run = self.run(platform);
        let mut run = run.lock().await;
        // Far ahead (a new reader after a quiet spell): start the run where it is.
        if run.next == 0 || from > run.next.saturating_add(10 * WINDOW) {
            *run = Run { first: from, next: from, entries: VecDeque::new() };
        }
        if from < run.first {
            drop(run);
            return read(store, platform, from, to).await.map(|v| v.into_iter().map(Arc::new).collect());
        }
        while run.next <= to {
            let last = to.min(run.next.saturating_add(WINDOW - 1));
            let read = read(store, platform, run.next, last).await?;
            run.entries.extend(read.into_iter().map(Arc::new));
            run.next = last + 1;
        }
        let start = run.entries.partition_point(|e| e.seq < from);
        let end = run.entries.partition_point(|e| e.seq <= to);
        let found = run.entries.range(start..end).cloned().collect();
        while run.entries.len() > self.kept {
            let gone = run.entries.pop_front().map_or(run.first, |e| e.seq);
            run.first = gone + 1;
        }
        Ok(found)
    }
}

/// The entries of `platform` numbered `from..=last` from the store, oldest first, in windows.
async fn read(store: &dyn Store, platform: OwnerId, from: Seq, last: Seq) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    let mut at = from;
    while at <= last {
        let end = last.min(at.saturating_add(WINDOW - 1));
        let page = Page { after: Some(at.saturating_sub(1)), before: Some(end + 1), limit: WINDOW as usize };
        let mut got = store.entries(platform, page).await?;
        got.reverse();
        out.extend(got);
        at = end + 1;
    }
    Ok(out)
}
