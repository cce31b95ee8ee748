//! Components that need `route_localnet=1` (notes §4): kube-proxy (localhost NodePorts),
//! Docker with `userland-proxy=false` (on its bridges), the ECS agent (its credentials endpoint
//! DNATed to 127.0.0.1), and any NAT rule that sends non-loopback-addressed traffic to loopback.
//! Where one is found, harden keeps the setting it needs and relies on the raw drop instead.

use loopwarden_core::addr::is_loopback;
use loopwarden_core::facts::HostFacts;
use loopwarden_core::firewall::model::{Origin, Ruleset};
use loopwarden_core::firewall::questions::LoopbackNat;
use serde::Serialize;

/// What needs `route_localnet=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// kube-proxy: localhost NodePorts are routed from 127.0.0.1 to pods (it sets `all`).
    KubeProxy,
    /// dockerd with `userland-proxy=false`: host clients of `127.0.0.1:PUBLISHED` are routed to
    /// containers over the bridge (it sets the bridge's own key).
    DockerUserlandProxyOff,
    /// The Amazon ECS agent: `169.254.170.2:80` is DNATed to `127.0.0.1:51679`.
    EcsAgent,
    /// Another NAT rule that translates traffic not addressed to loopback to a loopback address.
    NatToLoopback,
}

impl Component {
    /// The component's name for people.
    pub fn name(self) -> &'static str {
        match self {
            Component::KubeProxy => "kube-proxy (localhost NodePorts)",
            Component::DockerUserlandProxyOff => "Docker with userland-proxy=false",
            Component::EcsAgent => "the ECS agent (task credentials endpoint)",
            Component::NatToLoopback => "a NAT rule translating to loopback",
        }
    }
}

/// Which `route_localnet` keys a component needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "interface")]
pub enum Scope {
    /// `all` (and so every interface: the kernel ORs `all` with each interface's own key).
    All,
    /// One interface's own key.
    Interface(String),
}

/// A component that needs `route_localnet=1`, and what shows it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Keeper {
    /// What.
    pub component: Component,
    /// Where it needs the setting.
    pub scope: Scope,
    /// What in the snapshot shows it.
    pub evidence: String,
}

/// A component that is there but does not need `route_localnet=1`, although one might think so:
/// the plan turns it off all the same, and says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotNeeded {
    /// What.
    pub component: Component,
    /// What in the snapshot shows it, and why it does not need the setting.
    pub why: String,
}

/// What the snapshot shows about the components that may need `route_localnet=1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Those that need it: kept.
    pub kept: Vec<Keeper>,
    /// Those that do not.
    pub not_kept: Vec<NotNeeded>,
}

/// Every component of the snapshot that needs `route_localnet=1`, and those seen that do not.
pub fn detect(facts: &HostFacts, ruleset: &Ruleset, nats: &[LoopbackNat]) -> Needs {
    let mut needs = Needs::default();
    match kube_proxy(facts, ruleset) {
        Some(KubeProxy::Iptables(evidence)) => needs.kept.push(Keeper {
            component: Component::KubeProxy,
            scope: Scope::All,
            evidence,
        }),
        Some(KubeProxy::Nftables(evidence)) => needs.not_kept.push(NotNeeded {
            component: Component::KubeProxy,
            why: format!(
                "kube-proxy runs in nftables mode ({evidence}): that mode has no localhost NodePorts and never \
                 uses route_localnet, so a route_localnet=1 left on (by an earlier iptables mode) is turned off"
            ),
        }),
        None => {}
    }
    needs.kept.extend(docker_bridges(facts, ruleset));
    needs.kept.extend(nat_to_loopback(nats));
    needs
}

/// kube-proxy, and which mode the snapshot shows it in.
enum KubeProxy {
    /// The iptables (or ipvs) mode: localhost NodePorts are routed from 127.0.0.1 to pods, which
    /// needs `route_localnet=1` on `all`. What shows it.
    Iptables(String),
    /// The nftables mode: no localhost NodePorts. What shows it.
    Nftables(String),
}

/// Chains only kube-proxy's iptables and ipvs modes make, in the nat table (kubelet makes
/// `KUBE-FIREWALL` and the canaries whatever the mode: they show nothing about kube-proxy).
const IPTABLES_MODE_CHAINS: [&str; 2] = ["KUBE-SERVICES", "KUBE-NODEPORTS"];

