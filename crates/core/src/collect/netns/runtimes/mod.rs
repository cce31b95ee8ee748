//! Who a network namespace belongs to, from the container runtimes' own state on disk (and
//! conmon's command line): Docker ([`docker`]), containerd and Kubernetes' CRI ([`containerd`]),
//! Podman ([`podman`]) and
//! systemd-nspawn ([`nspawn`]). No runtime API is asked and none is required: a daemon that is
//! down, or state that cannot be read, only leaves a namespace named by its processes.
//!
//! The state is hostile input like any snapshot: only files owned by root and writable by
//! nobody else are read ([`Root::read_root_file`](super::super::rooted::Root::read_root_file)),
//! looked up inside the runtime's own root and mount namespace, bounded in size, and parsed
//! leniently (fields that are missing or of another type are left unknown).

pub mod containerd;
pub mod docker;
pub mod nspawn;
pub mod podman;

use super::discover::Discovery;
use crate::facts::{Container, Limit};

/// A container and the network namespace (inode) it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The namespace's inode.
    pub netns: u64,
    /// The container.
    pub container: Container,
}

/// What the runtimes' state says about the host's namespaces.
#[derive(Debug, Default)]
pub struct Names {
    /// Every running container found, by namespace.
    pub containers: Vec<Placed>,
    /// systemd-nspawn machines, as (namespace, machine name).
    pub machines: Vec<(u64, String)>,
    /// State that could not be read.
    pub limits: Vec<Limit>,
}

/// Reads every runtime's state. A container several runtimes know (Docker's containers are
/// containerd tasks too) is kept once, as the runtime that knows most about it names it.
pub fn read(discovery: &Discovery) -> Names {
    let mut names = Names::default();
    let mut found = Vec::new();
    found.extend(docker::read(discovery, &mut names.limits));
    found.extend(podman::read(discovery, &mut names.limits));
    found.extend(containerd::read(discovery, &mut names.limits));
    for placed in found {
        if !names
            .containers
            .iter()
            .any(|known| known.container.id == placed.container.id)
        {
            names.containers.push(placed);
        }
    }
    names.machines = nspawn::read(discovery, &mut names.limits);
    names
}

/// The inode of process `pid`'s network namespace, when discovery saw it.
pub fn netns_of(discovery: &Discovery, pid: u32) -> Option<u64> {
    discovery.processes.get(&pid).map(|p| p.netns)
}

/// A limit about a runtime's state.
pub fn limit(scope: &str, detail: String) -> Limit {
    Limit {
        scope: format!("netns.names.{scope}"),
        detail,
    }
}

/// `argv` of process `pid`.
pub fn argv(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| super::super::owners::parse_cmdline(&raw))
        .unwrap_or_default()
}

/// The value of option `names` in `argv`: `--opt VALUE`, `--opt=VALUE` or `-o VALUE`.
pub fn option<'a>(argv: &'a [String], names: &[&str]) -> Option<&'a str> {
    argv.iter().enumerate().find_map(|(i, arg)| {
        names.iter().find_map(|name| {
            if arg == name {
                argv.get(i + 1).map(String::as_str)
            } else {
                arg.strip_prefix(name)?.strip_prefix('=')
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_in_every_spelling() {
        let argv: Vec<String> = [
            "dockerd",
            "--data-root=/srv/d",
            "-H",
            "unix:///x",
            "--bip",
            "198.51.100.1/24",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(option(&argv, &["--data-root", "-g"]), Some("/srv/d"));
        assert_eq!(option(&argv, &["--bip"]), Some("198.51.100.1/24"));
        assert_eq!(option(&argv, &["-H"]), Some("unix:///x"));
        assert_eq!(option(&argv, &["--exec-root"]), None);
    }
}
