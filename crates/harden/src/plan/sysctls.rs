//! The sysctl part of a plan: `route_localnet=0` on `all`, `default` and every interface (unless
//! a component needs it), `accept_local=0`, and `rp_filter` only when asked — it breaks
//! asymmetric routing.

use super::keep::{Keeper, Scope};
use loopwarden_core::facts::HostFacts;
use serde::Serialize;
use std::fmt;

/// `--rp-filter`: the reverse-path filter mode to set on `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RpFilter {
    /// 1: a source must be routed back through the interface it came in on.
    Strict,
    /// 2: a source must be routable through some interface.
    Loose,
}

impl RpFilter {
    /// The sysctl value.
    pub fn value(self) -> &'static str {
        match self {
            RpFilter::Strict => "1",
            RpFilter::Loose => "2",
        }
    }
}

impl std::str::FromStr for RpFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<RpFilter, String> {
        match s {
            "strict" | "1" => Ok(RpFilter::Strict),
            "loose" | "2" => Ok(RpFilter::Loose),
            _ => Err(format!("{s:?}: expected strict (1) or loose (2)")),
        }
    }
}

/// An IPv4 per-interface sysctl: `net.ipv4.conf.<scope>.<name>`. The scope is kept apart
/// because interface names may contain dots (`eth0.100`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct SysctlKey {
    /// `all`, `default` or an interface name.
    pub scope: String,
    /// `route_localnet`, `accept_local`, `rp_filter`.
    pub name: String,
}

impl SysctlKey {
    /// The key of `name` for `scope`.
    pub fn new(scope: &str, name: &str) -> SysctlKey {
        SysctlKey {
            scope: scope.to_string(),
            name: name.to_string(),
        }
    }

    /// Whether it can only name a sysctl of `/proc/sys/net/ipv4/conf`: the scope one path
    /// component (no `/`, not `.` or `..`, at most 15 bytes: the kernel's limit for interface
    /// names), the name lower-case letters and `_`.
    pub fn is_valid(&self) -> bool {
        let scope = self.scope.as_str();
        !scope.is_empty()
            && scope.len() <= 15
            && !scope.contains('/')
            && scope != "."
            && scope != ".."
            && !self.name.is_empty()
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    }

    /// Its file under `/proc/sys`.
    pub fn proc_path(&self) -> std::path::PathBuf {
        std::path::Path::new("/proc/sys/net/ipv4/conf")
            .join(&self.scope)
            .join(&self.name)
    }

    /// Its spelling in a `sysctl.d` file: slashes, so that a dotted interface name stays one
    /// component.
    pub fn sysctl_d(&self) -> String {
        format!("net/ipv4/conf/{}/{}", self.scope, self.name)
    }

    /// Whether it names one interface (not `all` or `default`).
    pub fn per_interface(&self) -> bool {
        !matches!(self.scope.as_str(), "all" | "default")
    }
}

impl fmt::Display for SysctlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net.ipv4.conf.{}.{}", self.scope, self.name)
    }
}

/// One sysctl the plan writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysctlChange {
    /// Which.
    pub key: SysctlKey,
    /// Its value in the snapshot.
    pub from: String,
    /// The value the plan writes.
    pub to: String,
    /// Why.
    pub why: &'static str,
}

const ROUTE_LOCALNET: &str =
    "routes 127.0.0.0/8 arriving from outside to this host's loopback services (CVE-2020-8558)";
const ACCEPT_LOCAL: &str = "accepts a forged source that is one of this host's addresses (127.0.0.1)";
const RP_FILTER: &str = "asked for: rejects sources not routed back through (a) an interface";

