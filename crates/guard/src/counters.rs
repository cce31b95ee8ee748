//! What each front has done: connections accepted, admitted, refused by reason, requests
//! forwarded, upstream failures. Updated lock-free on the hot path (refusals take a lock; they
//! are the rare case).

use loopwarden_core::facts::GuardCounters;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One front's counters.
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    allowed: AtomicU64,
    requests: AtomicU64,
    upstream_errors: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counters {
    /// A connection was accepted.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was admitted.
    pub fn allowed(&self) {
        self.allowed.fetch_add(1, Ordering::Relaxed);
    }

    /// An HTTP request was forwarded.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The upstream could not be reached or failed mid-request.
    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection or request was refused, for the reason named by `key`.
    pub fn refused(&self, key: &'static str) {
        if let Ok(mut map) = self.refused.lock() {
            *map.entry(key).or_insert(0) += 1;
        }
    }

    /// The counters as published, with `active` connections open now.
    pub fn snapshot(&self, active: usize) -> GuardCounters {
        GuardCounters {
            accepted: self.accepted.load(Ordering::Relaxed),
            allowed: self.allowed.load(Ordering::Relaxed),
            active: active as u64,
            requests: self.requests.load(Ordering::Relaxed),
            refused: self
                .refused
                .lock()
                .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect())
                .unwrap_or_default(),
            upstream_errors: self.upstream_errors.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reports_every_counter() {
        let c = Counters::default();
        c.accepted();
        c.accepted();
        c.allowed();
        c.refused("not-allowed");
        c.refused("not-allowed");
        c.refused("foreign-host");
        c.request();
        c.upstream_error();
        let s = c.snapshot(1);
        assert_eq!(
            (s.accepted, s.allowed, s.active, s.requests, s.upstream_errors),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(s.refused.get("not-allowed"), Some(&2));
        assert_eq!(s.refused.get("foreign-host"), Some(&1));
    }
}
