//! Log lines on stderr (journald keeps them under the unit), with refusals rate-limited so a
//! flood of refused connections cannot flood the log: at most [`REFUSALS_PER_SECOND`] lines a
//! second, then one line saying how many were left out.
//!
//! Every line goes through [`line`] (the [`logln!`](crate::logln) macro): a process name is
//! whatever its process set (`prctl(PR_SET_NAME)`, up to 15 bytes of anything), and header
//! values, paths and account names come from others too. A newline in them would forge a log
//! line, an escape sequence would rewrite the reader's terminal, so control and format
//! characters are written as visible escapes (`\n`, `\x1b`) and one event stays one line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one log line on stderr with every control and format character escaped.
pub fn line(text: &str) {
    eprintln!("{}", loopwarden_core::report::shown::escape(text));
}

/// `eprintln!` for the guard's log: formats, then writes through [`line`] (escaped, one line).
#[macro_export]
macro_rules! logln {
    ($($arg:tt)*) => {
        $crate::log::line(&format!($($arg)*))
    };
}

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
                crate::logln!("loopwarden guard {guard}: {dropped} more refusals not logged (rate limit)");
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
