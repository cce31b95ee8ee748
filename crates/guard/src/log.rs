//! Log lines on stderr (journald keeps them under the unit), with refusals rate-limited so a
//! flood of refused connections cannot flood the log: at most [`REFUSALS_PER_SECOND`] lines a
//! second, then one line saying how many were left out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Refusal lines written per second at most.
pub const REFUSALS_PER_SECOND: u64 = 20;

/// A rate limit on refusal log lines.
#[derive(Debug, Default)]
pub struct RefusalLog {
    second: AtomicU64,
    written: AtomicU64,
    suppressed: AtomicU64,
}

impl RefusalLog {
    /// Whether a refusal line may be written now; announces suppressed lines at the turn of
    /// each second.
    pub fn permit(&self, guard: &str) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.written.store(0, Ordering::Relaxed);
            let dropped = self.suppressed.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                eprintln!("loopwarden guard {guard}: {dropped} more refusals not logged (rate limit)");
            }
        }
        if self.written.fetch_add(1, Ordering::Relaxed) < REFUSALS_PER_SECOND {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_is_permitted_in_one_second() {
        let log = RefusalLog::default();
        let permitted = (0..100).filter(|_| log.permit("t")).count() as u64;
        // The second may turn during the loop: then up to twice the limit.
        assert!(
            (REFUSALS_PER_SECOND..=2 * REFUSALS_PER_SECOND).contains(&permitted),
            "{permitted}"
        );
    }
}