fn kube_proxy(facts: &HostFacts, ruleset: &Ruleset) -> Option<KubeProxy> {
    let iptables_chain = ruleset.tables.iter().find_map(|t| {
        t.chains
            .iter()
            .find(|c| t.name == "nat" && IPTABLES_MODE_CHAINS.contains(&c.name.as_str()))
            .map(|c| format!("chain {} in {} is loaded", c.name, t.label()))
    });
    let nft_table = ruleset
        .tables
        .iter()
        .find(|t| t.name == "kube-proxy" && matches!(t.origin, Origin::Nftables))
        .map(|t| format!("table {} is loaded", t.label()));
    let process = facts.processes.iter().find(|p| p.name == "kube-proxy");
    let mode = process.and_then(|p| proxy_mode(&p.cmdline));
    let running = process.map(|p| match mode {
        Some(m) => format!("kube-proxy runs (pid {}, --proxy-mode={m})", p.pid),
        None => format!("kube-proxy runs (pid {})", p.pid),
    });
    let seen = |parts: [Option<&String>; 2]| parts.into_iter().flatten().cloned().collect::<Vec<_>>().join(", ");
    match (mode, &iptables_chain, &nft_table) {
        (Some("nftables"), _, _) | (None, None, Some(_)) => {
            Some(KubeProxy::Nftables(seen([running.as_ref(), nft_table.as_ref()])))
        }
        (Some(_), _, _) | (None, Some(_), _) => {
            Some(KubeProxy::Iptables(seen([running.as_ref(), iptables_chain.as_ref()])))
        }
        // Running, with no rules of either mode yet and no mode on its command line (a --config
        // file decides): iptables, the default, is assumed — keeping is the safe mistake.
        (None, None, None) => running.map(|r| KubeProxy::Iptables(format!("{r}; its mode is not on its command line"))),
    }
}

/// `--proxy-mode=MODE` or `--proxy-mode MODE` on kube-proxy's command line.
fn proxy_mode(cmdline: &[String]) -> Option<&str> {
    cmdline
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--proxy-mode") {
            Some(rest) if rest.starts_with('=') => Some(&rest[1..]),
            Some("") => cmdline.get(i + 1).map(String::as_str),
            _ => None,
        })
}

/// Bridges whose own `route_localnet` is on while Docker is there (dockerd runs, or its nat
/// chain `DOCKER` is loaded). dockerd sets a bridge's own key only when the userland proxy is
/// off, and that can come from its command line or from `/etc/docker/daemon.json`
/// (`"userland-proxy": false`), which the snapshot does not hold: the bridge's setting is the
/// evidence, the command line only names the cause when it shows it.
fn docker_bridges(facts: &HostFacts, ruleset: &Ruleset) -> Vec<Keeper> {
    let dockerd = facts.processes.iter().find(|p| p.name == "dockerd");
    let docker_chain = ruleset
        .tables
        .iter()
        .any(|t| t.name == "nat" && t.chains.iter().any(|c| c.name == "DOCKER"));
    if dockerd.is_none() && !docker_chain {
        return Vec::new();
    }
    let cause = match dockerd {
        Some(p) if userland_proxy_off_flag(&p.cmdline) => {
            format!("dockerd (pid {}) runs with --userland-proxy=false", p.pid)
        }
        Some(p) => format!(
            "dockerd (pid {}) runs (userland-proxy=false comes from its daemon.json, not its command line)",
            p.pid
        ),
        None => "Docker's nat chain DOCKER is loaded".to_string(),
    };
    facts
        .interfaces
        .iter()
        .filter(|i| i.kind.as_deref() == Some("bridge"))
        .filter(|i| facts.sysctls.ipv4_conf(&i.name, "route_localnet") == Some(1))
        .map(|i| Keeper {
            component: Component::DockerUserlandProxyOff,
            scope: Scope::Interface(i.name.clone()),
            evidence: format!(
                "{cause}, and bridge {} has route_localnet=1 (dockerd sets it when its userland proxy is off)",
                i.name
            ),
        })
        .collect()
}

/// Whether dockerd's command line turns the userland proxy off.
fn userland_proxy_off_flag(cmdline: &[String]) -> bool {
    cmdline
        .windows(2)
        .any(|w| w[0] == "--userland-proxy" && w[1] == "false")
        || cmdline.iter().any(|a| a == "--userland-proxy=false")
}

