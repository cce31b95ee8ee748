//! From sockets to services: the ids and scopes the report uses.

use crate::addr::{is_loopback, is_wildcard, socket_label};
use crate::facts::{HostFacts, InetSocket, Process, SocketState, UnixName, UnixSocket};
use crate::report::{shown, Scope, Service, ServiceProcess};
use std::collections::HashMap;

/// Whether an inet socket is a service (takes traffic from any peer): TCP listeners and
/// unconnected UDP sockets. Connected UDP sockets are clients.
pub fn is_inet_service(socket: &InetSocket) -> bool {
    matches!(socket.state, SocketState::Listen | SocketState::Unconnected)
}

/// The report id of an inet socket: `tcp:127.0.0.1:7001`, `udp:[::1]:53`.
pub fn inet_service_id(socket: &InetSocket) -> String {
    format!(
        "{}:{}",
        socket.protocol.as_str(),
        socket_label(socket.address, socket.port)
    )
}

/// The report id of a Unix socket: `unix:/run/x.sock`, `unix:@name`.
pub fn unix_service_id(socket: &UnixSocket) -> String {
    format!("unix:{}", unix_label(&socket.name))
}

/// A Unix socket's name as shown to people: the path, or `@name` for abstract sockets.
pub fn unix_label(name: &UnixName) -> String {
    match name {
        UnixName::Path(p) => p.clone(),
        UnixName::Abstract(a) => format!("@{a}"),
    }
}

/// The scope of an inet socket's bind address.
pub fn inet_scope(socket: &InetSocket) -> Scope {
    if is_loopback(socket.address) {
        Scope::Loopback
    } else if is_wildcard(socket.address) {
        Scope::Wildcard
    } else {
        Scope::Address
    }
}

/// The snapshot's processes by pid, for naming socket owners without a scan per socket.
pub struct Processes<'a> {
    by_pid: HashMap<u32, &'a Process>,
    privileged: bool,
}

impl<'a> Processes<'a> {
    /// Indexes the snapshot's processes (a pid listed twice keeps its first entry).
    pub fn new(facts: &'a HostFacts) -> Processes<'a> {
        let mut by_pid = HashMap::with_capacity(facts.processes.len());
        for p in &facts.processes {
            by_pid.entry(p.pid).or_insert(p);
        }
        Processes {
            by_pid,
            privileged: facts.host.privileged,
        }
    }

    /// The process with this pid, if the snapshot has it.
    pub fn get(&self, pid: u32) -> Option<&'a Process> {
        self.by_pid.get(&pid).copied()
    }

    /// The first owner of a socket that the snapshot knows as a process.
    pub fn owner(&self, owners: &[u32]) -> Option<&'a Process> {
        owners.iter().find_map(|pid| self.get(*pid))
    }

    /// "name (pid 12, uid 1000)" for evidence lines (the name clipped to [`shown::MAX_NAME`]).
    /// When no owner is known, says why it may be: unprivileged collection, or a holder outside
    /// this PID namespace.
    pub fn describe(&self, owners: &[u32]) -> String {
        match self.owner(owners) {
            Some(p) => format!(
                "{} (pid {}, uid {})",
                shown::clip(&p.name, shown::MAX_NAME),
                p.pid,
                p.uid
            ),
            None if self.privileged => "an unknown process (none visible in this PID namespace holds it)".to_string(),
            None => "an unknown process (not privileged to see other users' processes)".to_string(),
        }
    }
}

/// Every service of the snapshot, in a stable order, deduplicated by id (several sockets of one
/// `SO_REUSEPORT` group are one service; the first socket listed names its process), plus
/// connected loopback UDP sockets.
pub fn services(facts: &HostFacts) -> Vec<Service> {
    let ids: Vec<String> = facts.inet_sockets.iter().map(inet_service_id).collect();
    services_named(facts, &ids)
}

/// [`services`], with the inet sockets' ids already made (`ids[i]` is the id of
/// `facts.inet_sockets[i]`).
pub fn services_named(facts: &HostFacts, ids: &[String]) -> Vec<Service> {
    let processes = Processes::new(facts);
    // Connected UDP sockets on loopback are listed too: they are clients, but a forged datagram
    // from their peer's address reaches them, and findings (proto.udp-loopback) name them.
    let listed =
        |s: &&InetSocket| is_inet_service(s) || (s.state == SocketState::Connected && inet_scope(s) == Scope::Loopback);
    let inet = facts
        .inet_sockets
        .iter()
        .zip(ids)
        .filter(|(s, _)| listed(s))
        .map(|(socket, id)| Service {
            id: id.clone(),
            proto: socket.protocol.as_str().to_string(),
            address: Some(socket.address.to_string()),
            port: Some(socket.port),
            path: None,
            scope: inet_scope(socket),
            process: process_of(&processes, &socket.owners),
        });
    let unix = facts.unix_sockets.iter().map(|socket| Service {
        id: unix_service_id(socket),
        proto: "unix".to_string(),
        address: None,
        port: None,
        path: Some(unix_label(&socket.name)),
        scope: match socket.name {
            UnixName::Path(_) => Scope::UnixPath,
            UnixName::Abstract(_) => Scope::UnixAbstract,
        },
        process: process_of(&processes, &socket.owners),
    });
    let mut out: Vec<Service> = inet.chain(unix).collect();
    // Stable: among services with one id, the first listed stays.
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|later, first| later.id == first.id);
    out
}

/// The process of a service, as the report shows it.
fn process_of(processes: &Processes, owners: &[u32]) -> Option<ServiceProcess> {
    processes.owner(owners).map(|p| ServiceProcess {
        pid: p.pid,
        name: shown::name(&p.name),
        exe: p.exe.as_deref().map(shown::name),
        uid: p.uid,
    })
}
