//! Open relays to loopback decided by `audit --probe` (`relay.http-proxy`, `relay.socks-proxy`,
//! `relay.ftp-bounce`), proven only against a listener loopwarden opens itself.

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

/// `relay.ftp-bounce`.
pub const FTP_BOUNCE: Check = Check {
    spec: CheckSpec {
        id: CheckId::RelayFtpBounce,
        attackers: &[Attacker::Remote],
        stage: Stage::Probe,
        summary: "an FTP server beyond loopback opens data connections (PORT/EPRT) to loopback",
        why: "the FTP bounce attack (RFC 2577): a remote client names 127.0.0.1 as its data address and \
              the server connects there for it, carrying the client's upload to a loopback service",
    },
    evaluate: None,
};
