//! The typed ruleset both readers produce: tables of chains of rules, each rule a sequence of
//! conditions and statements the evaluator understands, or opaque parts it reports as such.

use super::ranges::RangeSet;

/// Where a table was read from. iptables-nft tables are read from `iptables-save` (see
/// [`super::read`]), legacy ones exist only there, everything else comes from nft's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `nft -j list ruleset`.
    Nftables,
    /// `iptables-save` of the nf_tables backend.
    IptablesNft,
    /// `iptables-save` of the legacy (x_tables) backend.
    IptablesLegacy,
}

/// Table family: which packets its chains see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only (`ip`, `iptables`).
    Ip,
    /// IPv6 only (`ip6`, `ip6tables`).
    Ip6,
    /// Both (`inet`).
    Inet,
    /// `arp`, `bridge`, `netdev`: not on the IP paths evaluated here.
    Other(String),
}

impl Family {
    /// Whether chains of this family see packets of the given IP version.
    pub fn sees(&self, v6: bool) -> bool {
        match self {
            Family::Ip => !v6,
            Family::Ip6 => v6,
            Family::Inet => true,
            Family::Other(_) => false,
        }
    }

    /// nft's name of the family.
    pub fn name(&self) -> &str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Other(s) => s,
        }
    }
}

/// A netfilter hook on the IP paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Every arriving packet, before routing.
    Prerouting,
    /// Packets for this host.
    Input,
    /// Routed packets.
    Forward,
    /// Locally generated packets.
    Output,
    /// Every leaving packet.
    Postrouting,
}

/// What kind of base chain: nat chains see only a connection's first packet and may rewrite it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    /// `type filter` (also iptables raw, mangle, filter, security).
    Filter,
    /// `type nat`.
    Nat,
    /// `type route`.
    Route,
}

/// A base chain's attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    /// The hook.
    pub hook: Hook,
    /// Priority: lower runs first (raw −300, conntrack −200, dstnat −100, filter 0).
    pub priority: i32,
    /// Filter, nat or route.
    pub kind: ChainKind,
    /// The verdict when the chain ends without one: `true` for accept.
    pub policy_accept: bool,
}

/// A chain: a base chain (attached to a hook) or a regular one reached by jump/goto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Chain name.
    pub name: String,
    /// The attachment, for base chains.
    pub base: Option<BaseChain>,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// A table with its chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Family.
    pub family: Family,
    /// Table name.
    pub name: String,
    /// Which capture it came from.
    pub origin: Origin,
    /// Chains in capture order.
    pub chains: Vec<Chain>,
}

impl Table {
    /// How evidence names this table: `inet loopwarden`, `iptables filter`, `ip6tables-legacy nat`.
    pub fn label(&self) -> String {
        let tool = |base: &str| match self.origin {
            Origin::IptablesLegacy => format!("{base}-legacy"),
            _ => base.to_string(),
        };
        match (self.origin, &self.family) {
            (Origin::Nftables, f) => format!("{} {}", f.name(), self.name),
            (_, Family::Ip6) => format!("{} {}", tool("ip6tables"), self.name),
            _ => format!("{} {}", tool("iptables"), self.name),
        }
    }
}

/// One rule: the parts in order, and the text evidence shows for it (the iptables-save line,
/// or the rule rendered in nft syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Conditions and statements in order.
    pub items: Vec<Item>,
    /// The rule as people read it.
    pub text: String,
}

/// Direction of an address, port or interface match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Source address/port, input interface.
    Src,
    /// Destination address/port, output interface.
    Dst,
}

/// Conntrack states as the kernel's bits (`ct state`, `--ctstate`).
pub mod ct {
    /// `invalid`.
    pub const INVALID: u32 = 1;
    /// `established`.
    pub const ESTABLISHED: u32 = 2;
    /// `related`.
    pub const RELATED: u32 = 4;
    /// `new`.
    pub const NEW: u32 = 8;
    /// `untracked`.
    pub const UNTRACKED: u32 = 64;
    /// Status bit: source NAT applied (`ct status snat`, virtual ctstate `SNAT`).
    pub const STATUS_SNAT: u32 = 0x10;
    /// Status bit: destination NAT applied (`ct status dnat`, virtual ctstate `DNAT`).
    pub const STATUS_DNAT: u32 = 0x20;
}

