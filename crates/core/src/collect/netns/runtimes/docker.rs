//! Docker: every running `dockerd` (uid 0) keeps one directory per container under its data root
//! (`--data-root`, else `data-root` of `/etc/docker/daemon.json`, else `/var/lib/docker`):
//! `containers/ID/config.v2.json` (name, image, state, `NetworkSettings.SandboxKey` — the bind
//! mount of the container's network namespace under the exec root) and `hostconfig.json`
//! (`NetworkMode`). They are read in dockerd's own root and mount namespace, where its paths
//! mean what it meant.

use super::super::super::rooted::Root;
use super::super::discover::{ns_inode, Discovery};
use super::{argv, limit, netns_of, option, Placed};
use crate::facts::{Container, Limit, Runtime};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The containers of every dockerd on the host.
pub fn read(discovery: &Discovery, limits: &mut Vec<Limit>) -> Vec<Placed> {
    let mut placed = Vec::new();
    for daemon in discovery
        .processes
        .values()
        .filter(|p| p.name == "dockerd" && p.uid == 0)
    {
        let pid = daemon.pid;
        let root = match Root::of_process(pid) {
            Ok(root) => root,
            Err(e) => {
                limits.push(limit(
                    "docker",
                    format!("cannot open the root of dockerd (pid {pid}): {e}"),
                ));
                continue;
            }
        };
        let data_root = data_root(&argv(pid), &root, limits);
        let same_pids = same_pid_namespace(pid);
        placed.extend(containers(&root, &data_root, same_pids, discovery, limits));
    }
    placed
}

/// dockerd's data root: `--data-root` (`-g` before 17.05), else `data-root` in its
/// `daemon.json` (`--config-file`, default `/etc/docker/daemon.json`), else `/var/lib/docker`.
fn data_root(argv: &[String], root: &Root, limits: &mut Vec<Limit>) -> PathBuf {
    if let Some(dir) = option(argv, &["--data-root", "-g", "--graph"]) {
        return PathBuf::from(dir);
    }
    let config = option(argv, &["--config-file"]).unwrap_or("/etc/docker/daemon.json");
    match root.read_root_file(Path::new(config)) {
        Ok(Some(bytes)) => {
            #[derive(Deserialize)]
            struct Daemon {
                #[serde(rename = "data-root")]
                data_root: Option<String>,
            }
            if let Some(dir) = serde_json::from_slice::<Daemon>(&bytes).ok().and_then(|d| d.data_root) {
                return PathBuf::from(dir);
            }
        }
        Ok(None) => {}
        Err(why) => limits.push(limit("docker", why)),
    }
    PathBuf::from("/var/lib/docker")
}

/// Whether dockerd `pid` shares our pid namespace, so that the pids in its state are ours.
fn same_pid_namespace(pid: u32) -> bool {
    let theirs = ns_inode(&format!("/proc/{pid}/ns/pid"));
    theirs.is_some() && theirs == ns_inode("/proc/self/ns/pid")
}

/// The running containers under `data_root`.
fn containers(
    root: &Root,
    data_root: &Path,
    same_pids: bool,
    discovery: &Discovery,
    limits: &mut Vec<Limit>,
) -> Vec<Placed> {
    let dir = data_root.join("containers");
    let ids = match root.list(&dir) {
        Ok(ids) => ids,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            limits.push(limit(
                "docker",
                format!("cannot list {} (in {}): {e}", dir.display(), root.describe()),
            ));
            return Vec::new();
        }
    };
    let mut placed = Vec::new();
    for id in ids.iter().filter(|id| is_id(id)) {
        let read = |file: &str| root.read_root_file(&dir.join(id).join(file));
        let config = match read("config.v2.json") {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(why) => {
                limits.push(limit("docker", why));
                continue;
            }
        };
        let host_config = read("hostconfig.json").ok().flatten().unwrap_or_default();
        let Some(state) = parse(&config, &host_config) else {
            limits.push(limit(
                "docker",
                format!("{} is not a container's config.v2.json", dir.join(id).display()),
            ));
            continue;
        };
        if !state.running {
            continue;
        }
        let by_sandbox = state
            .sandbox_key
            .as_deref()
            .and_then(|key| root.stat(Path::new(key)).ok())
            .map(|meta| meta.ino);
        let by_pid = state.pid.filter(|_| same_pids).and_then(|pid| netns_of(discovery, pid));
        let Some(netns) = by_sandbox.or(by_pid) else {
            continue;
        };
        placed.push(Placed {
            netns,
            container: state.container(same_pids),
        });
    }
    placed
}

