//! Building the lab's namespaces and links from a [`Plan`].
//!
//! Three namespaces at most: the victim (the host's mirror), the neighbour (the LAN attacker,
//! one veth per mirrored LAN interface) and the backend (stand-ins for NAT targets). Every veth
//! is created from inside the victim (`ip link add name NAME type veth peer name P netns OTHER`;
//! a mirrored name always follows `name` or `dev`, so that `help` or `type` is never read as a
//! keyword), so no link ever exists in the caller's namespace. Addresses are the host's own (or
//! documentation ones); the lab namespaces have no route out.

use crate::netns::{Namespace, NetnsError};
use crate::plan::{LinkPlan, LinkRole, Plan};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Stdio;

/// The victim address of the lab link that reaches stand-ins outside every mirrored subnet.
const STAND_IN_VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 129);
/// The backend address of that link.
const STAND_IN_BACKEND: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 130);

/// The neighbour's only rule: its kernel sends no RST for connections it does not know (the
/// lab's hand-built ones).
const NEIGHBOUR_RULES: &str = "table inet lw_neighbour {\n chain output {\n  type filter hook output priority 0; policy accept;\n  tcp flags rst drop\n }\n}\n";

/// One built link: both ends, with what the attack engine needs to address frames.
#[derive(Debug, Clone)]
pub struct Link {
    /// The plan it was built from.
    pub plan: LinkPlan,
    /// The victim end's MAC.
    pub victim_mac: [u8; 6],
    /// The victim end's IPv6 link-local address.
    pub victim_ll: Option<Ipv6Addr>,
    /// The peer end's name (in the neighbour or backend namespace).
    pub peer_name: String,
    /// The peer end's interface index.
    pub peer_ifindex: u32,
    /// The peer end's MAC.
    pub peer_mac: [u8; 6],
    /// The peer end's IPv6 link-local address.
    pub peer_ll: Option<Ipv6Addr>,
}

impl Link {
    /// The victim's IPv4 address on this link.
    pub fn victim_v4(&self) -> Option<Ipv4Addr> {
        self.plan.v4.first().map(|(a, _)| *a)
    }

    /// The victim's IPv6 address to aim at: global when it has one, link-local otherwise.
    pub fn victim_v6(&self) -> Option<Ipv6Addr> {
        self.plan.v6.first().map(|(a, _)| *a).or(self.victim_ll)
    }

    /// The neighbour's own IPv6 source address, matching [`Link::victim_v6`]'s scope.
    pub fn peer_v6(&self) -> Option<Ipv6Addr> {
        if self.plan.v6.is_empty() {
            self.peer_ll
        } else {
            self.plan.peer_v6.or(self.peer_ll)
        }
    }
}

