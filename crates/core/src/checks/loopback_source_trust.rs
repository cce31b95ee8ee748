//! `net.loopback-source-trust`: a UDP listener that a LAN neighbour reaches with a spoofed
//! loopback source, so that the application sees a loopback peer.
//!
//! Two kernel paths (measured on 6.18, notes §1): IPv6 UDP from `::ffff:127.0.0.1` is delivered
//! to `[::]` sockets — dual-stack and `IPV6_V6ONLY` alike — whatever the sysctls, since the
//! v4-mapped source check moved to TCP only (Linux 5.13); IPv4 UDP from a `127/8` source is
//! delivered when `route_localnet` is on for the interface and `rp_filter` does not reject it
//! (0, or 2 together with `accept_local`): to wildcard listeners, and to listeners on `127/8`
//! themselves (kube-proxy's KUBE-FIREWALL drops only non-loopback sources, so `127.0.0.2 →
//! 127.0.0.1:7003` gets through on a node). TCP only gets a blind SYN, so it is not flagged.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::unmapped;
use crate::facts::{InetSocket, Protocol, SocketState};
use crate::firewall::questions::{fold, loopback};
use crate::firewall::ranges::{addr_value, RangeSet};
use crate::firewall::verdict::Decision;
use crate::report::{Attacker, Confidence, Finding, Severity, Status};
use std::net::IpAddr;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::NetLoopbackSourceTrust,
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "UDP listener reachable with a spoofed loopback source the application may trust",
        why: "IPv6 UDP from ::ffff:127.0.0.1 reaches [::] sockets (even IPV6_V6ONLY) on Linux 5.13+, and IPv4 \
              127/8 sources reach wildcard and 127/8 sockets when route_localnet is on; an application that trusts \
              loopback peers (ntpd CVE-2014-9298) then obeys a LAN neighbour",
    },
    evaluate: Some(evaluate),
};

/// What the kernel release says about IPv4-mapped sources.
enum MappedPath {
    Delivered(String),
    Unknown(String),
}

fn mapped_path(kernel: &str) -> MappedPath {
    let mut parts = kernel.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let version = (
        parts.next().and_then(|m| m.parse::<u32>().ok()),
        parts.next().and_then(|m| m.parse::<u32>().ok()),
    );
    match version {
        (Some(major), Some(minor)) if major > 5 || (major == 5 && minor >= 13) => MappedPath::Delivered(format!(
            "kernel {kernel}: IPv6 input no longer drops IPv4-mapped sources (the check was narrowed to TCP in 5.13), \
             so UDP from ::ffff:127.0.0.1 is delivered with any sysctls"
        )),
        _ => MappedPath::Unknown(format!(
            "kernel {kernel:?}: whether IPv6 input drops IPv4-mapped sources depends on the release (5.4–5.12 did); \
             `audit --prove` decides"
        )),
    }
}

/// IP protocol number of UDP.
const UDP: u8 = 17;

/// How a family's spoofed loopback sources fare against one UDP port.
enum Path {
    /// Every datagram is dropped by the kernel's own checks (IPv4 martian sources): nothing to
    /// report for this family.
    KernelCloses,
    /// The evaluator's answer, with its evidence.
    Decided(Status, Vec<String>),
}

/// Where the datagrams go: this host's own addresses (for a wildcard listener), or the
/// listener's own loopback address.
enum To {
    /// This host's addresses of the family beyond loopback.
    Host,
    /// One address.
    Address(IpAddr),
}

/// Datagrams from `src` (spoofed loopback sources of the family) to `to` on `port`, asked of
/// the packet-path evaluator: it applies route_localnet and the source checks
/// (`kernel::Ipv4Input`) for IPv4, and the firewall for both families.
fn path(ctx: &Context, v6: bool, src: RangeSet, to: To, port: u16) -> Path {
    let inbound = match to {
        To::Host => ctx.firewall.to_host(v6, src),
        To::Address(a) => Some(ctx.firewall.inbound(v6, src, RangeSet::single(addr_value(a)))),
    };
    let Some(inbound) = inbound else {
        let family = if v6 { "IPv6" } else { "IPv4" };
        return Path::Decided(
            Status::Unknown,
            vec![format!(
                "  the snapshot lists no {family} address of this host: where such datagrams go is unknown"
            )],
        );
    };
    let answers = inbound.for_port(&ctx.firewall.analysis, UDP, port, |_| true);
    if answers.iter().all(|a| a.dropped_by_kernel) {
        return Path::KernelCloses;
    }
    let (decision, lines) = ctx.firewall.qualify(fold(answers));
    let status = match decision {
        Decision::Open => Status::Open,
        Decision::Blocked => Status::Blocked,
        Decision::Unknown => Status::Unknown,
    };
    Path::Decided(status, lines.into_iter().map(|l| format!("  {l}")).collect())
}

