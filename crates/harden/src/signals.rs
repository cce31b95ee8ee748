//! Keeping the few milliseconds in which harden changes the host from being cut short: a
//! terminal that closes (SIGHUP), a Ctrl-C (SIGINT), a polite kill (SIGTERM, SIGQUIT) are
//! ignored while a [`Steady`] lives, process-wide, and the earlier dispositions come back when it
//! is dropped. (SIGKILL cannot be ignored: the rollback watchdog, started before the first
//! change, covers that.)

/// The signals held off.
const HELD: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGQUIT];

/// While it lives, [`HELD`] signals are ignored.
#[derive(Debug)]
pub struct Steady {
    previous: Vec<(libc::c_int, libc::sighandler_t)>,
}

impl Steady {
    /// Ignores the held signals until the value is dropped.
    pub fn hold() -> Steady {
        let previous = HELD
            .iter()
            // SAFETY: signal(2) with SIG_IGN, a valid disposition; the old one is kept to restore.
            .map(|&sig| (sig, unsafe { libc::signal(sig, libc::SIG_IGN) }))
            .filter(|(_, old)| *old != libc::SIG_ERR)
            .collect();
        Steady { previous }
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        for &(sig, old) in &self.previous {
            // SAFETY: restores a disposition signal(2) itself returned.
            unsafe {
                libc::signal(sig, old);
            }
        }
    }
}

/// The dispositions a child should start with: the held signals back to their defaults (an
/// ignored disposition would survive `exec`). Async-signal-safe: for `pre_exec`.
pub fn reset_for_child() {
    for sig in HELD {
        // SAFETY: signal(2) with SIG_DFL is async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hangup_is_ignored_while_held_and_handled_as_before_after() {
        // SAFETY: reading the disposition by setting and restoring it.
        let read = |sig| unsafe {
            let old = libc::signal(sig, libc::SIG_DFL);
            libc::signal(sig, old);
            old
        };
        let before = read(libc::SIGHUP);
        {
            let _steady = Steady::hold();
            assert_eq!(read(libc::SIGHUP), libc::SIG_IGN);
        }
        assert_eq!(read(libc::SIGHUP), before);
    }
}
