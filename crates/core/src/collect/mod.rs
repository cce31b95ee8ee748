//! Collectors: read one network namespace (the caller's) into [`HostFacts`], or every network
//! namespace of the host ([`netns`]).
//!
//! Read-only and judgement-free. Each collector adds what it saw and, where it could not see
//! something, a [`Limit`] saying what and why — a collector failure never aborts collection.

mod accounts;
mod command;
pub use command::SAFE_PATH;
mod config_files;
mod etc_view;
mod firewall;
mod guards;
mod host;
mod interfaces;
mod names;
mod netlink;
pub mod netns;
mod nf_tables;
mod owners;
pub mod path_walk;
mod procfs_fallback;
mod relays;
mod rooted;
mod routes;
mod sock_diag;
mod socket_roots;
mod sysctls;
#[cfg(test)]
mod test_process;
mod trust;
mod trusted_path;
mod unix_files;

use etc_view::EtcView;
use socket_roots::SocketRoots;

use crate::facts::{HostFacts, InetSocket, Limit, Process, UnixSocket, FACTS_SCHEMA};
use std::collections::{BTreeSet, HashMap};

/// Collects a snapshot of the network namespace the calling thread is in.
pub fn collect() -> HostFacts {
    collect_reporting(&|_| {})
}

/// [`collect`], calling `step` with the name of each step as it starts (for a progress line).
pub fn collect_reporting(step: &dyn Fn(&str)) -> HostFacts {
    step("collecting sockets, interfaces and socket owners");
    let mut limits: Vec<Limit> = Vec::new();
    let host = host::collect();
    // The `/proc` pass for socket owners is the slowest part and needs nothing from the netlink
    // dumps, so it runs on a second thread meanwhile. The dumps stay on the calling thread, whose
    // network namespace is the one being collected.
    let netns = owners::own_netns();
    let (interfaces, routes, sockets, scan) = std::thread::scope(|scope| {
        let scanner = std::thread::Builder::new()
            .name("loopwarden-owners".into())
            .spawn_scoped(scope, move || owners::scan(netns));
        let interfaces = interfaces::collect(&mut limits);
        let routes = routes::collect(&interfaces, &mut limits);
        let sockets = dump_sockets(&interfaces, &mut limits);
        let scan = match scanner {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the /proc scan panicked"))),
            Err(_) => owners::scan(netns),
        };
        (interfaces, routes, sockets, scan)
    });
    let dumped = Dumped {
        host,
        interfaces,
        routes,
        sockets,
        scan,
    };
    finish(dumped, &EtcView::Own, None, limits, step)
}

/// Collects the network namespace the calling thread entered, with a `/proc` scan of socket
/// owners made once for every namespace (`shared`), `/etc` read through `etc`, and Unix socket
/// paths without a known owner looked up in the root of `default_pid`.
fn collect_entered(shared: &owners::Owners, etc: &EtcView, default_pid: Option<u32>) -> HostFacts {
    let mut limits: Vec<Limit> = Vec::new();
    let host = host::collect();
    let interfaces = interfaces::collect(&mut limits);
    let routes = routes::collect(&interfaces, &mut limits);
    let sockets = dump_sockets(&interfaces, &mut limits);
    let inodes = sockets
        .inet
        .iter()
        .map(|s| s.inode)
        .chain(sockets.unix.iter().map(|d| d.socket.inode));
    let scan = Ok(netns::owners_of(shared, inodes));
    let dumped = Dumped {
        host,
        interfaces,
        routes,
        sockets,
        scan,
    };
    finish(dumped, etc, default_pid, limits, &|_| {})
}

/// The namespace's sockets, with bound devices named after `interfaces`.
fn dump_sockets(interfaces: &[crate::facts::Interface], limits: &mut Vec<Limit>) -> sock_diag::Sockets {
    let device_names: HashMap<u32, &str> = interfaces.iter().map(|i| (i.index, i.name.as_str())).collect();
    // A bound index with no link (removed meanwhile) is named `ifindex:N`, not dropped: `None`
    // would claim the socket is not bound to a device at all.
    let device_name = |index: u32| -> String {
        device_names
            .get(&index)
            .map_or_else(|| format!("ifindex:{index}"), |n| n.to_string())
    };
    sock_diag::collect(&device_name, limits)
}

/// What the first, netlink and `/proc` part of a collection gives.
struct Dumped {
    host: crate::facts::HostInfo,
    interfaces: Vec<crate::facts::Interface>,
    routes: Option<Vec<crate::facts::Route>>,
    sockets: sock_diag::Sockets,
    scan: std::io::Result<owners::Owners>,
}