impl Topology {
    /// Teaches the victim that the spoofed on-link IPv4 `sources` written by attacks on each link
    /// (by link index) sit behind that link's peer: the victim's replies to them (a SYN-ACK) then
    /// go to the attacker's MAC, as they do on a LAN where the attacker answers ARP for them.
    /// Replies to off-link sources follow the victim's routes.
    pub fn learn_sources(&self, sources: &[(usize, Ipv4Addr)]) -> Result<(), NetnsError> {
        let mut lines: Vec<String> = Vec::new();
        for &(li, ip) in sources {
            let Some(link) = self.links.get(li) else { continue };
            if ip.is_loopback() || link.plan.peer_v4 == Some(ip) || !link.plan.on_link(ip) {
                continue;
            }
            let line = format!(
                "neigh replace {ip} lladdr {} dev {} nud permanent",
                mac_text(link.peer_mac),
                link.plan.name
            );
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        batch(&self.victim, &lines)
    }

    /// The namespace on the other side of a link: the neighbour for LAN links, the backend for
    /// links whose subnet holds stand-ins (its containers attack too).
    pub fn attacker(&self, link: &Link) -> &Namespace {
        match (link.plan.role, &self.backend) {
            (LinkRole::Backend, Some(b)) => b,
            _ => &self.neighbour,
        }
    }
}

/// The built lab. Dropping it deletes every namespace (and with them every link).
#[derive(Debug)]
pub struct Topology {
    /// Mirrored links.
    pub links: Vec<Link>,
    /// The backend namespace, when stand-ins exist.
    pub backend: Option<Namespace>,
    /// The neighbour (attacker) namespace.
    pub neighbour: Namespace,
    /// The victim namespace: the host's mirror.
    pub victim: Namespace,
}

/// Creates the namespaces and links of `plan`.
pub fn build(plan: &Plan) -> Result<Topology, NetnsError> {
    let victim = Namespace::create("victim")?;
    let neighbour = Namespace::create("nbr")?;
    let backend = if plan.stand_ins.is_empty() {
        None
    } else {
        Some(Namespace::create("backend")?)
    };
    // Link-local and mirrored IPv6 addresses must be usable at once: no duplicate detection in
    // namespaces that hold nothing but the lab.
    for ns in [Some(&victim), Some(&neighbour), backend.as_ref()]
        .into_iter()
        .flatten()
    {
        ns.exec(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])?;
    }
    let mut victim_cmds = Vec::new();
    let mut neighbour_cmds = Vec::new();
    let mut backend_cmds = Vec::new();
    for (i, link) in plan.links.iter().enumerate() {
        let peer = format!("lwp{i}");
        let (peer_ns, cmds) = match link.role {
            LinkRole::Lan => (&neighbour, &mut neighbour_cmds),
            LinkRole::Backend => match &backend {
                Some(b) => (b, &mut backend_cmds),
                None => (&neighbour, &mut neighbour_cmds),
            },
        };
        victim_cmds.push(format!(
            "link add name {} type veth peer name {peer} netns {}",
            link.name,
            peer_ns.name()
        ));
        for (a, len) in &link.v4 {
            victim_cmds.push(format!("addr add {a}/{len} dev {}", link.name));
        }
        for (a, len) in &link.v6 {
            victim_cmds.push(format!("addr add {a}/{len} dev {} nodad", link.name));
        }
        // The host's own link-local address, and one for the peer: set here rather than waiting
        // for the kernel to make them once the carrier is up.
        if let Some(ll) = link.link_local {
            victim_cmds.push(format!("addr add {ll}/64 dev {} nodad", link.name));
        }
        if let Some(ll) = link.peer_link_local {
            cmds.push(format!("addr add {ll}/64 dev {peer} nodad"));
        }
        victim_cmds.push(format!("link set dev {} up", link.name));
        // Up before any route names it: the kernel refuses a route through a device that is down
        // ("Device for nexthop is not up").
        cmds.push(format!("link set dev {peer} up"));
        let prefix = link.v4.first().map(|(_, len)| *len).unwrap_or(32);
        if let Some(p) = link.peer_v4 {
            let onlink = prefix > 30;
            cmds.push(format!("addr add {p}/{} dev {peer}", if onlink { 32 } else { prefix }));
            if onlink {
                if let Some((a, _)) = link.v4.first() {
                    cmds.push(format!("route replace {a}/32 dev {peer}"));
                    victim_cmds.push(format!("route add {p}/32 dev {}", link.name));
                }
            }
        }
        if let (Some(p), Some((_, len))) = (link.peer_v6, link.v6.first()) {
            cmds.push(format!("addr add {p}/{len} dev {peer} nodad"));
        }
        if link.role == LinkRole::Backend {
            let mut added: Vec<IpAddr> = Vec::new();
            for s in plan
                .stand_ins
                .iter()
                .filter(|s| s.link.as_deref() == Some(link.name.as_str()))
            {
                // One backend address may serve several ports (CoreDNS 53/udp, 53/tcp, 9153).
                if !added.contains(&s.target.ip()) {
                    added.push(s.target.ip());
                    cmds.push(format!("addr add {}/{prefix} dev {peer}", s.target.ip()));
                }
            }
            // Replies from a stand-in go back through the link it sits on: one routing table per
            // backend link, chosen by source address (two bridges' backends share one namespace).
            if let Some((a, _)) = link.v4.first() {
                let table = 100 + i;
                for ip in &added {
                    cmds.push(format!("rule add from {ip} lookup {table}"));
                }
                cmds.push(format!("route add default via {a} dev {peer} table {table}"));
            }
        }
    }
    let mut unlinked: Vec<IpAddr> = plan
        .stand_ins
        .iter()
        .filter(|s| s.link.is_none())
        .map(|s| s.target.ip())
        .collect();
    unlinked.sort();
    unlinked.dedup();
    if let (false, Some(b)) = (unlinked.is_empty(), &backend) {
        victim_cmds.push(format!(
            "link add lw-stand0 type veth peer name lwb0 netns {}",
            b.name()
        ));
        victim_cmds.push(format!("addr add {STAND_IN_VICTIM}/25 dev lw-stand0"));
        victim_cmds.push("link set lw-stand0 up".into());
        for ip in &unlinked {
            victim_cmds.push(format!("route add {ip}/32 via {STAND_IN_BACKEND}"));
            backend_cmds.push(format!("addr add {ip}/32 dev lwb0"));
        }
        backend_cmds.push(format!("addr add {STAND_IN_BACKEND}/25 dev lwb0"));
        backend_cmds.push("link set lwb0 up".into());
        backend_cmds.push(format!("route add default via {STAND_IN_VICTIM}"));
    }
    batch(&victim, &victim_cmds)?;
    batch(&neighbour, &neighbour_cmds)?;
    // The attackers' own kernels must not reset the handshakes the lab completes by hand (the
    // backend attacks too, as the containers behind a bridge; its stand-ins only accept).
    run_with_input(&neighbour, &["nft", "-f", "-"], NEIGHBOUR_RULES)?;
    if let Some(b) = &backend {
        batch(b, &backend_cmds)?;
        run_with_input(b, &["nft", "-f", "-"], NEIGHBOUR_RULES)?;
    }
    let victim_view = interfaces(&victim)?;
    let mut peer_views = vec![(neighbour.name().to_string(), interfaces(&neighbour)?)];
    if let Some(b) = &backend {
        peer_views.push((b.name().to_string(), interfaces(b)?));
    }
    let mut links = Vec::new();
    for (i, lp) in plan.links.iter().enumerate() {
        let peer_name = format!("lwp{i}");
        let v = victim_view.iter().find(|x| x.name == lp.name);
        let p = peer_views
            .iter()
            .flat_map(|(_, list)| list.iter())
            .find(|x| x.name == peer_name);
        let (Some(v), Some(p)) = (v, p) else {
            return Err(NetnsError::Failed {
                command: format!("ip -j addr (looking for {} and {peer_name})", lp.name),
                status: "link missing after creation".into(),
                stderr: String::new(),
            });
        };
        links.push(Link {
            plan: lp.clone(),
            victim_mac: v.mac,
            victim_ll: lp.link_local.or(v.link_local),
            peer_name,
            peer_ifindex: p.index,
            peer_mac: p.mac,
            peer_ll: lp.peer_link_local.or(p.link_local),
        });
    }
    // The victim learns its peers' MACs up front: the lab's raw frames teach it nothing, and
    // neighbour discovery would delay the first reply beyond a phase.
    let mut neigh = Vec::new();
    for l in &links {
        let mac = mac_text(l.peer_mac);
        let peers = [
            l.plan.peer_v4.map(IpAddr::V4),
            l.plan.peer_v6.map(IpAddr::V6),
            l.peer_ll.map(IpAddr::V6),
        ];
        for ip in peers.into_iter().flatten() {
            neigh.push(format!(
                "neigh replace {ip} lladdr {mac} dev {} nud permanent",
                l.plan.name
            ));
        }
    }
    batch(&victim, &neigh)?;
    Ok(Topology {
        links,
        backend,
        neighbour,
        victim,
    })
}

