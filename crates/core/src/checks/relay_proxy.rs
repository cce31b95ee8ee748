//! Open proxies that relay to loopback (`relay.http-proxy`, `relay.socks-proxy`): decided by
//! `audit --probe`, proven only against a canary listener loopwarden opens itself.

use super::{Check, CheckId, CheckSpec, Stage};
use crate::report::Attacker;

/// `relay.http-proxy`.
pub const HTTP_PROXY: Check = Check {
    spec: CheckSpec {
        id: CheckId::RelayHttpProxy,
        attackers: &[Attacker::Remote],
        stage: Stage::Probe,
        summary: "a non-loopback listener relays HTTP/CONNECT to loopback",
        why: "every client of the proxy becomes a local client of every loopback service \
              (squid ships 'http_access deny to_localhost' commented out)",
    },
    evaluate: None,
};

/// `relay.socks-proxy`.
pub const SOCKS_PROXY: Check = Check {
    spec: CheckSpec {
        id: CheckId::RelaySocksProxy,
        attackers: &[Attacker::Remote],
        stage: Stage::Probe,
        summary: "a non-loopback listener relays SOCKS4/4a/5 (no authentication) to loopback",
        why: "every client of the proxy becomes a local client of every loopback service",
    },
    evaluate: None,
};
