//! The settled tail of each platform's journal, in memory, shared by every reader of the event
//! feed on this node (long-polling consumers and webhook deliveries): N readers following the
//! journal cost one store read per window, not N.
//!
//! Per platform the tail is a run of entry numbers `[first, next)` and every entry of the
//! platform in it, oldest first. Only settled entries are ever added (the caller asks for
//! `to <= settled`), and a settled entry never changes, so the tail is exact without any
//! invalidation. A reader asking within or just past the run extends it (one reader at a time
//! per platform reads the store, the others wait for its answer; at the head, at most once per
//! [`GAP`], readers meanwhile getting what the run holds); a reader far ahead of it
//! moves the run to where it is; a reader behind it (catching up after an outage) reads the store
//! directly and leaves the tail to those at the head. Past [`KEPT`] entries the oldest go.
//!
//! With the entries, the tail keeps the platform's status changes in the same numbers (each holds
//! a journal number of its own), and the platform's balance alerts, read after each extension:
//! an alert missing from that read was made after every entry then in the tail had settled
//! (`Store::put_alert`), so the list is exact for them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::alerts::Alert;
use coffer_core::{Entry, OwnerId, Seq, StatusChange};
use coffer_store::{Page, Store, StoreError};

use crate::directory::Directory;

/// Entry numbers one store read covers.
const WINDOW: u64 = 1000;
/// Entries kept per platform: some seconds of a busy platform's journal.
const KEPT: usize = 20_000;
/// A tail is extended at most this often: readers arriving meanwhile are answered from it as it
/// is, so a busy platform costs some tens of store reads a second, however many follow it.
const GAP: Duration = Duration::from_millis(20);
/// Platforms whose tail is kept; past it every tail is dropped (and rebuilt by use).
const MAX_PLATFORMS: usize = 1000;

#[derive(Default)]
struct Run {
    first: Seq,
    next: Seq,
    entries: VecDeque<Arc<Tailed>>,
    statuses: VecDeque<Arc<StatusChange>>,
    /// The platform's alerts, read after the last extension: exact for every entry before
    /// `next` (an alert missing from it was made after those entries settled).
    alerts: Arc<Vec<Alert>>,
    /// When it was last extended.
    extended: Option<Instant>,
}

/// An entry with the owner of each line's wallet (`None`: a system account), looked up once
/// for every reader.
#[derive(Debug)]
pub struct Tailed {
    pub entry: Entry,
    pub owners: Vec<Option<OwnerId>>,
}

/// Entries of a platform and the alerts that apply to them (`Store::alerts`).
pub struct Settled {
    /// Every entry of the platform numbered `from..=through`, oldest first.
    pub entries: Vec<Arc<Tailed>>,
    /// Every status change of the platform numbered `from..=through`, oldest first.
    pub statuses: Vec<Arc<StatusChange>>,
    /// `to`, or less when the tail was extended less than [`GAP`] ago (ask again later).
    pub through: Seq,
    pub alerts: Arc<Vec<Alert>>,
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
    pub async fn entries(&self, dir: &Directory, platform: OwnerId, from: Seq, to: Seq) -> Result<Settled, StoreError> {
        let run = self.run(platform);
        let mut run = run.lock().await;
        // Far ahead (a new reader after a quiet spell): start the run where it is.
        if run.next == 0 || from > run.next.saturating_add(10 * WINDOW) {
            *run = Run { first: from, next: from, ..Run::default() };
        }
        if from < run.first {
            drop(run);
            let (entries, statuses) = read(dir, platform, from, to).await?;
            let alerts = Arc::new(dir.alerts(platform).await?);
            return Ok(Settled { entries, statuses, through: to, alerts });
        }
        // A whole window past the run is a reader catching up: no reason to make it wait.
        let due = run.extended.is_none_or(|t| t.elapsed() >= GAP) || (to + 1).saturating_sub(run.next) >= WINDOW;
        if run.next <= to && due {
            while run.next <= to {
                let last = to.min(run.next.saturating_add(WINDOW - 1));
                let (entries, statuses) = read(dir, platform, run.next, last).await?;
                run.entries.extend(entries);
                run.statuses.extend(statuses);
                run.next = last + 1;
            }
            run.alerts = Arc::new(dir.alerts(platform).await?);
            run.extended = Some(Instant::now());
        }
        let through = to.min(run.next - 1);
        let start = run.entries.partition_point(|e| e.entry.seq < from);
        let end = run.entries.partition_point(|e| e.entry.seq <= through);
        let entries = run.entries.range(start..end).cloned().collect();
        let start = run.statuses.partition_point(|s| s.seq < from);
        let end = run.statuses.partition_point(|s| s.seq <= through);
        let statuses = run.statuses.range(start..end).cloned().collect();
        while run.entries.len() > self.kept {
            let gone = run.entries.pop_front().map_or(run.first, |e| e.entry.seq);
            run.first = gone + 1;
        }
        let first = run.first;
        while run.statuses.front().is_some_and(|s| s.seq < first) {
            run.statuses.pop_front();
        }
        Ok(Settled { entries, statuses, through, alerts: run.alerts.clone() })
    }
}

/// The entries of `platform` numbered `from..=last` from the store, oldest first, in windows,
/// with their lines' owners; and its status changes in those numbers.
async fn read(dir: &Directory, platform: OwnerId, from: Seq, last: Seq) -> Result<Read, StoreError> {
    let statuses = dir.status_changes(platform, from, last).await?.into_iter().map(Arc::new).collect();
    let mut out = Vec::new();
    let mut at = from;
    while at <= last {
        let end = last.min(at.saturating_add(WINDOW - 1));
        let page = Page { after: Some(at.saturating_sub(1)), before: Some(end + 1), limit: WINDOW as usize };
        let mut got = dir.entries(platform, page).await?;
        got.reverse();
        for entry in got {
            let mut owners = Vec::with_capacity(entry.lines.len());
            for l in &entry.lines {
                owners.push(dir.place(l.account).await?.filter(|p| p.wallet).map(|p| p.owner));
            }
            out.push(Arc::new(Tailed { entry, owners }));
        }
        at = end + 1;
    }
    Ok((out, statuses))
}

type Read = (Vec<Arc<Tailed>>, Vec<Arc<StatusChange>>);
