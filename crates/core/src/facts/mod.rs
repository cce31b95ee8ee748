//! `HostFacts`: everything loopwarden knows about one network namespace of one host.
//!
//! Facts are raw observations — what the kernel, `/proc` and the configuration files said — and
//! carry no judgement. They serialise to versioned JSON so that a snapshot taken on one host can be
//! audited on another with identical results (`loopwarden facts --out`, then
//! `loopwarden audit --facts`).

mod accounts;
mod firewall;
mod guards;
mod host;
mod interfaces;
mod load;
mod names;
mod namespaces;
mod processes;
mod relays;
mod routes;
mod sockets;
mod sysctls;

pub use accounts::{Accounts, Group, User};
pub use firewall::{FirewallFacts, IptablesDump, IptablesFamily};
pub use guards::{
    Guard, GuardAccount, GuardCounters, GuardEndpoint, GuardFront, GuardMode, GUARD_STATUS_DIR, GUARD_STATUS_FILE,
    GUARD_STATUS_SCHEMA,
};
pub use host::{HostInfo, Limit};
pub use interfaces::{Interface, InterfaceAddress};
pub use names::NameResolution;
pub use namespaces::{
    BindMount, Container, HostFactsSet, NamespaceFacts, NamespaceIdentity, NamespaceLink, ProcessRef, Runtime,
    HOST_FACTS_SCHEMA, MAX_LISTED_PROCESSES,
};
pub use processes::Process;
pub use relays::{CommandCapture, RelayFacts};
pub use routes::{NextHop, Route, RouteKind, MAIN_TABLE};
pub use sockets::{FileMeta, InetSocket, Protocol, SocketState, UnixName, UnixSocket, UnixType};
pub use sysctls::Sysctls;

use serde::{Deserialize, Serialize};

/// The schema tag written into every snapshot. A snapshot with another tag is refused.
pub const FACTS_SCHEMA: &str = "loopwarden.facts/v1";

/// One snapshot of a network namespace: sockets, their owners, interfaces, sysctls, name
/// resolution inputs, accounts, firewall and relay configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// Always [`FACTS_SCHEMA`]; checked on load.
    pub schema: String,
    /// Who and where: hostname, kernel, namespace, privilege, and what could not be seen.
    pub host: HostInfo,
    /// TCP and UDP sockets (IPv4 and IPv6) that can receive traffic: TCP listeners, UDP sockets
    /// bound to a port (unconnected and connected).
    pub inet_sockets: Vec<InetSocket>,
    /// Unix sockets with a name (filesystem path or abstract), listening or bound.
    pub unix_sockets: Vec<UnixSocket>,
    /// Processes that own at least one of the sockets above.
    pub processes: Vec<Process>,
    /// Network interfaces of the namespace with their addresses.
    pub interfaces: Vec<Interface>,
    /// Every routing table's routes; `None` when they were not captured (a snapshot from an
    /// older loopwarden, or a failed dump: see the limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    /// The IPv4/IPv6 sysctls that matter to the localhost boundary.
    pub sysctls: Sysctls,
    /// `/etc/hosts` and the `hosts:` line of `/etc/nsswitch.conf`.
    pub names: NameResolution,
    /// Users and groups, to decide who besides a socket's owner may connect to it.
    pub accounts: Accounts,
    /// The packet filter as captured (nftables JSON and text, iptables-save output).
    #[serde(default)]
    pub firewall: FirewallFacts,
    /// Configuration of relays that could turn a remote client into a local one.
    #[serde(default)]
    pub relays: RelayFacts,
    /// Running `loopwarden guard` fronts, as they publish themselves (only trusted publications).
    #[serde(default)]
    pub guards: Vec<Guard>,
}