/// A condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// `iifname`/`oifname` (`by_index` false) or `iif`/`oif` (true); patterns end in `*` for
    /// a prefix.
    Iface {
        /// Input (`Src`) or output (`Dst`) device.
        dir: Dir,
        /// `iif`/`oif`: fails when there is no such device, whatever the operator.
        by_index: bool,
        /// Names or `prefix*` patterns; any may match.
        names: Vec<String>,
        /// `!=`.
        negate: bool,
    },
    /// `ip saddr`, `ip6 daddr`, `-s`, `-d`: implies the family.
    Addr {
        /// Source or destination.
        dir: Dir,
        /// IPv6 (`ip6`) or IPv4 (`ip`).
        v6: bool,
        /// The addresses.
        set: RangeSet,
        /// `!=`.
        negate: bool,
    },
    /// `meta nfproto`: only packets of that IP version.
    Nfproto {
        /// IPv6 or IPv4.
        v6: bool,
    },
    /// `meta l4proto`, `ip protocol`, `-p`.
    Proto {
        /// Protocol numbers.
        set: RangeSet,
        /// `!=`.
        negate: bool,
    },
    /// `tcp dport`, `th sport`, `--dport`: implies the protocol when one is named.
    Port {
        /// Source or destination port.
        dir: Dir,
        /// `Some(6)` for `tcp dport` (the rule needs TCP), `None` for `th`.
        proto: Option<u8>,
        /// Ports.
        set: RangeSet,
        /// `!=`.
        negate: bool,
    },
    /// `ct state`/`ct status`/`--ctstate`: true when the packet has any of `states` or any bit
    /// of `status`.
    Ct {
        /// State bits ([`ct`]).
        states: u32,
        /// Status bits ([`ct`]).
        status: u32,
        /// `!=`, `! --ctstate`.
        negate: bool,
    },
    /// `meta mark & mask == value`, `-m mark --mark value/mask`.
    Mark {
        /// Mask.
        mask: u32,
        /// Value after masking.
        value: u32,
        /// `!=`.
        negate: bool,
    },
    /// `meta skuid`/`--uid-owner` (`gid` false) or `meta skgid`/`--gid-owner` (true); needs a
    /// local socket.
    Owner {
        /// Group instead of user.
        gid: bool,
        /// The ids.
        set: RangeSet,
        /// `!=`.
        negate: bool,
    },
    /// `socket cgroupv2 level N "path"`, `-m cgroup --path`.
    Cgroup {
        /// The cgroup path.
        path: String,
        /// `!=`.
        negate: bool,
    },
    /// `fib daddr type …`, `-m addrtype --dst-type …`.
    AddrType {
        /// Which address.
        dir: Dir,
        /// Type names (`local`, `unicast`, `multicast`, `broadcast` …), lowercase.
        types: Vec<String>,
        /// Restricted to the input device's addresses (`. iif`, `--limit-iface-in`).
        iface_only: bool,
        /// `!=`, `! --dst-type`.
        negate: bool,
    },
    /// Reverse-path lookup `fib saddr . iif oif missing` / `-m rpfilter --invert`: true when
    /// the source is not routed back through the input device.
    RpfMissing {
        /// `!=` (`oif exists`).
        negate: bool,
    },
    /// A match that lets some packets through and not others in a way the sender controls or
    /// cannot be predicted (`limit`, `statistic`, `quota`): both outcomes are possible.
    Chance(String),
    /// Every one of these holds: one element of a concatenation (`ip daddr . meta l4proto . th
    /// dport` equal to `10.96.0.10 . tcp . 80`).
    All(Vec<Cond>),
    /// At least one of these holds: a lookup in a set or map of concatenations (one [`Cond::All`]
    /// per element; none at all for an empty set, which never matches).
    Any(Vec<Cond>),
    /// A match this reader cannot evaluate (`xt` expressions, concatenations …).
    Opaque(String),
}

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ends this base chain; the next base chain of the hook runs.
    Accept,
    /// Drops (also `reject`).
    Drop,
    /// Back to the calling chain, or the policy at a base chain.
    Return,
    /// Calls a chain.
    Jump(String),
    /// Continues in a chain without returning here.
    Goto(String),
    /// Next rule.
    Continue,
}

/// Address translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nat {
    /// `dnat to ADDR[:PORT]`, `-j DNAT --to-destination`.
    Dnat {
        /// New destination address (`None`: only the port changes).
        addr: Option<std::net::IpAddr>,
        /// New destination port.
        port: Option<u16>,
    },
    /// `redirect to :PORT`, `-j REDIRECT`: to the input device's primary address.
    Redirect {
        /// New destination port.
        port: Option<u16>,
    },
    /// `snat`, `masquerade`: the source changes; ends the nat chain.
    Source,
}

/// One part of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A condition: the rule goes on only when it holds.
    Cond(Cond),
    /// `meta mark set`, `-j MARK --set-xmark value/mask`: `mark = (mark & !mask) ^ value`.
    SetMark {
        /// Bits cleared first.
        mask: u32,
        /// Bits then xored in.
        value: u32,
    },
    /// `notrack`, `-j CT --notrack`: the packet becomes untracked (no NAT).
    NoTrack,
    /// Address translation; ends a nat chain like accept.
    Nat(Nat),
    /// A verdict map: the first entry whose condition holds gives the verdict.
    VMap(Vec<(Cond, Verdict)>),
    /// A verdict.
    Verdict(Verdict),
    /// A statement whose effect on the packet is unknown (an `xt` target, `queue` …): the path
    /// ends as unknown.
    Opaque(String),
}

/// Something a reader kept raw because the model has no place for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUnderstood {
    /// Where: `nft`, `iptables nat PREROUTING` …
    pub place: String,
    /// What, shortened.
    pub what: String,
}

/// The whole packet filter as the evaluator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// Tables from all sources.
    pub tables: Vec<Table>,
    /// Parts the readers could not model. Rules containing them are still evaluated; the parts
    /// make the paths through them unknown.
    pub not_understood: Vec<NotUnderstood>,
    /// How the sources were combined, for evidence.
    pub notes: Vec<String>,
    /// Base chains on hooks outside the evaluated IP paths (netdev/inet ingress, bridge …):
    /// they may drop a packet before prerouting, so "nothing drops it" cannot be concluded.
    pub off_path_chains: Vec<String>,
}

impl Ruleset {
    /// Number of rules in all tables.
    pub fn rule_count(&self) -> usize {
        self.tables.iter().flat_map(|t| &t.chains).map(|c| c.rules.len()).sum()
    }
}