/// A container id: 64 lowercase hex digits.
fn is_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What this module takes from a container's state files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// `ID`.
    pub id: String,
    /// `Name` without its leading `/`.
    pub name: Option<String>,
    /// `Config.Image`: the image as given to `docker run`.
    pub image: Option<String>,
    /// `State.Running`.
    pub running: bool,
    /// `State.Pid` (in dockerd's pid namespace).
    pub pid: Option<u32>,
    /// `NetworkSettings.SandboxKey`: the bind mount of its network namespace.
    pub sandbox_key: Option<String>,
    /// `HostConfig.NetworkMode`.
    pub network_mode: Option<String>,
}

impl State {
    /// The container as a namespace's identity names it; its pid only when it is ours.
    fn container(&self, same_pids: bool) -> Container {
        let mode = self.network_mode.as_deref().unwrap_or("");
        Container {
            runtime: Runtime::Docker,
            id: self.id.clone(),
            name: self.name.clone(),
            image: self.image.clone(),
            pod: None,
            network_mode: self.network_mode.clone(),
            shares_namespace: mode == "host" || mode.starts_with("container:"),
            pid: self.pid.filter(|_| same_pids),
        }
    }
}

/// Reads `config.v2.json` and `hostconfig.json`; `None` when the first is not a container's.
pub fn parse(config: &[u8], host_config: &[u8]) -> Option<State> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct ConfigV2 {
        #[serde(rename = "ID")]
        id: String,
        name: Option<String>,
        config: Option<Config>,
        state: Option<RunState>,
        network_settings: Option<NetworkSettings>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Config {
        image: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct RunState {
        running: Option<bool>,
        pid: Option<i64>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct NetworkSettings {
        sandbox_key: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HostConfig {
        network_mode: Option<String>,
    }
    let parsed: ConfigV2 = serde_json::from_slice(config).ok()?;
    let host: Option<HostConfig> = serde_json::from_slice(host_config).ok();
    let state = parsed.state.as_ref();
    Some(State {
        name: parsed
            .name
            .map(|n| n.trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty()),
        image: parsed.config.and_then(|c| c.image).filter(|i| !i.is_empty()),
        running: state.and_then(|s| s.running).unwrap_or(false),
        pid: state
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0),
        sandbox_key: parsed
            .network_settings
            .and_then(|n| n.sandbox_key)
            .filter(|k| k.starts_with('/')),
        network_mode: host.and_then(|h| h.network_mode).filter(|m| !m.is_empty()),
        id: parsed.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/docker/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_bridged_container_is_named_and_placed_by_its_sandbox() {
        let state = parse(&fixture("bridged/config.v2.json"), &fixture("bridged/hostconfig.json")).expect("parsed");
        assert_eq!(state.name.as_deref(), Some("lw-bridged"));
        assert_eq!(state.image.as_deref(), Some("lwtruth-busybox:1"));
        assert!(state.running && state.pid.is_some());
        // Under the exec root (`--exec-root`, default /var/run/docker): netns/ID.
        assert!(state
            .sandbox_key
            .as_deref()
            .is_some_and(|k| k.starts_with('/') && k.contains("/exec/netns/")));
        assert_eq!(state.network_mode.as_deref(), Some("default"));
        assert!(is_id(&state.id));
        assert!(!state.container(true).shares_namespace);
    }

    #[test]
    fn a_host_network_container_shares_the_daemons_namespace() {
        let state = parse(&fixture("hostnet/config.v2.json"), &fixture("hostnet/hostconfig.json")).expect("parsed");
        assert_eq!(state.network_mode.as_deref(), Some("host"));
        let container = state.container(false);
        assert!(container.shares_namespace);
        assert_eq!(container.pid, None, "a pid of another pid namespace is not ours");
    }

    #[test]
    fn other_json_is_not_a_container_and_fields_of_other_types_are_unknown() {
        assert_eq!(parse(b"{}", b""), None);
        assert_eq!(parse(b"[1,2]", b""), None);
        let odd = parse(br#"{"ID":"x","Name":7,"State":{"Pid":-1,"Running":"yes"}}"#, b"");
        assert_eq!(
            odd, None,
            "a field of another type makes the file unusable, not half-read"
        );
        let minimal = parse(br#"{"ID":"x","State":{"Pid":-1,"Running":true}}"#, b"{}").expect("parsed");
        assert_eq!((minimal.pid, minimal.running, minimal.name), (None, true, None));
        assert!(!is_id("../etc") && !is_id(&"A".repeat(64)));
    }
}
