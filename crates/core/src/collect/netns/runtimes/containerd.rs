//! containerd, and Kubernetes through its CRI plugin: every task has a bundle directory
//! (`<state>/io.containerd.runtime.v2.task/<namespace>/<id>/`) holding the OCI runtime spec
//! (`config.json`: annotations, and the network namespace's path for CRI pods) and the init
//! process's pid (`init.pid`). containerd starts each shim (`containerd-shim-runc-v2 -namespace
//! NS -id ID …`) in the bundle of the task it was started for; a pod's shim serves the pod's
//! other tasks too, whose bundles are its siblings. So the bundles are found from the running
//! shims, read in the shim's root and mount namespace.
//!
//! The CRI plugin's annotations (`io.kubernetes.cri.*`) name the pod, the container and the
//! image; other clients' tasks (Docker's, in namespace `moby`) are named by id only here — their
//! own runtime names them better and wins.

use super::super::super::rooted::Root;
use super::super::discover::{ns_inode, Discovery};
use super::{argv, limit, netns_of, option, Placed};
use crate::facts::{Container, Limit, Runtime};
use rustix::fs::{readlinkat, CWD};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every task of every running shim.
pub fn read(discovery: &Discovery, limits: &mut Vec<Limit>) -> Vec<Placed> {
    let same_pids = |pid: u32| {
        let theirs = ns_inode(&format!("/proc/{pid}/ns/pid"));
        theirs.is_some() && theirs == ns_inode("/proc/self/ns/pid")
    };
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut placed = Vec::new();
    for shim in discovery
        .processes
        .values()
        .filter(|p| p.uid == 0 && p.name.starts_with("containerd-shim"))
    {
        let argv = argv(shim.pid);
        if option(&argv, &["-id"]).is_none() {
            continue; // not a v2 shim, or already gone
        }
        let Some(bundle) = cwd(shim.pid) else {
            continue;
        };
        let Some(namespace_dir) = bundle.parent().map(Path::to_path_buf) else {
            continue;
        };
        if !seen.insert(namespace_dir.clone()) {
            continue;
        }
        let root = match Root::of_process(shim.pid) {
            Ok(root) => root,
            Err(e) => {
                limits.push(limit(
                    "containerd",
                    format!("cannot open the root of shim pid {}: {e}", shim.pid),
                ));
                continue;
            }
        };
        let view = TaskView {
            root: &root,
            same_pids: same_pids(shim.pid),
            shim_netns: shim.netns,
        };
        placed.extend(tasks(&view, &namespace_dir, discovery, limits));
    }
    placed
}

/// The working directory of `pid`: a shim's is its bundle.
fn cwd(pid: u32) -> Option<PathBuf> {
    let link = readlinkat(CWD, format!("/proc/{pid}/cwd"), Vec::new()).ok()?;
    let path = link.to_string_lossy().into_owned();
    (path.starts_with('/') && !path.ends_with(" (deleted)")).then(|| PathBuf::from(path))
}

/// Where a shim's tasks are read and placed.
struct TaskView<'a> {
    /// The shim's root.
    root: &'a Root,
    /// Whether the shim's pids are ours.
    same_pids: bool,
    /// The shim's own network namespace: a task placed there runs with the host's network.
    shim_netns: u64,
}

/// Every task bundle under one containerd namespace's directory.
fn tasks(view: &TaskView, dir: &Path, discovery: &Discovery, limits: &mut Vec<Limit>) -> Vec<Placed> {
    let root = view.root;
    let Ok(ids) = root.list(dir) else {
        return Vec::new();
    };
    let mut placed = Vec::new();
    for id in ids {
        let bundle = dir.join(&id);
        let spec = match root.read_root_file(&bundle.join("config.json")) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            Err(why) => {
                limits.push(limit("containerd", why));
                continue;
            }
        };
        let Some(task) = parse(&id, &spec) else {
            limits.push(limit(
                "containerd",
                format!("{} is not an OCI runtime spec", bundle.join("config.json").display()),
            ));
            continue;
        };
        let pid = root
            .read_root_file(&bundle.join("init.pid"))
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u32>().ok())
            .filter(|_| view.same_pids);
        let by_path = task
            .netns_path
            .as_deref()
            .and_then(|p| root.stat(Path::new(p)).ok())
            .map(|m| m.ino);
        let Some(netns) = by_path.or_else(|| pid.and_then(|pid| netns_of(discovery, pid))) else {
            continue;
        };
        let mut container = task.container(pid);
        container.shares_namespace |= netns == view.shim_netns;
        placed.push(Placed { netns, container });
    }
    placed
}