/// NAT rules translating traffic that is *not* addressed to loopback to a loopback address
/// (a rule matching loopback destinations serves only spoofers from outside: not a need).
fn nat_to_loopback(nats: &[LoopbackNat]) -> Vec<Keeper> {
    let mut out: Vec<Keeper> = Vec::new();
    for nat in nats.iter().filter(|n| !n.from_loopback && !n.v6) {
        if nat.matched.0.is_some_and(is_loopback) || out.iter().any(|k| k.evidence.ends_with(&nat.rule)) {
            continue;
        }
        let ecs = nat.matched.0 == Some(std::net::IpAddr::from([169, 254, 170, 2])) || nat.to.1 == Some(51679);
        out.push(Keeper {
            component: if ecs {
                Component::EcsAgent
            } else {
                Component::NatToLoopback
            },
            scope: Scope::All,
            evidence: format!("NAT rule: {}", nat.rule),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::fixture;
    use loopwarden_core::firewall::questions::Firewall;

    fn needs(name: &str) -> Needs {
        let facts = fixture(name);
        let fw = Firewall::new(&facts);
        detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat())
    }

    fn keepers(name: &str) -> Vec<Keeper> {
        needs(name).kept
    }

    #[test]
    fn kube_proxys_iptables_mode_is_found_by_its_nat_chains() {
        let found = keepers("kube-proxy-firewall");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].component, &found[0].scope),
            (Component::KubeProxy, &Scope::All)
        );
        // Named for what was seen: kube-proxy's own nat chain, not kubelet's KUBE-FIREWALL.
        assert_eq!(found[0].evidence, "chain KUBE-SERVICES in iptables nat is loaded");
    }

    #[test]
    fn kube_proxys_nftables_mode_does_not_keep_route_localnet_and_says_what_showed_it() {
        let found = needs("kube-proxy-nftables-nodeport");
        assert!(found.kept.is_empty(), "{found:?}");
        assert_eq!(found.not_kept.len(), 1, "{found:?}");
        assert!(
            found.not_kept[0].why.contains("(table ip kube-proxy is loaded)"),
            "{}",
            found.not_kept[0].why
        );
    }

    #[test]
    fn kube_proxys_mode_comes_from_its_command_line_first() {
        let mut facts = fixture("kube-proxy-nftables-nodeport");
        facts.processes.push(loopwarden_core::facts::Process {
            pid: 4242,
            ppid: 1,
            name: "kube-proxy".into(),
            exe: None,
            cmdline: vec!["kube-proxy".into(), "--proxy-mode".into(), "iptables".into()],
            uid: 0,
        });
        let fw = Firewall::new(&facts);
        let found = detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat());
        assert_eq!(found.kept.len(), 1, "{found:?}");
        assert_eq!(
            found.kept[0].evidence,
            "kube-proxy runs (pid 4242, --proxy-mode=iptables)"
        );
        assert_eq!(
            proxy_mode(&["kube-proxy".into(), "--proxy-mode=nftables".into()]),
            Some("nftables")
        );
    }

    #[test]
    fn the_ecs_credentials_dnat_needs_route_localnet() {
        let found = keepers("ecs-agent-dnat-to-loopback");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].component, Component::EcsAgent);
        assert!(found[0].evidence.contains("169.254.170.2"), "{}", found[0].evidence);
    }

    #[test]
    fn docker_publishes_and_plain_hosts_need_nothing() {
        for name in [
            "docker-27-loopback-publish",
            "docker-28-loopback-publish",
            "ufw-stock",
            "no-firewall",
        ] {
            assert!(keepers(name).is_empty(), "{name}: {:?}", keepers(name));
        }
    }

    #[test]
    fn a_docker_bridge_with_route_localnet_is_kept_when_docker_runs_without_userland_proxy() {
        let mut facts = fixture("docker-27-loopback-publish");
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.docker0.route_localnet".into(), "1".into());
        for i in facts.interfaces.iter_mut().filter(|i| i.name == "docker0") {
            i.kind = Some("bridge".into());
        }
        let fw = Firewall::new(&facts);
        let found = detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat()).kept;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].scope, Scope::Interface("docker0".into()));
    }

    #[test]
    fn a_docker_bridge_set_by_daemon_json_is_kept_though_the_command_line_says_nothing() {
        let mut facts = fixture("docker-27-loopback-publish");
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.docker0.route_localnet".into(), "1".into());
        for i in facts.interfaces.iter_mut().filter(|i| i.name == "docker0") {
            i.kind = Some("bridge".into());
        }
        for p in facts.processes.iter_mut().filter(|p| p.name == "dockerd") {
            p.cmdline.retain(|a| !a.contains("userland-proxy") && a != "false");
        }
        let fw = Firewall::new(&facts);
        let found = detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat()).kept;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].scope, Scope::Interface("docker0".into()));
        assert!(found[0].evidence.contains("route_localnet=1"), "{}", found[0].evidence);
    }
}
