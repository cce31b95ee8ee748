//! The IPv4/IPv6 sysctls that decide how loopback-addressed traffic from outside is treated.

use crate::facts::{Limit, Sysctls};
use std::collections::BTreeMap;
use std::fs;

/// Per-interface IPv4 settings read for `all`, `default` and every interface.
pub const IPV4_CONF: &[&str] = &[
    "route_localnet",
    "rp_filter",
    "accept_local",
    "accept_source_route",
    "forwarding",
    "log_martians",
];

/// Per-interface IPv6 settings read for `all`, `default` and every interface.
pub const IPV6_CONF: &[&str] = &["forwarding", "accept_source_route", "disable_ipv6"];

/// Namespace-wide settings.
pub const GLOBAL: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv6.bindv6only",
    "net.core.somaxconn",
];

/// Reads the settings above; unreadable ones are left out and named in `limits`.
pub fn collect(limits: &mut Vec<Limit>) -> Sysctls {
    let mut values = BTreeMap::new();
    let mut unreadable = Vec::new();
    for key in GLOBAL {
        read_into(
            &mut values,
            &mut unreadable,
            key,
            &format!("/proc/sys/{}", key.replace('.', "/")),
        );
    }
    for (family, names) in [("ipv4", IPV4_CONF), ("ipv6", IPV6_CONF)] {
        let dir = format!("/proc/sys/net/{family}/conf");
        let Ok(entries) = fs::read_dir(&dir) else {
            limits.push(Limit {
                scope: format!("sysctls.{family}"),
                detail: format!("cannot list {dir}"),
            });
            continue;
        };
        let mut ifnames: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ifnames.sort();
        for ifname in ifnames {
            for name in names {
                // Interface names may contain dots (VLANs: eth0.100): the path is built from its
                // parts, never from the dotted key.
                read_into(
                    &mut values,
                    &mut unreadable,
                    &format!("net.{family}.conf.{ifname}.{name}"),
                    &format!("/proc/sys/net/{family}/conf/{ifname}/{name}"),
                );
            }
        }
    }
    if !unreadable.is_empty() {
        limits.push(Limit {
            scope: "sysctls".into(),
            detail: format!("unreadable: {}", unreadable.join(", ")),
        });
    }
    Sysctls(values)
}

fn read_into(values: &mut BTreeMap<String, String>, unreadable: &mut Vec<String>, key: &str, path: &str) {
    match fs::read_to_string(path) {
        Ok(v) => {
            values.insert(key.to_string(), v.trim().to_string());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => unreadable.push(key.to_string()),
    }
}