/// Why a snapshot could not be loaded. Each message says the cause once (the JSON parser's own
/// error is part of [`FactsError::Malformed`]'s message, not a further cause).
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// Reading the input failed.
    #[error("cannot be read: {0}")]
    Read(std::io::Error),
    /// The input is larger than the limit.
    #[error("larger than {} MiB, the most a snapshot may be", .limit / (1024 * 1024))]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The input is empty, or whitespace only.
    #[error("it is empty")]
    Empty,
    /// The input starts with a byte order mark.
    #[error("it starts with a {encoding} byte order mark (JSON has none): save it without one")]
    ByteOrderMark {
        /// Which mark: `UTF-8`, `UTF-16 little-endian`, `UTF-16 big-endian`.
        encoding: &'static str,
    },
    /// A byte that is not part of valid UTF-8.
    #[error("byte {offset} (0x{byte:02x}) is not UTF-8: a snapshot is UTF-8 JSON text")]
    NotUtf8 {
        /// Where, counted from 0.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A control byte, which JSON text never contains (binary input, `/dev/zero`).
    #[error("byte {offset} is 0x{byte:02x}, a control character: a snapshot is JSON text, which has none")]
    ControlByte {
        /// Where, counted from 0.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The first byte that is not whitespace does not open an object.
    #[error("byte {offset} is {}: a snapshot is a JSON object, which starts with '{{'", shown_byte(*.byte))]
    NotAnObject {
        /// Where, counted from 0.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The text is not JSON of the snapshot's shape.
    #[error("not a loopwarden facts snapshot: {0}")]
    Malformed(serde_json::Error),
    /// The snapshot parses but cannot be a real capture (a multi-namespace one without any
    /// namespace, with one twice, or with two machine namespaces).
    #[error("not a real capture: {0}")]
    Inconsistent(String),
    /// The snapshot carries another schema tag (another tool, or another version).
    #[error(
        "unsupported snapshot schema {found:?} (this build reads {expected:?}){}",
        schema_hint(found, expected)
    )]
    Schema {
        /// The tag found in the snapshot.
        found: String,
        /// The tag this build reads.
        expected: &'static str,
    },
}

impl FactsError {
    /// Where in the input the problem is, for the errors that have a place.
    pub fn offset(&self) -> Option<usize> {
        match self {
            FactsError::NotUtf8 { offset, .. }
            | FactsError::ControlByte { offset, .. }
            | FactsError::NotAnObject { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// What to do when the snapshot is of the other kind this build reads (one namespace's where every
/// namespace's was expected, or the reverse).
fn schema_hint(found: &str, expected: &str) -> &'static str {
    match (found, expected) {
        (HOST_FACTS_SCHEMA, FACTS_SCHEMA) => {
            ": it holds every network namespace (`facts --all-netns`); read it with --all-netns"
        }
        (FACTS_SCHEMA, HOST_FACTS_SCHEMA) => ": it holds one network namespace (`facts`); read it without --all-netns",
        _ => "",
    }
}

/// A byte as an error message shows it: `'['` when printable ASCII, else `0xe9`.
fn shown_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("0x{byte:02x}")
    }
}

impl HostFacts {
    /// Parses a snapshot from JSON text, refusing other schemas. One pass on the good path (a
    /// large firewall capture makes snapshots megabytes long); the schema tag is read separately
    /// only to explain a failure.
    pub fn from_json(text: &str) -> Result<HostFacts, FactsError> {
        #[derive(Deserialize)]
        struct Tag {
            schema: Option<String>,
        }
        let schema_error = |found: Option<String>| FactsError::Schema {
            found: found.unwrap_or_else(|| "<none>".to_string()),
            expected: FACTS_SCHEMA,
        };
        match serde_json::from_str::<HostFacts>(text) {
            Ok(facts) if facts.schema == FACTS_SCHEMA => Ok(facts),
            Ok(facts) => Err(schema_error(Some(facts.schema))),
            Err(e) => match serde_json::from_str::<Tag>(text) {
                Ok(Tag { schema }) if schema.as_deref() != Some(FACTS_SCHEMA) => Err(schema_error(schema)),
                _ => Err(FactsError::Malformed(e)),
            },
        }
    }

    /// Serialises the snapshot as pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
