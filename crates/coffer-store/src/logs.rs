//! Errors that repeat are logged once per interval, with how many times they happened since.
//! A full disk or a stopped database fails every request; one line every ten seconds says so
//! as well as thousands would, and does not fill the disk that is already full.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How often one error is logged at most.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Distinct errors remembered at once; beyond it the memory starts afresh.
const MAX_KINDS: usize = 1024;

static SEEN: LazyLock<Mutex<HashMap<String, (Instant, u64)>>> = LazyLock::new(Default::default);

/// Whether the error `what` (its kind and text) is due to be logged now: `Some(n)` with the
/// number of times it happened since it was last logged (1 the first time), `None` to stay
/// silent (it is counted).
pub fn due(what: &str) -> Option<u64> {
    let now = Instant::now();
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.len() >= MAX_KINDS && !seen.contains_key(what) {
        seen.clear();
    }
    match seen.get_mut(what) {
        Some((last, n)) if now.duration_since(*last) < INTERVAL => {
            *n += 1;
            None
        }
        Some((last, n)) => {
            let count = *n + 1;
            (*last, *n) = (now, 0);
            Some(count)
        }
        None => {
            seen.insert(what.to_string(), (now, 0));
            Some(1)
        }
    }
}

/// Log `error` at ERROR level under `what`, at most once per [`INTERVAL`] for the same text.
pub fn error(what: &str, error: &dyn std::fmt::Display) {
    let text = format!("{what}: {error}");
    if let Some(times) = due(&text) {
        tracing::error!(error = %error, times, "{what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_not_logged() {
        let what = "a test error that repeats";
        assert_eq!(due(what), Some(1));
        for _ in 0..100 {
            assert_eq!(due(what), None);
        }
        SEEN.lock().unwrap().get_mut(what).unwrap().0 -= INTERVAL;
        assert_eq!(due(what), Some(101), "the next line tells how many were held back");
    }
}