/// Everything after the socket dumps and the owner scan, for one namespace: owners, socket
/// files (in each owner's file system), sysctls, `/etc` (through `etc`), firewall, relays,
/// guards.
fn finish(
    dumped: Dumped,
    etc: &EtcView,
    default_pid: Option<u32>,
    mut limits: Vec<Limit>,
    step: &dyn Fn(&str),
) -> HostFacts {
    let Dumped {
        host,
        interfaces,
        routes,
        sockets,
        scan,
    } = dumped;
    let mut inet_sockets = sockets.inet;
    let (mut unix_sockets, paths): (Vec<UnixSocket>, Vec<_>) =
        sockets.unix.into_iter().map(|d| (d.socket, (d.path, d.vfs))).unzip();
    let processes = attach_owners(scan, &mut inet_sockets, &mut unix_sockets, &mut limits);
    add_unix_files(
        &mut unix_sockets,
        paths,
        &mut SocketRoots::new(default_pid),
        &mut limits,
    );

    step("collecting sysctls, name resolution and accounts");
    let sysctls = sysctls::collect(&mut limits);
    let names = names::collect(etc, &mut limits);
    let accounts = accounts::collect(etc, &mut limits);
    step("collecting the firewall rules");
    let firewall = firewall::collect(&mut limits);
    step("collecting relay configuration");
    let relays = relays::collect(&processes, &accounts, &mut limits);
    let mut facts = HostFacts {
        schema: FACTS_SCHEMA.to_string(),
        host,
        inet_sockets,
        unix_sockets,
        processes,
        interfaces,
        routes,
        sysctls,
        names,
        accounts,
        firewall,
        relays,
        guards: Vec::new(),
    };
    facts.guards = guards::collect(&facts.inet_sockets, &facts.unix_sockets, &mut limits);
    facts.host.limits.extend(limits);
    facts
}

/// Adds socket file and directory metadata to path sockets (`paths`: each socket's bound path
/// and inode, in the order of `unix`), each path looked up in the file system of the socket's
/// first owner.
fn add_unix_files(
    unix: &mut [UnixSocket],
    paths: Vec<(Option<std::path::PathBuf>, Option<sock_diag::unix::VfsId>)>,
    roots: &mut SocketRoots,
    limits: &mut Vec<Limit>,
) {
    for (socket, (path, vfs)) in unix.iter_mut().zip(paths) {
        let Some(path) = path else { continue };
        let facts = roots.walker(socket.owners.first().copied()).inspect(&path, vfs);
        socket.file = facts.file;
        socket.parents = facts.parents;
        if let Some(problem) = facts.problem {
            // Sockets bound at one path by many processes (each container's conmon) say it once.
            let limit = Limit {
                scope: "sockets.unix.files".into(),
                detail: problem,
            };
            if !limits.contains(&limit) {
                limits.push(limit);
            }
        }
    }
}

/// Fills every socket's `owners` from the `/proc` pass and returns the processes that own at
/// least one of them.
fn attach_owners(
    scan: std::io::Result<owners::Owners>,
    inet: &mut [InetSocket],
    unix: &mut [UnixSocket],
    limits: &mut Vec<Limit>,
) -> Vec<Process> {
    let mut scan = match scan {
        Ok(scan) => scan,
        Err(e) => {
            limits.push(Limit {
                scope: "owners".into(),
                detail: format!("cannot scan /proc for socket owners: {e}; every owner is unknown"),
            });
            return Vec::new();
        }
    };
    limits.extend(owners::unreadable_limit(&scan));
    // A socket of this namespace may be held by a process that moved to another one since.
    let orphaned = |inode: &u64| !scan.by_inode.contains_key(inode);
    if !scan.elsewhere.is_empty()
        && inet
            .iter()
            .map(|s| &s.inode)
            .chain(unix.iter().map(|s| &s.inode))
            .any(orphaned)
    {
        let elsewhere = std::mem::take(&mut scan.elsewhere);
        owners::scan_pids(&elsewhere, &mut scan);
    }
    let mut pids = BTreeSet::new();
    let mut owners_of = |inode: u64| -> Vec<u32> {
        let found = scan.by_inode.get(&inode).cloned().unwrap_or_default();
        pids.extend(found.iter().copied());
        found
    };
    for socket in inet.iter_mut() {
        socket.owners = owners_of(socket.inode);
    }
    for socket in unix.iter_mut() {
        socket.owners = owners_of(socket.inode);
    }
    let processes: Vec<Process> = pids.iter().filter_map(|&pid| owners::process(pid)).collect();
    if processes.len() < pids.len() {
        limits.push(Limit {
            scope: "owners".into(),
            detail: format!(
                "{} socket-owning process(es) exited before their details were read",
                pids.len() - processes.len()
            ),
        });
    }
    processes
}