/// What this module takes from a task's OCI spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The task id (the bundle directory's name).
    pub id: String,
    /// `io.kubernetes.cri.container-type`: `sandbox` or `container`.
    pub cri_type: Option<String>,
    /// `io.kubernetes.cri.container-name`.
    pub name: Option<String>,
    /// `io.kubernetes.cri.image-name`.
    pub image: Option<String>,
    /// `io.kubernetes.cri.sandbox-namespace` / `io.kubernetes.cri.sandbox-name`.
    pub pod: Option<String>,
    /// `linux.namespaces[type=network].path`, when it joins an existing namespace.
    pub netns_path: Option<String>,
}

impl Task {
    fn container(&self, pid: Option<u32>) -> Container {
        Container {
            runtime: Runtime::Containerd,
            id: self.id.clone(),
            name: self.name.clone(),
            image: self.image.clone(),
            pod: self.pod.clone(),
            network_mode: self.cri_type.as_ref().map(|t| format!("cri {t}")),
            // A pod's containers join the sandbox's namespace; the sandbox owns it.
            shares_namespace: self.cri_type.as_deref() == Some("container"),
            pid,
        }
    }
}

/// Reads the parts of an OCI runtime spec named in [`Task`]; `None` when it is not one.
pub fn parse(id: &str, spec: &[u8]) -> Option<Task> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        oci_version: String,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
        linux: Option<Linux>,
    }
    #[derive(Deserialize)]
    struct Linux {
        #[serde(default)]
        namespaces: Vec<Namespace>,
    }
    #[derive(Deserialize)]
    struct Namespace {
        #[serde(rename = "type")]
        kind: String,
        path: Option<String>,
    }
    let spec: Spec = serde_json::from_slice(spec).ok()?;
    if spec.oci_version.is_empty() {
        return None;
    }
    let annotation = |key: &str| spec.annotations.get(key).filter(|v| !v.is_empty()).cloned();
    let pod = match (
        annotation("io.kubernetes.cri.sandbox-namespace"),
        annotation("io.kubernetes.cri.sandbox-name"),
    ) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        (None, Some(name)) => Some(name),
        _ => None,
    };
    let netns_path = spec
        .linux
        .iter()
        .flat_map(|l| &l.namespaces)
        .find(|n| n.kind == "network")
        .and_then(|n| n.path.clone())
        .filter(|p| p.starts_with('/'));
    Some(Task {
        id: id.to_string(),
        cri_type: annotation("io.kubernetes.cri.container-type"),
        name: annotation("io.kubernetes.cri.container-name"),
        image: annotation("io.kubernetes.cri.image-name"),
        pod,
        netns_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_task_is_known_by_id_and_joins_no_namespace_by_path() {
        let path = format!(
            "{}/tests/fixtures/docker/bridged/bundle-config.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let spec = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let task = parse("abc", &spec).expect("an OCI spec");
        assert_eq!(
            task,
            Task {
                id: "abc".into(),
                cri_type: None,
                name: None,
                image: None,
                pod: None,
                netns_path: None,
            }
        );
        assert!(!task.container(None).shares_namespace);
    }

    /// The annotations and namespace path containerd's CRI plugin writes for a pod's container
    /// (keys from containerd's `pkg/cri/annotations`; a CRI node was not available to capture).
    #[test]
    fn cri_annotations_name_the_pod_and_its_containers_share_the_sandboxs_namespace() {
        let spec = br#"{"ociVersion":"1.1.0","annotations":{
            "io.kubernetes.cri.container-type":"container",
            "io.kubernetes.cri.container-name":"api",
            "io.kubernetes.cri.image-name":"registry.example/api:2",
            "io.kubernetes.cri.sandbox-name":"api-7d9f",
            "io.kubernetes.cri.sandbox-namespace":"shop"},
            "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/cni-1b2c"}]}}"#;
        let task = parse("def", spec).expect("an OCI spec");
        assert_eq!(task.pod.as_deref(), Some("shop/api-7d9f"));
        assert_eq!(task.netns_path.as_deref(), Some("/var/run/netns/cni-1b2c"));
        let container = task.container(Some(42));
        assert!(container.shares_namespace);
        assert_eq!(container.name.as_deref(), Some("api"));
        assert_eq!(container.image.as_deref(), Some("registry.example/api:2"));
        assert_eq!(parse("x", br#"{"annotations":{}}"#), None, "no ociVersion: not a spec");
    }
}
