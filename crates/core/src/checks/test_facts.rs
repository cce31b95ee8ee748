//! Builders for the small snapshots the check unit tests start from.

use crate::facts::*;
use std::net::IpAddr;

/// An empty snapshot of a namespace with `lo` and `eth0` and fresh-namespace sysctls.
pub fn base() -> HostFacts {
    let mut sysctls = Sysctls::default();
    for iface in ["all", "default", "lo", "eth0"] {
        for (name, value) in [("route_localnet", "0"), ("rp_filter", "0"), ("accept_local", "0")] {
            sysctls
                .0
                .insert(format!("net.ipv4.conf.{iface}.{name}"), value.to_string());
        }
    }
    sysctls
        .0
        .insert("net.ipv4.ip_unprivileged_port_start".into(), "1024".into());
    HostFacts {
        schema: FACTS_SCHEMA.into(),
        host: HostInfo {
            hostname: "test".into(),
            kernel: "6.18.0".into(),
            ..Default::default()
        },
        inet_sockets: vec![],
        unix_sockets: vec![],
        processes: vec![Process {
            pid: 100,
            ppid: 1,
            name: "svc".into(),
            exe: Some("/usr/bin/svc".into()),
            cmdline: vec!["svc".into()],
            uid: 1000,
        }],
        interfaces: vec![
            iface("lo", 1, true, &["127.0.0.1/8", "::1/128"]),
            iface("eth0", 2, false, &["192.0.2.10/24"]),
        ],
        routes: Some(Vec::new()),
        sysctls,
        names: NameResolution {
            hosts_file: Some("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".into()),
            nsswitch_hosts: Some("files dns".into()),
            unreadable: vec![],
        },
        accounts: Accounts {
            users: vec![
                User {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                },
                User {
                    name: "alice".into(),
                    uid: 1000,
                    gid: 1000,
                },
                User {
                    name: "bob".into(),
                    uid: 1001,
                    gid: 1001,
                },
            ],
            groups: vec![
                Group {
                    name: "alice".into(),
                    gid: 1000,
                    members: vec![],
                },
                Group {
                    name: "bob".into(),
                    gid: 1001,
                    members: vec![],
                },
                Group {
                    name: "shared".into(),
                    gid: 2000,
                    members: vec!["alice".into(), "bob".into()],
                },
            ],
        },
        firewall: FirewallFacts::default(),
        relays: RelayFacts::default(),
        guards: Vec::new(),
    }
}

fn iface(name: &str, index: u32, loopback: bool, addrs: &[&str]) -> Interface {
    Interface {
        name: name.into(),
        index,
        up: true,
        loopback,
        kind: None,
        mac: (!loopback).then(|| "02:00:00:00:00:01".into()),
        master: None,
        addresses: addrs
            .iter()
            .map(|a| {
                let (ip, len) = a.split_once('/').expect("address/len");
                InterfaceAddress {
                    address: ip.parse().expect("ip"),
                    prefix_len: len.parse().expect("len"),
                }
            })
            .collect(),
    }
}

/// A TCP listener or unconnected UDP socket owned by pid 100 (uid 1000).
pub fn inet(protocol: Protocol, addr: &str, port: u16) -> InetSocket {
    let address: IpAddr = addr.parse().expect("test address");
    InetSocket {
        protocol,
        address,
        port,
        v6only: address.is_ipv6().then_some(true),
        state: if protocol == Protocol::Tcp {
            SocketState::Listen
        } else {
            SocketState::Unconnected
        },
        peer: None,
        bound_device: None,
        uid: 1000,
        inode: 1,
        owners: vec![100],
    }
}

/// Directory metadata.
pub fn dir(path: &str, uid: u32, gid: u32, mode: u32) -> FileMeta {
    FileMeta {
        path: path.into(),
        uid,
        gid,
        mode,
    }
}

/// A listening Unix stream socket at `path` with the given file metadata and parents.
pub fn unix_path(path: &str, file: Option<FileMeta>, parents: Vec<FileMeta>) -> UnixSocket {
    UnixSocket {
        kind: UnixType::Stream,
        name: UnixName::Path(path.into()),
        listening: true,
        inode: 2,
        uid: Some(1000),
        owners: vec![100],
        file,
        parents,
    }
}

/// Runs one check's evaluation over the facts.
pub fn run(check: &super::Check, facts: &HostFacts) -> Vec<crate::report::Finding> {
    let ctx = super::Context::new(facts);
    (check.evaluate.expect("static check"))(&ctx)
}
