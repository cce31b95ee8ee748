//! systemd-nspawn machines, from systemd-machined's state: `/run/systemd/machines/NAME` (root's,
//! `KEY=VALUE` lines) names each machine's leader process (`LEADER=`), whose network namespace is
//! the machine's.

use super::super::super::rooted::Root;
use super::super::discover::Discovery;
use super::{limit, netns_of};
use crate::facts::Limit;
use std::path::Path;

/// machined's state directory.
const MACHINES: &str = "/run/systemd/machines";

/// Every registered machine whose leader runs, as (network namespace, machine name).
pub fn read(discovery: &Discovery, limits: &mut Vec<Limit>) -> Vec<(u64, String)> {
    let root = Root::Own;
    let Ok(names) = root.list(Path::new(MACHINES)) else {
        return Vec::new();
    };
    let mut machines = Vec::new();
    // `unit:…` entries are symlinks from a unit to its machine.
    for name in names.iter().filter(|n| !n.starts_with("unit:")) {
        let path = Path::new(MACHINES).join(name);
        match root.read_root_file(&path) {
            Ok(Some(bytes)) => {
                let text = String::from_utf8_lossy(&bytes);
                if let Some(netns) = leader(&text).and_then(|pid| netns_of(discovery, pid)) {
                    machines.push((netns, name.clone()));
                }
            }
            Ok(None) => {}
            Err(why) => limits.push(limit("nspawn", why)),
        }
    }
    machines
}

/// `LEADER=` of a machine file, when it is a machine of class `container`.
pub fn leader(text: &str) -> Option<u32> {
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='));
    if value("CLASS").is_some_and(|class| class != "container") {
        return None;
    }
    value("LEADER")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::leader;

    /// The file machined writes (`machine_save()`: a comment, then KEY=VALUE lines).
    #[test]
    fn the_leader_of_a_container_machine_is_read() {
        let text = "# This is private data. Do not parse.\nNAME=m1\nSCOPE=machine-m1.scope\n\
                    SERVICE=systemd-nspawn\nROOT=/var/lib/machines/m1\nID=0f1e\nCLASS=container\n\
                    LEADER=4242\nNETIF=7\n";
        assert_eq!(leader(text), Some(4242));
        assert_eq!(leader(&text.replace("CLASS=container", "CLASS=vm")), None);
        assert_eq!(leader("NAME=x\n"), None);
    }
}
