//! The packet filter as captured: raw dumps, analysed later by pure functions.

use serde::{Deserialize, Serialize};

/// The firewall of the namespace, kept as the tools printed it so that analysis (and the lab,
/// which reloads it) sees exactly what the host had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FirewallFacts {
    /// `nft -j list ruleset`, parsed as generic JSON; `None` when nft is missing or failed (the
    /// reason is in the snapshot's limits). `{"nftables": []}` when the kernel listed no
    /// nf_tables table for the namespace and nft was not run.
    pub nft_json: Option<serde_json::Value>,
    /// `nft list ruleset` text.
    pub nft_text: Option<String>,
    /// `iptables-save` / `ip6tables-save` output per backend.
    pub iptables: Vec<IptablesDump>,
}

/// Address family of an iptables dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IptablesFamily {
    /// `iptables`.
    Ipv4,
    /// `ip6tables`.
    Ipv6,
}

/// One `iptables-save`-style dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IptablesDump {
    /// IPv4 or IPv6.
    pub family: IptablesFamily,
    /// `nft` or `legacy`.
    pub backend: String,
    /// The dump text.
    pub text: String,
}
