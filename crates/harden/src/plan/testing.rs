//! Snapshots the plan's unit tests start from: a small namespace, and the real rulesets captured
//! in `fixtures/firewall/` (with their sysctls and interfaces).

use loopwarden_core::facts::*;
use std::path::PathBuf;

/// A namespace with `lo` and `eth0` (192.0.2.10/24, 2001:db8::10/64), fresh-namespace sysctls,
/// an empty captured ruleset, users root, alice (1000) and bob (1001), and the given services
/// `(protocol, address, port, uid)`.
pub fn facts_with(services: &[(Protocol, &str, u16, u32)]) -> HostFacts {
    let mut sysctls = Sysctls::default();
    for scope in ["all", "default", "lo", "eth0"] {
        for name in ["route_localnet", "rp_filter", "accept_local"] {
            sysctls.0.insert(format!("net.ipv4.conf.{scope}.{name}"), "0".into());
        }
    }
    let snapshot = serde_json::json!({
        "schema": FACTS_SCHEMA,
        "host": {"hostname": "test", "kernel": "6.18.0", "netns": "net:[1]", "privileged": true, "collected_at": 0, "limits": []},
        "inet_sockets": [], "unix_sockets": [], "processes": [],
        "interfaces": [
            {"name": "lo", "index": 1, "up": true, "loopback": true, "kind": null, "mac": null,
             "addresses": [{"address": "127.0.0.1", "prefix_len": 8}, {"address": "::1", "prefix_len": 128}]},
            {"name": "eth0", "index": 2, "up": true, "loopback": false, "kind": "veth", "mac": "02:00:00:00:00:01",
             "addresses": [{"address": "192.0.2.10", "prefix_len": 24}, {"address": "2001:db8::10", "prefix_len": 64}]}
        ],
        "sysctls": {}, "names": {"hosts_file": null, "nsswitch_hosts": null},
        "accounts": {"users": [
            {"name": "root", "uid": 0, "gid": 0},
            {"name": "alice", "uid": 1000, "gid": 1000},
            {"name": "bob", "uid": 1001, "gid": 1001}
        ], "groups": []},
        "firewall": {"nft_json": {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]},
                     "nft_text": "", "iptables": []}
    });
    let mut facts = HostFacts::from_json(&snapshot.to_string()).expect("test snapshot");
    facts.sysctls = sysctls;
    for (i, (protocol, address, port, uid)) in services.iter().enumerate() {
        let address: std::net::IpAddr = address.parse().expect("address");
        facts.inet_sockets.push(InetSocket {
            protocol: *protocol,
            address,
            port: *port,
            v6only: address.is_ipv6().then_some(true),
            state: match protocol {
                Protocol::Tcp => SocketState::Listen,
                Protocol::Udp => SocketState::Unconnected,
            },
            peer: None,
            bound_device: None,
            uid: *uid,
            inode: 1000 + i as u64,
            owners: vec![],
        });
    }
    facts
}

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/firewall")
        .join(name)
}

/// [`facts_with`] (no services) carrying a captured fixture's rulesets, sysctls and interfaces.
pub fn fixture(name: &str) -> HostFacts {
    let dir = fixture_dir(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let mut facts = facts_with(&[]);
    facts.firewall = FirewallFacts {
        nft_json: read("ruleset.json").map(|t| serde_json::from_str(&t).expect("ruleset.json")),
        nft_text: read("ruleset.nft"),
        iptables: [
            ("iptables-save.txt", IptablesFamily::Ipv4),
            ("ip6tables-save.txt", IptablesFamily::Ipv6),
        ]
        .into_iter()
        .filter_map(|(file, family)| {
            let text = read(file).filter(|t| t.lines().any(|l| l.starts_with('*')))?;
            Some(IptablesDump {
                family,
                backend: "nft".into(),
                text,
            })
        })
        .collect(),
    };
    facts.sysctls = Sysctls(
        read("sysctls.txt")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(k, v)| (k.to_string(), v.to_string())))
            .collect(),
    );
    let listed: serde_json::Value =
        serde_json::from_str(&read("interfaces.json").expect("interfaces.json")).expect("interfaces json");
    facts.interfaces = listed
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
            master: None,
            addresses: i["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| {
                    Some(InterfaceAddress {
                        address: x["local"].as_str()?.parse().ok()?,
                        prefix_len: x["prefixlen"].as_u64()? as u8,
                    })
                })
                .collect(),
        })
        .collect();
    facts
}
