//! loopwarden's probes: bounded active checks against this host's own listeners.
#![warn(missing_docs)]
