//! The whole host: one snapshot per network namespace (`loopwarden facts --all-netns`), each
//! named for a person — the container, pod, `ip netns` name or machine, else its processes.
//!
//! Every namespace's facts are an ordinary [`HostFacts`] (`loopwarden.facts/v1`): what one
//! namespace's audit reads. Around them, [`HostFactsSet`] (`loopwarden.host-facts/v1`) adds what
//! only the whole view has: who each namespace is, and which processes reach into another one.

use super::{FactsError, HostFacts, Limit};
use serde::{Deserialize, Serialize};

/// The schema tag of a multi-namespace snapshot. A snapshot with another tag is refused.
pub const HOST_FACTS_SCHEMA: &str = "loopwarden.host-facts/v1";

/// Every network namespace of a host, each with its snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFactsSet {
    /// Always [`HOST_FACTS_SCHEMA`]; checked on load.
    pub schema: String,
    /// `uname -n` of the host.
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
    /// Whether collection was privileged (root): without it, namespaces and owners are missed.
    pub privileged: bool,
    /// Seconds since the Unix epoch when collection started.
    pub collected_at: u64,
    /// What could not be seen across namespaces (a namespace that could not be entered, a
    /// runtime's state that could not be read). Each namespace's own limits are in its facts.
    pub limits: Vec<Limit>,
    /// Every namespace found, the host's first.
    pub namespaces: Vec<NamespaceFacts>,
    /// Processes holding a descriptor of a network namespace other than their own (pasta,
    /// slirp4netns): they carry traffic between the two.
    #[serde(default)]
    pub links: Vec<NamespaceLink>,
}

/// One namespace: who it is, and its snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceFacts {
    /// Who the namespace is.
    pub namespace: NamespaceIdentity,
    /// Its snapshot, as `loopwarden facts` run inside it would take it.
    pub facts: HostFacts,
}

/// A network namespace, named for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NamespaceIdentity {
    /// `net:[INODE]`, as `/proc/PID/ns/net` links to it.
    pub id: String,
    /// The namespace's inode number.
    pub inode: u64,
    /// Whether it is the host's (pid 1's) network namespace.
    pub host: bool,
    /// Its `ip netns` names (`/run/netns/NAME`).
    pub ip_netns: Vec<String>,
    /// Other bind mounts of it (`/run/docker/netns/…`, a runtime's own directory).
    pub bind_mounts: Vec<BindMount>,
    /// Containers whose network namespace it is, or that share it (`--net=host`).
    pub containers: Vec<Container>,
    /// The systemd-nspawn machine (`/run/systemd/machines/NAME`) whose namespace it is.
    pub machine: Option<String>,
    /// Up to [`MAX_LISTED_PROCESSES`] of its processes, lowest pid first.
    pub processes: Vec<ProcessRef>,
    /// How many processes are in it.
    pub process_count: usize,
    /// Whose `/etc` its name resolution and accounts were read from.
    pub etc_from: String,
}

/// A bind mount of a network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// The mount point, as the mount namespace that has it names it.
    pub path: String,
    /// A process whose mount namespace has it, when ours does not.
    pub mount_namespace_of: Option<u32>,
}

impl BindMount {
    /// `PATH`, or `PATH (mount namespace of pid N)`.
    pub fn shown(&self) -> String {
        match self.mount_namespace_of {
            None => self.path.clone(),
            Some(pid) => format!("{} (mount namespace of pid {pid})", self.path),
        }
    }

    /// A path that opens it from here (`--netns PATH`): the mount point, or the mount point
    /// through the other process's root.
    pub fn reachable_path(&self) -> String {
        match self.mount_namespace_of {
            None => self.path.clone(),
            Some(pid) => format!("/proc/{pid}/root{}", self.path),
        }
    }
}

/// The most processes a namespace's identity lists.
pub const MAX_LISTED_PROCESSES: usize = 8;

/// A process, as a namespace's identity names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// Process id.
    pub pid: u32,
    /// `comm`.
    pub name: String,
    /// Real uid.
    pub uid: u32,
}

/// The container runtime that keeps a container's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Docker (dockerd's `containers/*/config.v2.json`).
    Docker,
    /// Podman (conmon's command line).
    Podman,
    /// containerd, and Kubernetes through its CRI plugin (the task bundle's `config.json`).
    Containerd,
}

impl Runtime {
    /// The runtime's name, as reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
        }
    }
}

/// A container, from its runtime's state on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Which runtime.
    pub runtime: Runtime,
    /// The runtime's id (64 hex digits for Docker and containerd).
    pub id: String,
    /// Its name (`web`), when the runtime keeps one.
    pub name: Option<String>,
    /// The image it was started from, as given (`nginx:1.25`), when known.
    pub image: Option<String>,
    /// The Kubernetes pod (`namespace/name`), for a CRI container.
    pub pod: Option<String>,
    /// The runtime's network mode (`host`, `bridge`, `container:ID`, `none`, …), when known.
    pub network_mode: Option<String>,
    /// Whether it uses the network namespace of another process (`--net=host`,
    /// `--net=container:…`, a pod's): then it shares that namespace's loopback services.
    pub shares_namespace: bool,
    /// Its init process, in our pid namespace, when known.
    pub pid: Option<u32>,
}

