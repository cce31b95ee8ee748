//! Which software made an interface or a NAT rule, from the names it gives them: findings on a
//! bridge or a published port name the runtime or network plugin that owns it (a route_localnet
//! finding on `cni0` is Kubernetes' bridge plugin's, not Docker's), so that the fix goes to the
//! right component.
//!
//! Names are conventions, not proof: anything can call an interface `docker0`. Reports say "by
//! its name" where they use these.

/// A container runtime or network plugin that makes bridges, overlays or NAT rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Maker {
    /// Docker: `docker0`, `br-<12 hex>` user networks, the `DOCKER` nat chains.
    Docker,
    /// Podman: `podman0` (netavark), `cni-podman0` (CNI, Podman 3), the `NETAVARK-*` chains.
    Podman,
    /// The CNI bridge plugin (containerd and CRI-O under Kubernetes, nerdctl): `cni0`, and
    /// kubenet's `cbr0`; the portmap plugin's `CNI-HOSTPORT-*`/`CNI-DN-*` chains.
    CniBridge,
    /// Flannel: `flannel.1` (VXLAN), `flannel-wg`.
    Flannel,
    /// Calico: `cali*` pod interfaces, `vxlan.calico`, `tunl0`'s IPIP; `cali-*` chains.
    Calico,
    /// Cilium: `cilium_host`, `cilium_net`, `cilium_vxlan`, `lxc*` pod interfaces.
    Cilium,
    /// kube-proxy: the `KUBE-*` nat chains (NodePorts, services).
    KubeProxy,
    /// libvirt: `virbr*`.
    Libvirt,
    /// LXD / LXC: `lxdbr*`, `lxcbr*`.
    Lxd,
}

impl Maker {
    /// The maker by the name of an interface it creates; `None` for names no maker claims.
    pub fn of_interface(name: &str) -> Option<Maker> {
        let hex12 = |s: &str| s.len() == 12 && s.chars().all(|c| c.is_ascii_hexdigit());
        Some(match name {
            "docker0" => Maker::Docker,
            n if n.strip_prefix("br-").is_some_and(hex12) => Maker::Docker,
            "podman0" => Maker::Podman,
            n if n.starts_with("cni-podman") || n.starts_with("podman") => Maker::Podman,
            "cni0" | "cbr0" => Maker::CniBridge,
            n if n.starts_with("flannel") => Maker::Flannel,
            "vxlan.calico" | "tunl0" => Maker::Calico,
            n if n.starts_with("cali") => Maker::Calico,
            n if n.starts_with("cilium_") || n.starts_with("lxc") && !n.starts_with("lxcbr") => Maker::Cilium,
            n if n.starts_with("virbr") => Maker::Libvirt,
            n if n.starts_with("lxdbr") || n.starts_with("lxcbr") => Maker::Lxd,
            _ => return None,
        })
    }

    /// The maker by a NAT rule's text (its chain and jump names); `None` for rules no maker
    /// claims (written by hand, or by a tool without a naming convention).
    pub fn of_rule(text: &str) -> Option<Maker> {
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        for w in words {
            let maker = match w {
                "DOCKER" => Some(Maker::Docker),
                w if w.starts_with("DOCKER-") => Some(Maker::Docker),
                w if w.starts_with("KUBE-") => Some(Maker::KubeProxy),
                w if w.starts_with("CNI-") => Some(Maker::CniBridge),
                w if w.starts_with("NETAVARK") => Some(Maker::Podman),
                w if w.starts_with("cali-") => Some(Maker::Calico),
                _ => None,
            };
            if maker.is_some() {
                return maker;
            }
        }
        None
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Maker::Docker => "Docker",
            Maker::Podman => "Podman",
            Maker::CniBridge => "the CNI bridge/portmap plugins (containerd, CRI-O, kubenet)",
            Maker::Flannel => "Flannel",
            Maker::Calico => "Calico",
            Maker::Cilium => "Cilium",
            Maker::KubeProxy => "kube-proxy",
            Maker::Libvirt => "libvirt",
            Maker::Lxd => "LXD/LXC",
        }
    }

    /// Who sits behind an interface this maker creates, as attackers: `containers` or `VMs`.
    pub fn guests(self) -> &'static str {
        match self {
            Maker::Libvirt => "VMs",
            Maker::Docker | Maker::Podman | Maker::Lxd => "containers",
            Maker::CniBridge | Maker::Flannel | Maker::Calico | Maker::Cilium | Maker::KubeProxy => "pods",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_are_told_apart_by_their_makers_names() {
        for (name, maker) in [
            ("docker0", Some(Maker::Docker)),
            ("br-3f2a9c1d0e7b", Some(Maker::Docker)),
            ("br-lan", None),
            ("cni0", Some(Maker::CniBridge)),
            ("cbr0", Some(Maker::CniBridge)),
            ("podman0", Some(Maker::Podman)),
            ("cni-podman0", Some(Maker::Podman)),
            ("flannel.1", Some(Maker::Flannel)),
            ("cali3f2a9c1d0e7", Some(Maker::Calico)),
            ("lxc12ab", Some(Maker::Cilium)),
            ("lxcbr0", Some(Maker::Lxd)),
            ("virbr0", Some(Maker::Libvirt)),
            ("eth0", None),
        ] {
            assert_eq!(Maker::of_interface(name), maker, "{name}");
        }
    }

    #[test]
    fn nat_rules_are_told_apart_by_their_chains() {
        for (rule, maker) in [
            (
                "nat DOCKER: -d 127.0.0.1/32 ! -i docker0 -p tcp --dport 8081 -j DNAT",
                Some(Maker::Docker),
            ),
            (
                "nat KUBE-NODEPORTS: -p udp --dport 30053 -j KUBE-EXT-X",
                Some(Maker::KubeProxy),
            ),
            ("nat CNI-DN-1a2b: -p tcp --dport 8080 -j DNAT", Some(Maker::CniBridge)),
            ("nat NETAVARK-HOSTPORT-DNAT: -p tcp --dport 8080", Some(Maker::Podman)),
            ("ip nat prerouting: tcp dport 8080 dnat to 127.0.0.1:80", None),
        ] {
            assert_eq!(Maker::of_rule(rule), maker, "{rule}");
        }
    }
}