/// `::ffff:127.0.0.0/104`: IPv4-mapped loopback sources.
fn mapped_loopback() -> RangeSet {
    loopback(true).subtract(&RangeSet::single(1))
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let mapped = mapped_path(&facts.host.kernel);
    let mut out: Vec<Finding> = Vec::new();
    let listener = |s: &InetSocket| {
        s.protocol == Protocol::Udp
            && s.state == SocketState::Unconnected
            && (s.address.is_unspecified() || matches!(unmapped(s.address), IpAddr::V4(v4) if v4.is_loopback()))
    };
    for (socket, id) in ctx.inet_services(listener) {
        let owner = ctx.processes.describe(&socket.owners);
        let mut evidence = Vec::new();
        let mut statuses = Vec::new();
        if socket.address.is_unspecified() && socket.address.is_ipv6() {
            let v6only = match socket.v6only {
                Some(true) => "IPV6_V6ONLY=1",
                Some(false) => "dual-stack",
                None => "IPV6_V6ONLY unknown",
            };
            evidence.push(format!("UDP [::]:{} ({v6only}) held by {owner}", socket.port));
            match &mapped {
                MappedPath::Delivered(why) => {
                    evidence.push(why.clone());
                    if let Path::Decided(status, lines) = path(ctx, true, mapped_loopback(), To::Host, socket.port) {
                        evidence.push(format!("a datagram from ::ffff:127.0.0.1 to port {}:", socket.port));
                        evidence.extend(lines);
                        statuses.push(status);
                    }
                }
                MappedPath::Unknown(why) => {
                    evidence.push(why.clone());
                    statuses.push(Status::Unknown);
                }
            }
        }
        let loopback_bound = !socket.address.is_unspecified();
        let takes_v4 = loopback_bound || socket.address.is_ipv4() || socket.v6only == Some(false);
        if takes_v4 {
            let to = if loopback_bound {
                To::Address(unmapped(socket.address))
            } else {
                To::Host
            };
            if let Path::Decided(status, lines) = path(ctx, false, loopback(false), to, socket.port) {
                evidence.push(if loopback_bound {
                    format!("{id} held by {owner}; a datagram from a spoofed 127/8 source to it:")
                } else {
                    format!(
                        "UDP *:{} takes IPv4; a datagram from a spoofed 127/8 source to this host:",
                        socket.port
                    )
                });
                evidence.extend(lines);
                statuses.push(status);
            }
        }
        // One open path makes the finding open; an unknown one keeps it unknown.
        let Some(status) = Status::worst(statuses) else {
            continue;
        };
        let title = match status {
            Status::Open => "a LAN neighbour can send datagrams that appear to come from this host's loopback",
            Status::Unknown => {
                "a LAN neighbour may be able to send datagrams that appear to come from this host's loopback"
            }
            Status::Blocked => "datagrams with a spoofed loopback source would reach this socket, but are dropped",
        };
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(id.to_string()),
            attacker: Attacker::Lan,
            severity: Severity::High,
            status,
            confidence: Confidence::Inspected,
            title: title.into(),
            evidence,
            fix: "drop `ip saddr 127.0.0.0/8` and `ip6 saddr ::ffff:127.0.0.0/104` on iifname != \"lo\" in a \
                  prerouting chain at priority raw; keep route_localnet=0; bind to 127.0.0.1/::1 if only local \
                  clients need it; never grant trust by peer address alone"
                .into(),
            subject: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{HostFacts, InetSocket, Interface, Sysctls, FACTS_SCHEMA};
    use std::collections::BTreeMap;

    fn udp(address: &str, v6only: Option<bool>) -> InetSocket {
        InetSocket {
            protocol: Protocol::Udp,
            address: address.parse().unwrap(),
            port: 123,
            v6only,
            state: SocketState::Unconnected,
            peer: None,
            bound_device: None,
            uid: 0,
            inode: 1,
            owners: vec![],
        }
    }

    fn facts(kernel: &str, sockets: Vec<InetSocket>, sysctls: &[(&str, &str)]) -> HostFacts {
        let mut map = BTreeMap::new();
        for (k, v) in sysctls {
            map.insert(k.to_string(), v.to_string());
        }
        let json = serde_json::json!({
            "schema": FACTS_SCHEMA,
            "host": {"hostname": "h", "kernel": kernel, "netns": "n", "privileged": true, "collected_at": 0, "limits": []},
            "inet_sockets": [], "unix_sockets": [], "processes": [], "interfaces": [],
            "sysctls": {}, "names": {"hosts_file": null, "nsswitch_hosts": null},
            "accounts": {"users": [], "groups": []}
        });
        let mut f = HostFacts::from_json(&json.to_string()).unwrap();
        f.inet_sockets = sockets;
        f.sysctls = Sysctls(map);
        // An empty ruleset was captured: no rule drops anything.
        f.firewall.nft_json = Some(serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
        f.interfaces.push(Interface {
            name: "eth0".into(),
            index: 2,
            up: true,
            loopback: false,
            kind: None,
            mac: None,
            addresses: ["192.0.2.10/24", "fe80::10/64"]
                .iter()
                .map(|a| {
                    let (ip, len) = a.split_once('/').unwrap();
                    crate::facts::InterfaceAddress {
                        address: ip.parse().unwrap(),
                        prefix_len: len.parse().unwrap(),
                    }
                })
                .collect(),
            master: None,
        });
        f
    }

    fn run(f: &HostFacts) -> Vec<Finding> {
        evaluate(&Context::new(f))
    }

    const DEFAULTS: &[(&str, &str)] = &[
        ("net.ipv4.conf.all.route_localnet", "0"),
        ("net.ipv4.conf.eth0.route_localnet", "0"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.eth0.rp_filter", "0"),
        ("net.ipv4.conf.all.accept_local", "0"),
        ("net.ipv4.conf.eth0.accept_local", "0"),
    ];

    #[test]
    fn v6only_udp_wildcard_is_open_on_a_6x_kernel_with_default_sysctls() {
        let f = facts("6.18.44", vec![udp("::", Some(true)), udp("0.0.0.0", None)], DEFAULTS);
        let found = run(&f);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].service.as_deref(), Some("udp:[::]:123"));
        assert_eq!(found[0].status, Status::Open);
        assert!(found[0].evidence.iter().any(|e| e.contains("IPV6_V6ONLY=1")));
    }

    #[test]
    fn an_old_or_unknown_kernel_is_unknown_not_safe() {
        let found = run(&facts("5.10.0", vec![udp("::", Some(false))], DEFAULTS));
        assert_eq!(found[0].status, Status::Unknown);
        assert_eq!(
            run(&facts("", vec![udp("::", Some(true))], DEFAULTS))[0].status,
            Status::Unknown
        );
    }

    #[test]
    fn ipv4_wildcard_is_flagged_only_with_route_localnet_and_permissive_rp_filter() {
        let mut on: Vec<(&str, &str)> = DEFAULTS.to_vec();
        on[1] = ("net.ipv4.conf.eth0.route_localnet", "1");
        let found = run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &on));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Open);
        on[3] = ("net.ipv4.conf.eth0.rp_filter", "2");
        assert!(run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &on)).is_empty());
        on[5] = ("net.ipv4.conf.eth0.accept_local", "1");
        assert_eq!(run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &on)).len(), 1);
        assert!(run(&facts("6.18.0", vec![udp("0.0.0.0", None)], DEFAULTS)).is_empty());
    }

    #[test]
    fn missing_sysctls_make_the_ipv4_path_unknown() {
        let found = run(&facts("6.18.0", vec![udp("0.0.0.0", None)], &[]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Unknown);
    }

    #[test]
    fn no_firewall_capture_is_unknown_and_the_guard_table_blocks() {
        let mut f = facts("6.18.0", vec![udp("::", Some(true))], DEFAULTS);
        f.firewall = Default::default();
        assert_eq!(run(&f)[0].status, Status::Unknown);
        // The complete raw-priority guard table of notes.md §2, captured from a namespace.
        let captured = include_str!("../../../../fixtures/firewall/raw-antispoof-complete/ruleset.json");
        f.firewall.nft_json = Some(serde_json::from_str(captured).unwrap());
        let found = run(&f);
        assert_eq!(found[0].status, Status::Blocked, "{found:#?}");
    }

    /// The service's own port is asked: a drop of mapped sources to port 123 blocks the
    /// socket on 123 and leaves the one on 124 open.
    #[test]
    fn a_drop_for_another_port_does_not_block_this_one() {
        let mut other = udp("::", Some(true));
        other.port = 124;
        let mut f = facts("6.18.0", vec![udp("::", Some(true)), other], DEFAULTS);
        f.firewall.nft_json = None;
        f.firewall.iptables.push(crate::facts::IptablesDump {
            family: crate::facts::IptablesFamily::Ipv6,
            backend: "nft".into(),
            text: "*raw\n:PREROUTING ACCEPT [0:0]\n\
                   -A PREROUTING -s ::ffff:127.0.0.0/104 ! -i lo -p udp -m udp --dport 123 -j DROP\nCOMMIT\n"
                .into(),
        });
        let found = run(&f);
        let status = |id: &str| {
            found
                .iter()
                .find(|x| x.service.as_deref() == Some(id))
                .map(|x| x.status)
        };
        assert_eq!(status("udp:[::]:123"), Some(Status::Blocked), "{found:#?}");
        assert_eq!(status("udp:[::]:124"), Some(Status::Open), "{found:#?}");
    }

    /// ufw's default deny drops the mapped datagram to an unlisted port (its stock ip6tables
    /// rules' hop-limit and routing-header matches do not make it unknown).
    #[test]
    fn ufw_default_deny_blocks_an_unlisted_port() {
        let mut f = crate::firewall::fixture_tests::facts("ufw-stock");
        f.host.kernel = "6.18.0".into();
        let mut socket = udp("::", Some(true));
        socket.port = 9002;
        f.inet_sockets.push(socket);
        let found: Vec<Finding> = run(&f)
            .into_iter()
            .filter(|x| x.service.as_deref() == Some("udp:[::]:9002"))
            .collect();
        assert_eq!(found[0].status, Status::Blocked, "{found:#?}");
        assert!(found[0].title.contains("dropped"), "{}", found[0].title);
    }

    /// A node's KUBE-FIREWALL drops 127/8 destinations only from non-loopback sources: with
    /// route_localnet on, `127.0.0.2 → 127.0.0.1:7003` is delivered (tests/truth_kube.rs attacks
    /// it), so the socket on 127.0.0.1 is reached with a loopback peer.
    #[test]
    fn a_loopback_listener_is_reached_past_kube_firewall_from_another_127_source() {
        let mut f = crate::firewall::fixture_tests::facts("kube-proxy-firewall");
        f.host.kernel = "6.18.0".into();
        let mut s = udp("127.0.0.1", None);
        s.port = 7003;
        f.inet_sockets.push(s);
        let found = run(&f);
        let f7003 = found
            .iter()
            .find(|x| x.service.as_deref() == Some("udp:127.0.0.1:7003"));
        assert_eq!(f7003.map(|x| x.status), Some(Status::Open), "{found:#?}");
    }

    #[test]
    fn a_loopback_listener_needs_route_localnet() {
        let found = run(&facts("6.18.0", vec![udp("127.0.0.1", None)], DEFAULTS));
        assert!(found.is_empty(), "{found:#?}");
        let mut on: Vec<(&str, &str)> = DEFAULTS.to_vec();
        on[1] = ("net.ipv4.conf.eth0.route_localnet", "1");
        let found = run(&facts("6.18.0", vec![udp("127.0.0.1", None)], &on));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Open);
        assert!(
            found[0].evidence[0].contains("udp:127.0.0.1:123"),
            "{:#?}",
            found[0].evidence
        );
    }

    /// The CIS source drop plus firewalld's IPv6 fib rule (captured): IPv4 127/8 sources are
    /// dropped, and whether the fib rule drops the mapped source depends on routes the snapshot
    /// does not hold — unknown, never blocked (a real attack delivered it with a default route).
    #[test]
    fn an_undecided_family_keeps_the_finding_unknown() {
        let mut f = crate::firewall::fixture_tests::facts("cis-source-drop-with-fib-rpf");
        f.host.kernel = "6.18.0".into();
        f.inet_sockets.push(udp("::", Some(false)));
        let found = run(&f);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Unknown, "{:#?}", found[0].evidence);
    }
}