impl Container {
    /// `web` or the id's first 12 digits.
    pub fn short_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => self.id.chars().take(12).collect(),
        }
    }
}

/// A process that holds a descriptor of a network namespace other than its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceLink {
    /// The process.
    pub pid: u32,
    /// Its network namespace (inode).
    pub from: u64,
    /// The other network namespace whose descriptor it holds (inode).
    pub to: u64,
}

impl NamespaceIdentity {
    /// A short name for a person: `host`, `container web (docker, nginx:1.25)`, `pod default/api`,
    /// `ip netns blue`, `machine m1`, else the first processes, else its bind mount.
    pub fn label(&self) -> String {
        if self.host {
            return "host".to_string();
        }
        let own: Vec<&Container> = self.containers.iter().filter(|c| !c.shares_namespace).collect();
        if let Some(pod) = own.iter().find_map(|c| c.pod.as_deref()) {
            return format!("pod {pod}");
        }
        if let Some(c) = own.first() {
            let image = c.image.as_deref().map(|i| format!(", {i}")).unwrap_or_default();
            return format!("container {} ({}{image})", c.short_name(), c.runtime.as_str());
        }
        if let Some(machine) = &self.machine {
            return format!("machine {machine}");
        }
        if let Some(name) = self.ip_netns.first() {
            return format!("ip netns {name}");
        }
        if let Some(p) = self.processes.first() {
            let more = self.process_count.saturating_sub(1);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            return format!("{} (pid {}){more}", p.name, p.pid);
        }
        match self.bind_mounts.first() {
            Some(mount) => format!("no process, mounted at {}", mount.shown()),
            None => self.id.clone(),
        }
    }

    /// What `--netns` takes to name this namespace, ready to paste into a shell: its `ip netns`
    /// name, a process in it, or a bind mount's path. A name `--netns` could misread (a number is
    /// a pid, a leading `-` an option) is given as its `/run/netns` path, one with control
    /// characters gives way to a pid when there is one, and anything a shell would split or
    /// expand is single-quoted.
    pub fn target(&self) -> String {
        let printable = |t: &str| !t.chars().any(char::is_control);
        let name = self
            .ip_netns
            .first()
            .filter(|n| printable(n) || self.processes.is_empty());
        if let Some(name) = name {
            let misread = name.bytes().all(|b| b.is_ascii_digit()) || name.starts_with('-');
            return shell_word(&if misread {
                format!("/run/netns/{name}")
            } else {
                name.clone()
            });
        }
        if let Some(p) = self.processes.first() {
            return p.pid.to_string();
        }
        match self.bind_mounts.first() {
            Some(mount) => shell_word(&mount.reachable_path()),
            None => self.id.clone(),
        }
    }
}

/// `text` as one shell word: as it is when only safe characters make it up, else single-quoted
/// (a quote inside spelled `'\''`), so that a pasted fix never runs what a name smuggled in.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

impl HostFactsSet {
    /// Parses a multi-namespace snapshot from JSON text, refusing other schemas (a single
    /// namespace's snapshot is named as such).
    pub fn from_json(text: &str) -> Result<HostFactsSet, FactsError> {
        #[derive(Deserialize)]
        struct Tag {
            schema: Option<String>,
        }
        let schema_error = |found: Option<String>| FactsError::Schema {
            found: found.unwrap_or_else(|| "<none>".to_string()),
            expected: HOST_FACTS_SCHEMA,
        };
        match serde_json::from_str::<HostFactsSet>(text) {
            Ok(set) if set.schema == HOST_FACTS_SCHEMA => set.consistent(),
            Ok(set) => Err(schema_error(Some(set.schema))),
            Err(e) => match serde_json::from_str::<Tag>(text) {
                Ok(Tag { schema }) if schema.as_deref() != Some(HOST_FACTS_SCHEMA) => Err(schema_error(schema)),
                _ => Err(FactsError::Malformed(e)),
            },
        }
    }

    /// The snapshot, if it can be a real capture: one that holds no namespace would read as a
    /// host with nothing open (a capture always holds at least the one it ran in), one that holds
    /// a namespace twice would count its findings twice, and a machine has one namespace of its
    /// own.
    fn consistent(self) -> Result<HostFactsSet, FactsError> {
        if self.namespaces.is_empty() {
            return Err(FactsError::Inconsistent(
                "it holds no network namespace (a capture holds at least the one it ran in)".into(),
            ));
        }
        let mut inodes: Vec<u64> = self.namespaces.iter().map(|n| n.namespace.inode).collect();
        inodes.sort_unstable();
        if let Some(twice) = inodes.windows(2).find(|w| w[0] == w[1]) {
            return Err(FactsError::Inconsistent(format!(
                "namespace net:[{}] appears more than once",
                twice[0]
            )));
        }
        let machines = self.namespaces.iter().filter(|n| n.namespace.host).count();
        if machines > 1 {
            return Err(FactsError::Inconsistent(format!(
                "{machines} namespaces are marked as the machine's own; a machine has one"
            )));
        }
        Ok(self)
    }