/// The sysctl changes for `facts`: only keys the snapshot has and whose value differs.
pub fn plan(facts: &HostFacts, keepers: &[Keeper], rp_filter: Option<RpFilter>) -> Vec<SysctlChange> {
    let interfaces: Vec<&str> = facts
        .interfaces
        .iter()
        .filter(|i| !i.loopback && i.name != "lo")
        .map(|i| i.name.as_str())
        .collect();
    let scopes: Vec<&str> = ["all", "default"]
        .into_iter()
        .chain(interfaces.iter().copied())
        .collect();
    let keep_all = keepers.iter().any(|k| k.scope == Scope::All);
    let kept = |scope: &str| keepers.iter().any(|k| k.scope == Scope::Interface(scope.to_string()));
    let mut out = Vec::new();
    let mut set = |scope: &str, name: &str, to: &str, why: &'static str| {
        let key = SysctlKey::new(scope, name);
        if !key.is_valid() {
            return;
        }
        if let Some(from) = facts.sysctls.ipv4_conf(scope, name).map(|v| v.to_string()) {
            if from != to {
                out.push(SysctlChange {
                    key,
                    from,
                    to: to.to_string(),
                    why,
                });
            }
        }
    };
    if !keep_all {
        for scope in scopes.iter().filter(|s| !kept(s)) {
            set(scope, "route_localnet", "0", ROUTE_LOCALNET);
        }
    }
    for scope in &scopes {
        set(scope, "accept_local", "0", ACCEPT_LOCAL);
    }
    if let Some(mode) = rp_filter {
        set("all", "rp_filter", mode.value(), RP_FILTER);
        if mode == RpFilter::Strict {
            // The kernel uses the maximum of `all` and the interface: a loose interface stays loose.
            for scope in &interfaces {
                if facts.sysctls.ipv4_conf(scope, "rp_filter") == Some(2) {
                    set(scope, "rp_filter", "1", RP_FILTER);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::keep::Component;
    use crate::plan::testing::facts_with;

    fn set(facts: &mut HostFacts, key: &str, value: &str) {
        facts.sysctls.0.insert(format!("net.ipv4.conf.{key}"), value.into());
    }

    #[test]
    fn only_what_differs_is_written_and_rp_filter_only_when_asked() {
        let mut facts = facts_with(&[]);
        set(&mut facts, "eth0.route_localnet", "1");
        set(&mut facts, "all.accept_local", "1");
        set(&mut facts, "eth0.rp_filter", "2");
        let changes = plan(&facts, &[], None);
        let keys: Vec<String> = changes.iter().map(|c| format!("{}={}", c.key, c.to)).collect();
        assert_eq!(
            keys,
            [
                "net.ipv4.conf.eth0.route_localnet=0",
                "net.ipv4.conf.all.accept_local=0"
            ]
        );
        let strict = plan(&facts, &[], Some(RpFilter::Strict));
        assert!(strict
            .iter()
            .any(|c| c.key.to_string() == "net.ipv4.conf.all.rp_filter" && c.to == "1"));
        assert!(strict
            .iter()
            .any(|c| c.key.to_string() == "net.ipv4.conf.eth0.rp_filter" && c.to == "1"));
    }

    #[test]
    fn a_component_that_needs_route_localnet_keeps_it() {
        let mut facts = facts_with(&[]);
        set(&mut facts, "all.route_localnet", "1");
        let kube = Keeper {
            component: Component::KubeProxy,
            scope: Scope::All,
            evidence: String::new(),
        };
        assert!(plan(&facts, &[kube], None).is_empty());
        set(&mut facts, "eth0.route_localnet", "1");
        let bridge = Keeper {
            component: Component::DockerUserlandProxyOff,
            scope: Scope::Interface("eth0".into()),
            evidence: String::new(),
        };
        let changes = plan(&facts, &[bridge], None);
        let keys: Vec<String> = changes.iter().map(|c| c.key.to_string()).collect();
        assert_eq!(keys, ["net.ipv4.conf.all.route_localnet"]);
    }

    #[test]
    fn dotted_interface_names_stay_one_path_component() {
        let key = SysctlKey::new("eth0.100", "route_localnet");
        assert_eq!(
            key.proc_path(),
            std::path::Path::new("/proc/sys/net/ipv4/conf/eth0.100/route_localnet")
        );
        assert_eq!(key.sysctl_d(), "net/ipv4/conf/eth0.100/route_localnet");
    }
}
