//! Waiting for a condition rather than sleeping for a guessed time: a test goes on as soon as the
//! condition holds, and a slow machine gets the whole timeout.
use std::time::{Duration, Instant};

/// How often a condition is checked.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Some`, and returns that; `None` once `timeout` has passed.
pub fn until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
