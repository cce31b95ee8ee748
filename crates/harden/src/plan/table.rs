//! The planned nftables table `inet loopwarden`, as a model both renderings (nft JSON, nft text)
//! are made from.

use loopwarden_core::facts::Protocol;
pub use loopwarden_core::spoof_drops::Guard;
use serde::Serialize;
use std::net::IpAddr;

/// Name of the regular chain every drop rule jumps to: it counts the packet per interface and
/// family in the set, then drops it. Counting is a rule of its own, so a full set never stops the
/// drop.
pub const DROP_CHAIN: &str = "drop-spoofed";
/// Name of the base chain at prerouting, priority raw.
pub const PREROUTING_CHAIN: &str = "prerouting";
/// Name of the base chain at output that restricts local users (`--allow`).
pub const OUTPUT_CHAIN: &str = "output";
/// The raw priority: before conntrack (−200) and before destination NAT (−100).
pub const RAW_PRIORITY: i32 = -300;
/// The output chain's priority: `mangle` (−150), after conntrack (−200: `ct state`, `ct count`)
/// and before destination NAT (−100). Before NAT it sees the port a local client asked for — a
/// Docker publish with the userland proxy off DNATs `127.0.0.1:8090` to a container's port 80
/// right after — and the output interface, `lo`, as routed for that address.
pub const OUTPUT_PRIORITY: i32 = -150;
/// Name of the base chain at output, after NAT, that restricts what NAT made an allowed port of
/// (`--allow`): an output DNAT or REDIRECT (`tcp dport 9000 redirect to :8000`) would otherwise
/// carry any uid past [`OUTPUT_CHAIN`], which sees only the port asked for.
pub const OUTPUT_NAT_CHAIN: &str = "output_after_nat";
/// That chain's priority: `filter` (0), after destination NAT (−100): it sees the port NAT chose.
pub const OUTPUT_NAT_PRIORITY: i32 = 0;
/// Elements the per-interface set may hold (interfaces ever seen dropping something).
pub const SET_SIZE: u32 = 65535;

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// The prerouting drops, one per [`Guard`].
    pub guards: Vec<GuardRule>,
    /// Per-port restrictions to local users (`--allow`), in the output chain.
    pub allows: Vec<PortRule>,
}

/// One prerouting drop: packets not arriving on `lo` with a loopback source or destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardRule {
    /// Which rule (and counter) this is.
    pub guard: Guard,
    /// The address prefix it matches.
    pub addr: IpAddr,
    /// Its length.
    pub len: u8,
}

impl GuardRule {
    /// The rule of `guard`; `all_mapped` widens the mapped rules to `::ffff:0.0.0.0/96`.
    pub fn of(guard: Guard, all_mapped: bool) -> GuardRule {
        let (addr, len): (IpAddr, u8) = match guard {
            Guard::Ipv4Source | Guard::Ipv4Destination => (IpAddr::from([127, 0, 0, 0]), 8),
            Guard::Ipv6Source | Guard::Ipv6Destination => (IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128),
            Guard::MappedSource | Guard::MappedDestination if all_mapped => {
                (IpAddr::from([0u16, 0, 0, 0, 0, 0xffff, 0, 0]), 96)
            }
            Guard::MappedSource | Guard::MappedDestination => {
                (IpAddr::from([0u16, 0, 0, 0, 0, 0xffff, 0x7f00, 0]), 104)
            }
        };
        GuardRule { guard, addr, len }
    }

    /// `127.0.0.0/8`, `::1`: the prefix as nft writes it (a whole address without a length).
    pub fn prefix(&self) -> String {
        if self.len == 128 {
            self.addr.to_string()
        } else {
            format!("{}/{}", self.addr, self.len)
        }
    }

    /// `ip saddr 127.0.0.0/8`, `ip6 daddr ::1`: the match as nft writes it.
    pub fn matches(&self) -> String {
        let family = if self.guard.v6() { "ip6" } else { "ip" };
        let field = if self.guard.source() { "saddr" } else { "daddr" };
        format!("{family} {field} {}", self.prefix())
    }

