//! From sockets to services: the ids and scopes the report uses.

use crate::addr::{is_loopback, is_wildcard, socket_label};
use crate::facts::{HostFacts, InetSocket, SocketState, UnixName, UnixSocket};
use crate::report::{Scope, Service, ServiceProcess};

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

/// Every service of the snapshot, in a stable order, deduplicated by id (several sockets of one
/// `SO_REUSEPORT` group are one service), plus connected loopback UDP sockets.
pub fn services(facts: &HostFacts) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    // Connected UDP sockets on loopback are listed too: they are clients, but a forged datagram
    // from their peer's address reaches them, and findings (proto.udp-loopback) name them.
    let listed =
        |s: &&InetSocket| is_inet_service(s) || (s.state == SocketState::Connected && inet_scope(s) == Scope::Loopback);
    for socket in facts.inet_sockets.iter().filter(listed) {
        let id = inet_service_id(socket);
        if out.iter().any(|s| s.id == id) {
            continue;
        }
        out.push(Service {
            id,
            proto: socket.protocol.as_str().to_string(),
            address: Some(socket.address.to_string()),
            port: Some(socket.port),
            path: None,
            scope: inet_scope(socket),
            process: process_of(facts, &socket.owners),
        });
    }
    for socket in &facts.unix_sockets {
        let id = unix_service_id(socket);
        if out.iter().any(|s| s.id == id) {
            continue;
        }
        out.push(Service {
            id,
            proto: "unix".to_string(),
            address: None,
            port: None,
            path: Some(unix_label(&socket.name)),
            scope: match socket.name {
                UnixName::Path(_) => Scope::UnixPath,
                UnixName::Abstract(_) => Scope::UnixAbstract,
            },
            process: process_of(facts, &socket.owners),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The first owner of a socket that the snapshot knows as a process.
fn process_of(facts: &HostFacts, owners: &[u32]) -> Option<ServiceProcess> {
    owners
        .iter()
        .find_map(|pid| facts.process(*pid))
        .map(|p| ServiceProcess {
            pid: p.pid,
            name: p.name.clone(),
            exe: p.exe.clone(),
            uid: p.uid,
        })
}

/// "name (pid 12, uid 1000)" for evidence lines. When no owner is known, says why it may be:
/// unprivileged collection, or a holder outside this PID namespace.
pub fn describe_owner(facts: &HostFacts, owners: &[u32]) -> String {
    match owners.iter().find_map(|pid| facts.process(*pid)) {
        Some(p) => format!("{} (pid {}, uid {})", p.name, p.pid, p.uid),
        None if facts.host.privileged => "an unknown process (none visible in this PID namespace holds it)".to_string(),
        None => "an unknown process (not privileged to see other users' processes)".to_string(),
    }
}
