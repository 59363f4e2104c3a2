//! CPU-heavy work of a request (RSA signatures, milliseconds each) runs on Tokio's blocking
//! threads, at most as many at once as the machine has cores, never on the async workers: a
//! burst of signed requests then queues here instead of stalling every other request of the
//! node behind it.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

static SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Run `f` off the async workers, once a slot is free. `None` if it panicked (logged).
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _slot = SLOTS.acquire().await.ok()?;
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "CPU task failed");
            None
        }
    }
}