    /// The rule's comment in the table.
    pub fn comment(&self) -> String {
        let family = if self.guard.v6() { "IPv6" } else { "IPv4" };
        let what = if self.guard.source() { "from" } else { "to" };
        format!("{family} {what} {} arriving on a non-loopback interface", self.prefix())
    }
}

/// Why a uid may connect to a restricted port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum AllowedBy {
    /// uid 0: always allowed (root bypasses owner matches with descriptor passing anyway).
    Root,
    /// The uid of a socket listening on the port: the service's owner, always allowed.
    Owner,
    /// Named in `--allow` (a user, or a member of a named group).
    Allow(String),
}

/// One uid allowed to connect, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedUid {
    /// The uid.
    pub uid: u32,
    /// Why.
    pub by: AllowedBy,
}

impl AllowedUid {
    /// `0 (root)`, `1000 (owner)`, `1001 (bob)`: the uid and why, for people.
    pub fn label(&self) -> String {
        match &self.by {
            AllowedBy::Root => format!("{} (root)", self.uid),
            AllowedBy::Owner => format!("{} (owner)", self.uid),
            AllowedBy::Allow(name) if *name == self.uid.to_string() => name.clone(),
            AllowedBy::Allow(name) => format!("{} ({name})", self.uid),
        }
    }
}

/// A loopback port that only some local users may connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRule {
    /// TCP or UDP.
    pub proto: Protocol,
    /// The port.
    pub port: u16,
    /// Who may connect, sorted by uid, one entry per uid (the strongest reason: root, then
    /// owner, then `--allow`).
    pub uids: Vec<AllowedUid>,
    /// With `--limit-connections`: at most this many connections per allowed user (neither root
    /// nor the owner) at once.
    pub limit: Option<u32>,
}

impl PortRule {
    /// The name of the counter of refused connections.
    pub fn refused_counter(&self) -> String {
        format!("refused-{}-{}", self.proto.as_str(), self.port)
    }

    /// The name of the counter of connections refused over the per-user limit.
    pub fn limited_counter(&self) -> String {
        format!("over-limit-{}-{}", self.proto.as_str(), self.port)
    }

    /// Uids the per-user limit applies to: the ones allowed only because `--allow` names them
    /// (root and owners are never limited).
    pub fn limited_uids(&self) -> Vec<u32> {
        if self.limit.is_none() {
            return Vec::new();
        }
        self.uids
            .iter()
            .filter(|a| matches!(a.by, AllowedBy::Allow(_)))
            .map(|a| a.uid)
            .collect()
    }
}

impl Table {
    /// The anti-spoofing drops, plus the given port restrictions.
    pub fn new(all_mapped: bool, allows: Vec<PortRule>) -> Table {
        Table {
            guards: Guard::ALL.into_iter().map(|g| GuardRule::of(g, all_mapped)).collect(),
            allows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_prefixes_follow_notes_section_2() {
        let t = Table::new(false, vec![]);
        let matches: Vec<String> = t.guards.iter().map(GuardRule::matches).collect();
        assert_eq!(
            matches,
            [
                "ip saddr 127.0.0.0/8",
                "ip daddr 127.0.0.0/8",
                "ip6 saddr ::1",
                "ip6 daddr ::1",
                "ip6 saddr ::ffff:127.0.0.0/104",
                "ip6 daddr ::ffff:127.0.0.0/104"
            ]
        );
        let wide = Table::new(true, vec![]);
        assert_eq!(wide.guards[4].matches(), "ip6 saddr ::ffff:0.0.0.0/96");
    }

    #[test]
    fn the_limit_spares_root_and_owners_even_when_named() {
        let rule = PortRule {
            proto: Protocol::Tcp,
            port: 8000,
            uids: vec![
                AllowedUid {
                    uid: 0,
                    by: AllowedBy::Root,
                },
                AllowedUid {
                    uid: 1000,
                    by: AllowedBy::Owner,
                },
                AllowedUid {
                    uid: 1001,
                    by: AllowedBy::Allow("bob".into()),
                },
            ],
            limit: Some(4),
        };
        assert_eq!(rule.limited_uids(), vec![1001]);
        assert_eq!(rule.refused_counter(), "refused-tcp-8000");
    }
}
