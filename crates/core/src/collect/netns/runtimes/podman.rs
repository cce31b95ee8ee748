//! Podman: every container has a `conmon` monitor started with the container's id (`-c`) and
//! name (`-n`) on its command line, and the container's init process is conmon's child. Podman
//! keeps no daemon, and its database is not read; the image is not on conmon's command line and
//! stays unknown. A container whose init shares conmon's network namespace runs with the
//! host's network (`--network=host`), rootful or rootless.

use super::super::discover::Discovery;
use super::{argv, option, Placed};
use crate::facts::{Container, Runtime};

/// Every container with a running conmon.
pub fn read(discovery: &Discovery) -> Vec<Placed> {
    let mut placed = Vec::new();
    for conmon in discovery.processes.values().filter(|p| p.name == "conmon") {
        let Some((id, name)) = ids(&argv(conmon.pid)) else {
            continue;
        };
        let Some(init) = discovery
            .processes
            .values()
            .filter(|p| p.ppid == conmon.pid)
            .min_by_key(|p| p.pid)
        else {
            continue;
        };
        placed.push(Placed {
            netns: init.netns,
            container: Container {
                runtime: Runtime::Podman,
                id,
                name,
                image: None,
                pod: None,
                network_mode: None,
                shares_namespace: init.netns == conmon.netns,
                pid: Some(init.pid),
            },
        });
    }
    placed
}

/// The container id and name from conmon's command line (`-c ID` / `--cid ID`, `-n NAME` /
/// `--name NAME`).
pub fn ids(argv: &[String]) -> Option<(String, Option<String>)> {
    let id = option(argv, &["-c", "--cid"])?.to_string();
    let name = option(argv, &["-n", "--name"]).map(str::to_string);
    Some((id, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conmon's command line as Podman 4 builds it (libpod's `sharedConmonArgs`).
    #[test]
    fn conmon_names_the_container() {
        let argv: Vec<String> = "/usr/bin/conmon --api-version 1 -c 4f2a9c -u 4f2a9c -r /usr/bin/crun \
            -b /var/lib/containers/storage/overlay-containers/4f2a9c/userdata -p /run/pid -n web \
            --exit-dir /run/libpod/exits --full-attach -s -l k8s-file:/x -t"
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert_eq!(ids(&argv), Some(("4f2a9c".to_string(), Some("web".to_string()))));
        assert_eq!(ids(&["conmon".to_string()]), None);
    }
}