    /// Serialises the snapshot as pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The namespace with this inode.
    pub fn namespace(&self, inode: u64) -> Option<&NamespaceFacts> {
        self.namespaces.iter().find(|n| n.namespace.inode == inode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_that_cannot_be_a_capture_is_refused() {
        use crate::checks::host::testing::{namespace, set};
        let text = |namespaces: Vec<NamespaceFacts>| set(namespaces).to_json().expect("JSON");
        let refused = |text: String, why: &str| {
            let err = HostFactsSet::from_json(&text).expect_err(why);
            assert!(err.to_string().contains(why), "{err}");
        };
        refused(text(vec![]), "holds no network namespace");
        refused(
            text(vec![namespace(1, true), namespace(2, false), namespace(2, false)]),
            "net:[2] appears more than once",
        );
        refused(
            text(vec![namespace(1, true), namespace(2, true)]),
            "2 namespaces are marked as the machine's own",
        );
        assert!(HostFactsSet::from_json(&text(vec![namespace(1, true), namespace(2, false)])).is_ok());
    }

    fn container(name: &str, shares: bool, pod: Option<&str>) -> Container {
        Container {
            runtime: Runtime::Docker,
            id: "0123456789abcdef0123".into(),
            name: Some(name.into()),
            image: Some("busybox:1".into()),
            pod: pod.map(str::to_string),
            network_mode: None,
            shares_namespace: shares,
            pid: None,
        }
    }

    #[test]
    fn labels_name_the_most_telling_owner() {
        let mut ns = NamespaceIdentity {
            id: "net:[4026532000]".into(),
            inode: 4026532000,
            ..Default::default()
        };
        assert_eq!(ns.label(), "net:[4026532000]");
        ns.bind_mounts.push(BindMount {
            path: "/run/docker/netns/abc".into(),
            mount_namespace_of: Some(77),
        });
        assert_eq!(
            ns.label(),
            "no process, mounted at /run/docker/netns/abc (mount namespace of pid 77)"
        );
        assert_eq!(ns.target(), "/proc/77/root/run/docker/netns/abc");
        ns.processes.push(ProcessRef {
            pid: 42,
            name: "python3".into(),
            uid: 0,
        });
        ns.process_count = 3;
        assert_eq!(ns.label(), "python3 (pid 42) and 2 more");
        assert_eq!(ns.target(), "42");
        ns.ip_netns.push("blue".into());
        assert_eq!(ns.label(), "ip netns blue");
        assert_eq!(ns.target(), "blue");
        // Names --netns would misread, or a shell would split or run, come out as one safe word.
        for (name, target) in [
            ("1", "/run/netns/1"),
            ("--x", "/run/netns/--x"),
            ("a b;$(id)", "'a b;$(id)'"),
            ("it's", "'it'\\''s'"),
            ("red\x1b[31m", "42"),
        ] {
            ns.ip_netns = vec![name.into()];
            assert_eq!(ns.target(), target, "{name:?}");
        }
        ns.ip_netns = vec!["blue".into()];
        ns.machine = Some("m1".into());
        assert_eq!(ns.label(), "machine m1");
        // A container that only shares the namespace does not name it.
        ns.containers.push(container("hostnet", true, None));
        assert_eq!(ns.label(), "machine m1");
        ns.containers.push(container("web", false, None));
        assert_eq!(ns.label(), "container web (docker, busybox:1)");
        ns.containers.push(container("app", false, Some("default/api")));
        assert_eq!(ns.label(), "pod default/api");
        ns.host = true;
        assert_eq!(ns.label(), "host");
    }

    #[test]
    fn a_single_namespace_snapshot_is_refused_by_name() {
        let err = HostFactsSet::from_json(r#"{"schema":"loopwarden.facts/v1"}"#).unwrap_err();
        assert!(err.to_string().contains("\"loopwarden.facts/v1\""), "{err}");
        assert!(err.to_string().ends_with("read it without --all-netns"), "{err}");
        let err = HostFacts::from_json(r#"{"schema":"loopwarden.host-facts/v1"}"#).unwrap_err();
        assert!(err.to_string().ends_with("read it with --all-netns"), "{err}");
        assert!(matches!(
            HostFactsSet::from_json("[1]").unwrap_err(),
            FactsError::Schema { .. } | FactsError::Malformed(_)
        ));
    }
}