/// Runs `ip -batch -` in `ns` with `lines`; the first failing line stops it and is reported.
pub fn batch(ns: &Namespace, lines: &[String]) -> Result<(), NetnsError> {
    if lines.is_empty() {
        return Ok(());
    }
    run_with_input(ns, &["ip", "-batch", "-"], &lines.join("\n")).map(|_| ())
}

/// Runs `argv` in `ns` with `input` on its stdin; a non-zero exit is an error carrying stderr.
pub fn run_with_input(ns: &Namespace, argv: &[&str], input: &str) -> Result<std::process::Output, NetnsError> {
    let out = output_with_input(ns, argv, input)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(NetnsError::Failed {
            command: format!("{} (in {})", argv.join(" "), ns.name()),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs `argv` in `ns` with `input` on its stdin and returns its output whatever the exit.
pub fn output_with_input(ns: &Namespace, argv: &[&str], input: &str) -> Result<std::process::Output, NetnsError> {
    let command = format!("{} (in {})", argv.join(" "), ns.name());
    feed(ns.command(argv), &command, input)
}

/// Runs `cmd` (named `command` in errors) with `input` on its stdin and returns its output
/// whatever the exit.
pub fn feed(mut cmd: std::process::Command, command: &str, input: &str) -> Result<std::process::Output, NetnsError> {
    let spawn_err = |source| NetnsError::Spawn {
        command: command.to_string(),
        source,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Feed stdin from its own thread while stdout and stderr are read: a tool that writes a lot
    // before it has read all its input must not deadlock against us.
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.as_bytes().to_vec();
        std::thread::spawn(move || stdin.write_all(&input))
    });
    let output = child.wait_with_output().map_err(spawn_err)?;
    if let Some(writer) = writer {
        // A tool that exits before reading everything closes the pipe: its exit status tells.
        let _ = writer.join();
    }
    Ok(output)
}

/// An interface as `ip -j addr` shows it.
struct View {
    name: String,
    index: u32,
    mac: [u8; 6],
    link_local: Option<Ipv6Addr>,
}

fn interfaces(ns: &Namespace) -> Result<Vec<View>, NetnsError> {
    let text = ns.exec(&["ip", "-j", "addr", "show"])?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| NetnsError::Failed {
        command: format!("ip -j addr show (in {})", ns.name()),
        status: "unparsable output".into(),
        stderr: e.to_string(),
    })?;
    Ok(value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_string();
            let index = l["ifindex"].as_u64()? as u32;
            let mac = parse_mac(l["address"].as_str().unwrap_or("00:00:00:00:00:00")).unwrap_or([0; 6]);
            let link_local = l["addr_info"].as_array().into_iter().flatten().find_map(|a| {
                let ip: Ipv6Addr = a["local"].as_str()?.parse().ok()?;
                ip.is_unicast_link_local().then_some(ip)
            });
            Some(View {
                name,
                index,
                mac,
                link_local,
            })
        })
        .collect())
}

