//! CPU-heavy work of a request (RSA signatures, a fraction of a millisecond each) runs on a
//! pool of its own, one thread per core, never on the async workers: a burst of signed requests
//! queues here instead of stalling every other request of the node behind it. The pool's
//! threads take the next job from the queue themselves, so a core does not sit idle between
//! two signatures while an async worker hands the next one over (measured: with Tokio's
//! blocking pool behind a semaphore of one permit per core, PayerMax answered 4,500 req/s on
//! 2 cores; see docs/ARCHITECTURE.md for this pool's figure).

use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;

static POOL: LazyLock<Option<rayon::ThreadPool>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .thread_name(|i| format!("coffer-cpu-{i}"))
        .build()
        .map_err(|e| tracing::error!(error = %e, "no CPU pool: CPU work runs on Tokio's blocking threads"))
        .ok()
});

/// Run `f` off the async workers. `None` if it panicked (logged).
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let Some(pool) = POOL.as_ref() else {
        return tokio::task::spawn_blocking(f).await.map_err(|e| tracing::error!(error = %e, "CPU task failed")).ok();
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(_)) | Err(_) => {
            tracing::error!("CPU task panicked");
            None
        }
    }
}
