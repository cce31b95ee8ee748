//! The check ids: one typed catalogue shared by the checks, the probes and the lab, so that a
//! finding can only carry an id that exists. Each id is spelled as in `shared/design.md`'s table
//! ("Check ids") and keeps its meaning once released; reports carry the dotted spelling.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Declares [`CheckId`] and its spellings from one table, so that [`CheckId::ALL`] cannot miss a
/// variant.
macro_rules! check_ids {
    ($($(#[doc = $doc:literal])* $variant:ident => $id:literal,)*) => {
        /// A check's stable id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CheckId {
            $($(#[doc = $doc])* $variant,)*
        }

        impl CheckId {
            /// Every id, in the order reports and `loopwarden checks` list them (the order of
            /// [`crate::checks::ALL`]).
            pub const ALL: &'static [CheckId] = &[$(CheckId::$variant,)*];

            /// The id as reports spell it (`net.route-localnet`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckId::$variant => $id,)*
                }
            }
        }
    };
}

check_ids! {
    /// `bind.wildcard`: a listener on a wildcard or non-loopback address.
    BindWildcard => "bind.wildcard",
    /// `net.route-localnet`: route_localnet on a non-loopback interface (CVE-2020-8558).
    NetRouteLocalnet => "net.route-localnet",
    /// `net.no-loopback-antispoof`: no rule drops loopback-addressed traffic from outside.
    NetNoLoopbackAntispoof => "net.no-loopback-antispoof",
    /// `net.dnat-loopback`: a NAT rule turns outside traffic into traffic to loopback.
    NetDnatLoopback => "net.dnat-loopback",
    /// `proto.udp-loopback`: a loopback UDP service one spoofed datagram may reach.
    ProtoUdpLoopback => "proto.udp-loopback",
    /// `local.tcp-any-uid`: a loopback listener any local uid may connect to.
    LocalTcpAnyUid => "local.tcp-any-uid",
    /// `local.port-squat`: the other address family's loopback port is free for any user.
    LocalPortSquat => "local.port-squat",
    /// `local.unix-world`: a Unix socket other uids can connect to.
    LocalUnixWorld => "local.unix-world",
    /// `local.unix-abstract`: an abstract Unix socket (no permission check at all).
    LocalUnixAbstract => "local.unix-abstract",
    /// `name.localhost-resolution`: `localhost` not pinned to loopback.
    NameLocalhostResolution => "name.localhost-resolution",
    /// `net.loopback-source-trust`: a spoofed loopback source reaches a wildcard listener.
    NetLoopbackSourceTrust => "net.loopback-source-trust",
    /// `relay.http-proxy`: a non-loopback listener relays HTTP/CONNECT to loopback.
    RelayHttpProxy => "relay.http-proxy",
    /// `relay.socks-proxy`: a non-loopback listener relays SOCKS to loopback.
    RelaySocksProxy => "relay.socks-proxy",
    /// `relay.ssh-forwarding`: sshd permits TCP forwarding to loopback.
    RelaySshForwarding => "relay.ssh-forwarding",
    /// `relay.reverse-proxy`: a reverse proxy publishes a loopback upstream.
    RelayReverseProxy => "relay.reverse-proxy",
    /// `relay.forwarder`: a running forwarder publishes a loopback service.
    RelayForwarder => "relay.forwarder",
    /// `relay.ftp-bounce`: an FTP server opens data connections to loopback for its clients.
    RelayFtpBounce => "relay.ftp-bounce",
    /// `web.dns-rebinding`: an HTTP service answers a foreign `Host`.
    WebDnsRebinding => "web.dns-rebinding",
    /// `web.cors-permissive`: CORS grants a foreign origin.
    WebCorsPermissive => "web.cors-permissive",
    /// `web.private-network-access`: a PNA preflight is granted.
    WebPrivateNetworkAccess => "web.private-network-access",
    /// `web.websocket-origin`: a WebSocket upgrade is accepted from a foreign `Origin`.
    WebWebsocketOrigin => "web.websocket-origin",
    /// `web.zero-address`: an HTTP service reachable as `http://0.0.0.0:PORT`.
    WebZeroAddress => "web.zero-address",
    /// `netns.shared-abstract-unix`: an abstract Unix socket in a network namespace a container
    /// shares (`--net=host`): the container connects to it (CVE-2020-15257).
    NetnsSharedAbstractUnix => "netns.shared-abstract-unix",
    /// `netns.unprotected-loopback`: a namespace other than the host's whose own interfaces
    /// accept loopback-addressed traffic; the host's firewall does not cover it.
    NetnsUnprotectedLoopback => "netns.unprotected-loopback",
    /// `netns.published-loopback`: a loopback-only service of one namespace that a forwarder
    /// (pasta) publishes in another.
    NetnsPublishedLoopback => "netns.published-loopback",
}

impl CheckId {
    /// Whether it is one of the browser-borne `web.*` checks, which judge an HTTP service's answers.
    pub fn is_web(self) -> bool {
        self.as_str().starts_with("web.")
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not the id of any check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check id {0:?} (`loopwarden checks` lists them)")]
pub struct UnknownCheckId(pub String);

impl FromStr for CheckId {
    type Err = UnknownCheckId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckId::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownCheckId(s.to_string()))
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Attacker, Confidence, Finding, Severity, Status};

    /// The ids of `shared/design.md`'s "Check ids" table, in the table's order, and the whole-host
    /// ids of `--all-netns` (issue 12; "new checks get new ids").
    const DESIGN_TABLE: [&str; 25] = [
        "bind.wildcard",
        "net.route-localnet",
        "net.no-loopback-antispoof",
        "net.loopback-source-trust",
        "net.dnat-loopback",
        "relay.http-proxy",
        "relay.socks-proxy",
        "relay.ssh-forwarding",
        "relay.reverse-proxy",
        "relay.forwarder",
        "local.tcp-any-uid",
        "local.unix-world",
        "local.unix-abstract",
        "local.port-squat",
        "web.dns-rebinding",
        "web.cors-permissive",
        "web.private-network-access",
        "web.websocket-origin",
        "web.zero-address",
        "name.localhost-resolution",
        "proto.udp-loopback",
        "relay.ftp-bounce",
        "netns.shared-abstract-unix",
        "netns.unprotected-loopback",
        "netns.published-loopback",
    ];

    #[test]
    fn the_ids_are_the_design_tables() {
        let mut ours: Vec<&str> = CheckId::ALL.iter().map(|id| id.as_str()).collect();
        let mut design = DESIGN_TABLE.to_vec();
        ours.sort_unstable();
        design.sort_unstable();
        assert_eq!(ours, design);
    }

    #[test]
    fn every_id_parses_back_and_others_are_refused() {
        for &id in CheckId::ALL {
            assert_eq!(id.as_str().parse::<CheckId>(), Ok(id));
            assert_eq!(id.to_string(), id.as_str());
        }
        assert_eq!(
            "relay.ftp".parse::<CheckId>().unwrap_err().to_string(),
            "unknown check id \"relay.ftp\" (`loopwarden checks` lists them)"
        );
        assert!("NET.ROUTE-LOCALNET".parse::<CheckId>().is_err());
    }

    #[test]
    fn every_id_a_finding_carries_round_trips_through_json() {
        for &id in CheckId::ALL {
            let finding = Finding {
                check: id,
                service: None,
                attacker: Attacker::Lan,
                severity: Severity::Low,
                status: Status::Open,
                confidence: Confidence::Inspected,
                title: Default::default(),
                evidence: Vec::new(),
                fix: Default::default(),
                subject: None,
                reaches: Vec::new(),
            };
            let json = serde_json::to_value(&finding).expect("a finding serialises");
            assert_eq!(json["check"], id.as_str(), "{id} is its dotted spelling in JSON");
            let back: Finding = serde_json::from_value(json).expect("and parses back");
            assert_eq!(back, finding);
        }
        let unknown = r#"{"check":"net.nope","service":null,"attacker":"lan","severity":"low",
            "status":"open","confidence":"inspected","title":"","evidence":[],"fix":""}"#;
        let err = serde_json::from_str::<Finding>(unknown).unwrap_err().to_string();
        assert!(err.contains("unknown check id \"net.nope\""), "{err}");
    }
}