/// Bytes → `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `aa:bb:cc:dd:ee:ff` → bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in mac.iter_mut() {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_mid_run_still_removes_every_namespace() {
        if !crate::netns::can_create_namespaces() {
            // A full run (`LOOPWARDEN_E2E=1`, as CI does) must not pass what it could not run.
            assert!(
                std::env::var_os("LOOPWARDEN_E2E").is_none_or(|v| v != "1"),
                "a_panic_mid_run_still_removes_every_namespace cannot run: needs root (LOOPWARDEN_E2E=1)"
            );
            eprintln!("SKIPPED a_panic_mid_run_still_removes_every_namespace: needs root to create namespaces");
            return;
        }
        let facts = crate::scenario::find("docker-published-loopback").unwrap().facts();
        let plan = crate::plan::plan(&facts);
        let names = std::sync::Mutex::new(Vec::new());
        let result = std::panic::catch_unwind(|| {
            let topo = build(&plan).unwrap();
            let mut n = names.lock().unwrap();
            n.push(topo.victim.name().to_string());
            n.push(topo.neighbour.name().to_string());
            n.extend(topo.backend.as_ref().map(|b| b.name().to_string()));
            drop(n);
            panic!("simulated failure while the lab is up");
        });
        assert!(result.is_err());
        let names = names.into_inner().unwrap();
        assert_eq!(names.len(), 3, "victim, neighbour and backend were built");
        let list = String::from_utf8(
            crate::netns::system_command("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        for name in names {
            assert!(!list.contains(&name), "{name} survived the panic");
        }
    }

    #[test]
    fn macs_parse_strictly() {
        assert_eq!(parse_mac("02:00:5e:10:00:01"), Some([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(parse_mac("02:00:5e:10:00"), None);
        assert_eq!(parse_mac("02:00:5e:10:00:01:07"), None);
        assert_eq!(parse_mac("zz:00:5e:10:00:01"), None);
    }
}
