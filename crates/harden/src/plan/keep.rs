//! Components that need `route_localnet=1` (notes §4): kube-proxy (localhost NodePorts),
//! Docker with `userland-proxy=false` (on its bridges), the ECS agent (its credentials endpoint
//! DNATed to 127.0.0.1), and any NAT rule that sends non-loopback-addressed traffic to loopback.
//! Where one is found, harden keeps the setting it needs and relies on the raw drop instead.

use loopwarden_core::addr::is_loopback;
use loopwarden_core::facts::HostFacts;
use loopwarden_core::firewall::model::Ruleset;
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

/// Every component of the snapshot that needs `route_localnet=1`.
pub fn detect(facts: &HostFacts, ruleset: &Ruleset, nats: &[LoopbackNat]) -> Vec<Keeper> {
    let mut out = Vec::new();
    out.extend(kube_proxy(facts, ruleset));
    out.extend(docker_bridges(facts, ruleset));
    out.extend(nat_to_loopback(nats));
    out
}

fn kube_proxy(facts: &HostFacts, ruleset: &Ruleset) -> Option<Keeper> {
    let process = facts.processes.iter().find(|p| p.name == "kube-proxy");
    let evidence = match process {
        Some(p) => format!("kube-proxy runs (pid {})", p.pid),
        None => {
            let chain = ruleset.tables.iter().find_map(|t| {
                t.chains
                    .iter()
                    .find(|c| matches!(c.name.as_str(), "KUBE-SERVICES" | "KUBE-NODEPORTS" | "KUBE-FIREWALL"))
                    .map(|c| format!("{} {}", t.label(), c.name))
                    .or_else(|| (t.name == "kube-proxy").then(|| t.label()))
            })?;
            format!("kube-proxy's rules are loaded ({chain})")
        }
    };
    Some(Keeper {
        component: Component::KubeProxy,
        scope: Scope::All,
        evidence,
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

    fn keepers(name: &str) -> Vec<Keeper> {
        let facts = fixture(name);
        let fw = Firewall::new(&facts);
        detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat())
    }

    #[test]
    fn kube_proxy_is_found_by_its_chains() {
        let found = keepers("kube-proxy-firewall");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].component, &found[0].scope),
            (Component::KubeProxy, &Scope::All)
        );
        assert!(found[0].evidence.contains("KUBE-"), "{}", found[0].evidence);
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
        let found = detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat());
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
        let found = detect(&facts, &fw.analysis.ruleset, &fw.loopback_nat());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].scope, Scope::Interface("docker0".into()));
        assert!(found[0].evidence.contains("route_localnet=1"), "{}", found[0].evidence);
    }
}
