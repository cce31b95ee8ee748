//! The evaluator on the captured rulesets of `fixtures/firewall/`. Expected verdicts come from
//! the kernel behaviour in the project notes (§1, §2), not from this code.

use super::eval::{Packets, Reach};
use super::questions::{loopback, Firewall};
use super::ranges::{all_addrs, RangeSet};
use super::verdict::Decision;
use crate::facts::{FirewallFacts, HostFacts, Interface, InterfaceAddress, IptablesDump, IptablesFamily, Sysctls};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/firewall")
        .join(name)
}

/// A snapshot holding a fixture's captures (firewall, sysctls, interfaces) over the checks'
/// test base (accounts, a service owner).
pub fn facts(name: &str) -> HostFacts {
    let d = dir(name);
    let read = |f: &str| std::fs::read_to_string(d.join(f)).ok();
    let mut iptables = Vec::new();
    for (file, family, backend) in [
        ("iptables-save.txt", IptablesFamily::Ipv4, "nft"),
        ("ip6tables-save.txt", IptablesFamily::Ipv6, "nft"),
        ("iptables-legacy-save.txt", IptablesFamily::Ipv4, "legacy"),
        ("ip6tables-legacy-save.txt", IptablesFamily::Ipv6, "legacy"),
    ] {
        if let Some(text) = read(file).filter(|t| t.lines().any(|l| l.starts_with('*'))) {
            iptables.push(IptablesDump {
                family,
                backend: backend.into(),
                text,
            });
        }
    }
    let sysctls = Sysctls(
        read("sysctls.txt")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, v)| (k.to_string(), v.to_string())))
            .collect(),
    );
    let ifaces: serde_json::Value =
        serde_json::from_str(&read("interfaces.json").expect("interfaces.json")).expect("json");
    let interfaces = ifaces
        .as_array()
        .expect("array")
        .iter()
        .map(|i| Interface {
            name: i["ifname"].as_str().unwrap_or_default().to_string(),
            index: i["ifindex"].as_u64().unwrap_or(0) as u32,
            up: true,
            loopback: i["link_type"] == "loopback",
            kind: None,
            mac: None,
            addresses: i["addr_info"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| {
                            Some(InterfaceAddress {
                                address: x["local"].as_str()?.parse().ok()?,
                                prefix_len: x["prefixlen"].as_u64()? as u8,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            master: None,
        })
        .collect();
    let mut facts = crate::checks::test_facts::base();
    facts.firewall = FirewallFacts {
        nft_json: read("ruleset.json").map(|t| serde_json::from_str(&t).expect("ruleset.json")),
        nft_text: read("ruleset.nft"),
        iptables,
    };
    facts.sysctls = sysctls;
    facts.interfaces = interfaces;
    facts
}

fn fw(name: &str) -> Firewall {
    Firewall::new(&facts(name))
}

/// Loopback destination (`dst` true) or source, arriving on eth0: dropped before NAT (for
/// destinations) or before delivery (for sources)?
fn antispoof(f: &Firewall, v6: bool, dst: bool) -> Decision {
    let outside = all_addrs(v6).subtract(&loopback(v6));
    let (src, d, reach) = if dst {
        (outside, loopback(v6), Reach::BeforeNat)
    } else {
        (
            loopback(v6),
            f.analysis.host.local(v6).subtract(&loopback(v6)),
            Reach::FirewallInput,
        )
    };
    f.analysis
        .query(Packets::arriving(v6, "eth0", src, d), reach)
        .decision()
}

#[test]
fn complete_raw_guard_blocks_both_halves_of_both_families() {
    let f = fw("raw-antispoof-complete");
    for v6 in [false, true] {
        for dst in [false, true] {
            assert_eq!(antispoof(&f, v6, dst), Decision::Blocked, "v6={v6} dst={dst}");
        }
    }
}

#[test]
fn drops_conditioned_on_a_mark_nothing_sets_block_nothing() {
    let f = fw("antispoof-only-with-mark");
    for v6 in [false, true] {
        for dst in [false, true] {
            assert_eq!(antispoof(&f, v6, dst), Decision::Open, "v6={v6} dst={dst}");
        }
    }
}

#[test]
fn cis_rules_cover_sources_only() {
    let f = fw("cis-loopback-source-only");
    assert_eq!(antispoof(&f, false, false), Decision::Blocked);
    assert_eq!(antispoof(&f, false, true), Decision::Open);
    // `ip6 saddr ::1 drop` leaves the IPv4-mapped loopback source (delivered by the kernel).
    assert_eq!(antispoof(&f, true, false), Decision::Open);
    let outside = all_addrs(true).subtract(&loopback(true));
    let only_v6_loopback = f.analysis.query(
        Packets::arriving(true, "eth0", RangeSet::single(1), outside),
        Reach::FirewallInput,
    );
    assert_eq!(only_v6_loopback.decision(), Decision::Blocked);
}

#[test]
fn no_ruleset_drops_nothing() {
    let f = fw("no-firewall");
    assert!(f.captured);
    assert_eq!(antispoof(&f, false, true), Decision::Open);
    assert_eq!(antispoof(&f, true, false), Decision::Open);
}

#[test]
fn docker_27_publishes_the_loopback_port_to_the_lan() {
    let f = fw("docker-27-loopback-publish");
    let nat = f.loopback_nat();
    assert_eq!(nat.len(), 1, "{nat:#?}");
    let n = &nat[0];
    assert!(n.from_loopback);
    assert_eq!(n.decision, Decision::Open, "{:#?}", n.evidence);
    assert_eq!(n.to, (Some("172.17.0.2".parse().unwrap()), Some(80)));
    assert_eq!(n.matched, (Some("127.0.0.1".parse().unwrap()), Some(8080)));
    assert!(n.evidence.iter().any(|e| e.contains("forwarded")), "{:#?}", n.evidence);
    assert!(
        n.evidence.iter().any(
            |e| e.contains("-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT")
        ),
        "{:#?}",
        n.evidence
    );
}

#[test]
fn docker_28_raw_drop_blocks_the_published_loopback_port_but_is_no_general_antispoof() {
    let f = fw("docker-28-loopback-publish");
    let nat = f.loopback_nat();
    assert_eq!(nat.len(), 1, "{nat:#?}");
    assert_eq!(nat[0].decision, Decision::Blocked, "{:#?}", nat[0].evidence);
    assert!(
        nat[0]
            .evidence
            .iter()
            .any(|e| e.contains("-A PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP")),
        "{:#?}",
        nat[0].evidence
    );
    // Only tcp/8080 is dropped: other loopback-destined packets pass the raw table.
    assert_eq!(antispoof(&f, false, true), Decision::Open);
}

#[test]
fn kube_firewall_drops_non_local_sources_to_127_8() {
    let f = fw("kube-proxy-firewall");
    let (decision, evidence) = f.localnet_drop("eth0");
    assert_eq!(decision, Decision::Blocked, "{evidence:#?}");
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("KUBE-FIREWALL") && e.contains("! -s 127.0.0.0/8 -d 127.0.0.0/8")),
        "{evidence:#?}"
    );
    assert!(f.loopback_nat().is_empty());
    // Not before NAT, and not for loopback sources.
    assert_eq!(antispoof(&f, false, true), Decision::Open);
    assert_eq!(antispoof(&f, false, false), Decision::Open);
}

#[test]
fn without_kube_firewall_route_localnet_delivers() {
    let f = fw("ecs-agent-dnat-to-loopback");
    assert_eq!(f.localnet_drop("eth0").0, Decision::Open);
}

#[test]
fn ecs_dnat_to_loopback_is_delivered_with_route_localnet() {
    let f = fw("ecs-agent-dnat-to-loopback");
    let nat = f.loopback_nat();
    assert_eq!(nat.len(), 1, "{nat:#?}");
    assert!(!nat[0].from_loopback);
    assert_eq!(nat[0].to, (Some("127.0.0.1".parse().unwrap()), Some(51679)));
    assert_eq!(nat[0].decision, Decision::Open, "{:#?}", nat[0].evidence);
}

#[test]
fn ecs_dnat_to_loopback_is_a_martian_without_route_localnet() {
    let mut facts = facts("ecs-agent-dnat-to-loopback");
    facts
        .sysctls
        .0
        .insert("net.ipv4.conf.all.route_localnet".into(), "0".into());
    let nat = Firewall::new(&facts).loopback_nat();
    assert_eq!(nat[0].decision, Decision::Blocked, "{:#?}", nat[0].evidence);
    assert!(
        nat[0].evidence.iter().any(|e| e.contains("martian destination")),
        "{:#?}",
        nat[0].evidence
    );
}

#[test]
fn ufw_stock_rules_have_no_loopback_drop() {
    let f = fw("ufw-stock");
    assert_eq!(antispoof(&f, false, true), Decision::Open);
    assert_eq!(antispoof(&f, true, true), Decision::Open);
}

#[test]
fn firewalld_style_rpfilter_drops_v6_loopback_sources_except_what_it_exempts() {
    let f = fw("firewalld-style");
    assert_eq!(antispoof(&f, false, true), Decision::Open);
    let tcp_from_v6_loopback = {
        let mut p = Packets::arriving(
            true,
            "eth0",
            RangeSet::single(1),
            f.analysis.host.local(true).subtract(&loopback(true)),
        );
        p.proto = RangeSet::single(6);
        p
    };
    assert_eq!(
        f.analysis.query(tcp_from_v6_loopback, Reach::FirewallInput).decision(),
        Decision::Blocked
    );
}

#[test]
fn owner_match_in_nft_syntax_names_the_allowed_uids() {
    let f = fw("owner-match-nft");
    let a = f.uids_allowed("127.0.0.1".parse().unwrap(), 6, 7001);
    assert_eq!(a.allowed, RangeSet::from_ranges(vec![(0, 0), (1000, 1000)]), "{a:#?}");
    assert!(a.maybe.is_empty());
    assert!(f.uids_allowed("::1".parse().unwrap(), 6, 7001).allowed.contains(1000));
    assert!(f.uids_allowed("127.0.0.1".parse().unwrap(), 6, 7002).unrestricted());
}

#[test]
fn owner_match_in_iptables_syntax_names_the_allowed_uids() {
    let f = fw("owner-match-iptables");
    let a = f.uids_allowed("127.0.0.1".parse().unwrap(), 6, 7002);
    assert_eq!(a.allowed, RangeSet::from_ranges(vec![(0, 0), (1000, 1002)]), "{a:#?}");
    assert_eq!(
        f.uids_allowed("::1".parse().unwrap(), 6, 7002).allowed,
        RangeSet::single(0)
    );
    assert!(f.uids_allowed("0.0.0.0".parse().unwrap(), 17, 7002).unrestricted());
}

#[test]
fn iptables_nft_tables_are_read_once_from_the_dump() {
    let f = fw("docker-27-loopback-publish");
    let filters = f
        .analysis
        .ruleset
        .tables
        .iter()
        .filter(|t| t.name == "filter" && t.family == super::model::Family::Ip)
        .count();
    assert_eq!(filters, 1);
    assert!(
        f.analysis.ruleset.not_understood.is_empty(),
        "{:#?}",
        f.analysis.ruleset.not_understood
    );
}

#[test]
fn legacy_backend_rules_count_and_are_labelled_as_legacy() {
    let f = fw("legacy-iptables-antispoof");
    for v6 in [false, true] {
        for dst in [false, true] {
            assert_eq!(antispoof(&f, v6, dst), Decision::Blocked, "v6={v6} dst={dst}");
        }
    }
    let legacy = f
        .analysis
        .ruleset
        .tables
        .iter()
        .filter(|t| t.origin == super::model::Origin::IptablesLegacy)
        .count();
    assert_eq!(legacy, 2);
    let outside = all_addrs(false).subtract(&loopback(false));
    let answer = f.analysis.query(
        Packets::arriving(false, "eth0", outside, loopback(false)),
        Reach::BeforeNat,
    );
    assert_eq!(
        answer.drops(),
        vec!["iptables-legacy raw PREROUTING: -A PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP".to_string()]
    );
}

#[test]
fn conntrack_state_reads_invalid_in_raw_and_new_after_it() {
    // nft_ct_get_eval(): no conntrack entry yet (raw, before -200) reads as invalid; a status
    // match fails outright.
    let f = fw("firewalld-style");
    let mut p = Packets::arriving(
        false,
        "eth0",
        RangeSet::single(0xc000_0201),
        f.analysis.host.local(false).clone(),
    );
    p.before_conntrack = true;
    let invalid = super::model::Cond::Ct {
        states: super::model::ct::INVALID,
        status: 0,
        negate: false,
    };
    let not_dnat = super::model::Cond::Ct {
        states: 0,
        status: super::model::ct::STATUS_DNAT,
        negate: true,
    };
    assert_eq!(f.analysis.test_cond(&invalid, &p), Some(true));
    assert_eq!(f.analysis.test_cond(&not_dnat, &p), Some(false));
    p.before_conntrack = false;
    assert_eq!(f.analysis.test_cond(&invalid, &p), Some(false));
    assert_eq!(f.analysis.test_cond(&not_dnat, &p), Some(true));
}

/// A datagram from outside to `port` of the fixture's eth0 address (IPv6: from the IPv4-mapped
/// loopback source the kernel delivers), through the whole input path.
fn udp_to_port(f: &Firewall, v6: bool, port: u16) -> Decision {
    let src = if v6 {
        loopback(true).subtract(&RangeSet::single(1))
    } else {
        all_addrs(false).subtract(&loopback(false))
    };
    let dst = f.analysis.host.local(v6).subtract(&loopback(v6));
    let mut p = Packets::arriving(v6, "eth0", src, dst);
    p.proto = RangeSet::single(17);
    p.dport = RangeSet::single(port.into());
    f.analysis.query(p, Reach::Full).decision()
}

#[test]
fn ufw_default_deny_is_known_for_both_families_despite_its_hop_limit_and_routing_header_matches() {
    // ufw's ip6tables rules use `-m rt --rt-type 0` and `-m hl --hl-eq 255`: what the sender
    // sets as it likes, not unknowns. Default deny incoming drops an unlisted port.
    let f = fw("ufw-stock");
    assert_eq!(udp_to_port(&f, true, 9002), Decision::Blocked);
    assert_eq!(udp_to_port(&f, false, 9001), Decision::Blocked);
}

#[test]
fn harden_s_connection_limit_is_a_condition_the_sender_controls() {
    // `ct count over 3` refuses uid 1001's fourth connection at once, not its first: whether a
    // connection gets through depends on how many the sender holds open, its own choice.
    let f = fw("harden-connection-limit");
    assert!(
        f.analysis.ruleset.not_understood.is_empty(),
        "{:?}",
        f.analysis.ruleset.not_understood
    );
    let limited = f
        .analysis
        .ruleset
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .find(|r| r.text.contains("ct count over 3"))
        .expect("the limit rule, rendered in nft's words");
    assert!(
        limited
            .items
            .iter()
            .any(|i| matches!(i, super::model::Item::Cond(super::model::Cond::Chance(c)) if c == "ct count over 3")),
        "{limited:?}"
    );
    for addr in ["127.0.0.1", "::1"] {
        let a = f.uids_allowed(addr.parse().unwrap(), 6, 7001);
        assert_eq!(
            a.allowed,
            RangeSet::from_ranges(vec![(0, 0), (1000, 1001)]),
            "{addr}: {a:#?}"
        );
        assert!(a.maybe.is_empty() && a.unknowns.is_empty(), "{addr}: {a:#?}");
        assert!(
            a.restricting.iter().any(|r| r.contains("ct count over 3")),
            "{addr}: the limit refuses some of uid 1001's connections: {a:#?}"
        );
    }
}
