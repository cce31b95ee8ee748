//! Running `loopwarden guard` processes, from the status each publishes under
//! [`GUARD_STATUS_DIR`].
//!
//! A publication is hostile input until shown otherwise. It is kept only when
//! - the status directory is root's and writable by nobody else, the instance directory and the
//!   file are owned by root or by the uid the publication names, writable by nobody else, and
//!   not symbolic links;
//! - the process it names is alive, runs as that uid and is in this network namespace;
//! - that process holds every TCP and Unix front socket it claims (when socket owners are known).
//!
//! Anything else is dropped with a [`Limit`] saying why.

use crate::facts::{
    Guard, GuardEndpoint, InetSocket, Limit, SocketState, UnixName, UnixSocket, GUARD_STATUS_DIR, GUARD_STATUS_FILE,
    GUARD_STATUS_SCHEMA,
};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The largest status file read (a guard with hundreds of fronts stays far below).
const MAX_STATUS_BYTES: u64 = 1 << 20;

/// Reads every trusted guard publication of this network namespace. `inet` and `unix` are the
/// namespace's sockets with their owners, to confirm the guard holds what it claims.
pub fn collect(inet: &[InetSocket], unix: &[UnixSocket], limits: &mut Vec<Limit>) -> Vec<Guard> {
    collect_in(Path::new(GUARD_STATUS_DIR), inet, unix, limits)
}

fn collect_in(dir: &Path, inet: &[InetSocket], unix: &[UnixSocket], limits: &mut Vec<Limit>) -> Vec<Guard> {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Vec::new();
    };
    if let Err(why) = private_to(&meta, &[0], true) {
        limit(limits, format!("{} is not trusted: {why}", dir.display()));
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        limit(limits, format!("cannot list {}", dir.display()));
        return Vec::new();
    };
    // The calling thread's namespace: a thread that entered another one (`--netns`,
    // `--all-netns`) is not in its process's (`/proc/self` is the thread group leader's).
    let own_netns = std::fs::read_link("/proc/thread-self/ns/net").ok();
    let mut guards = Vec::new();
    for entry in entries.flatten() {
        let instance = entry.path();
        match read_instance(&instance, own_netns.as_deref()) {
            Ok(Some(guard)) => match unheld_front(&guard, inet, unix) {
                None => guards.push(guard),
                Some(front) => limit(
                    limits,
                    format!(
                        "{}: guard pid {} does not hold its front {front}: publication ignored",
                        instance.display(),
                        guard.pid
                    ),
                ),
            },
            Ok(None) => {}
            Err(why) => limit(limits, format!("{}: {why}", instance.display())),
        }
    }
    guards.sort_by(|a, b| a.name.cmp(&b.name));
    guards
}

fn limit(limits: &mut Vec<Limit>, detail: String) {
    limits.push(Limit {
        scope: "guards".into(),
        detail,
    });
}

/// One instance directory's publication: `Ok(None)` when it belongs to a guard that is gone or
/// runs in another network namespace (not this snapshot's business).
fn read_instance(instance: &Path, own_netns: Option<&Path>) -> Result<Option<Guard>, String> {
    let dir_meta = std::fs::symlink_metadata(instance).map_err(|e| format!("cannot stat: {e}"))?;
    if !dir_meta.is_dir() {
        return Err("not a directory (a symbolic link or a file): ignored".into());
    }
    let path = instance.join(GUARD_STATUS_FILE);
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {GUARD_STATUS_FILE}: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {GUARD_STATUS_FILE}: {e}"))?;
    if !meta.is_file() || meta.len() > MAX_STATUS_BYTES {
        return Err(format!(
            "{GUARD_STATUS_FILE} is not a regular file of at most {MAX_STATUS_BYTES} bytes"
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("cannot read {GUARD_STATUS_FILE}: {e}"))?;
    let mut guard: Guard =
        serde_json::from_str(&text).map_err(|e| format!("{GUARD_STATUS_FILE} is not a guard status: {e}"))?;
    if guard.schema != GUARD_STATUS_SCHEMA {
        return Err(format!("unsupported guard status schema {:?}", guard.schema));
    }
    private_to(&dir_meta, &[0, guard.uid], true).map_err(|why| format!("directory not trusted: {why}"))?;
    private_to(&meta, &[0, guard.uid], false).map_err(|why| format!("{GUARD_STATUS_FILE} not trusted: {why}"))?;
    let Some(uid) = process_uid(guard.pid) else {
        return Ok(None);
    };
    if uid != guard.uid {
        return Err(format!(
            "names pid {} as running as uid {}, but it runs as uid {uid}: ignored",
            guard.pid, guard.uid
        ));
    }
    let netns = std::fs::read_link(format!("/proc/{}/ns/net", guard.pid));
    match (netns, own_netns) {
        (Ok(theirs), Some(ours)) if theirs != ours => return Ok(None),
        (Ok(_), Some(_)) => {}
        _ => return Err(format!("cannot tell which network namespace pid {} is in", guard.pid)),
    }
    guard.status_file = path.display().to_string();
    Ok(Some(guard))
}

/// Whether a file or directory is owned by one of `owners` and writable by nobody else.
fn private_to(meta: &std::fs::Metadata, owners: &[u32], dir: bool) -> Result<(), String> {
    if meta.file_type().is_symlink() || (dir && !meta.is_dir()) {
        return Err("a symbolic link or not a directory".into());
    }
    if !owners.contains(&meta.uid()) {
        return Err(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("mode {:o} lets others write", meta.mode() & 0o7777));
    }
    Ok(())
}

/// The real uid of a live process.
fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The first front socket the guard claims and is not seen to hold (only decided where socket
/// owners are known: an unprivileged snapshot sees no other user's descriptors).
fn unheld_front(guard: &Guard, inet: &[InetSocket], unix: &[UnixSocket]) -> Option<String> {
    for front in &guard.fronts {
        for listen in &front.listen {
            let owners: Option<&Vec<u32>> = match listen {
                GuardEndpoint::Tcp { address } => inet
                    .iter()
                    .find(|s| {
                        s.state == SocketState::Listen
                            && crate::addr::unmapped(s.address) == crate::addr::unmapped(address.ip())
                            && s.port == address.port()
                    })
                    .map(|s| &s.owners),
                GuardEndpoint::Unix { path } => unix
                    .iter()
                    .find(|s| s.listening && s.name == UnixName::Path(path.clone()))
                    .map(|s| &s.owners),
            };
            match owners {
                None => return Some(listen.to_string()),
                Some(o) if !o.is_empty() && !o.contains(&guard.pid) => return Some(listen.to_string()),
                Some(_) => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{GuardCounters, GuardFront, GuardMode};
    use std::os::unix::fs::PermissionsExt;

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn guard(pid: u32, uid: u32) -> Guard {
        Guard {
            schema: GUARD_STATUS_SCHEMA.into(),
            name: "app".into(),
            pid,
            uid,
            user: None,
            started_at: 0,
            updated_at: 0,
            fronts: vec![GuardFront {
                name: "app".into(),
                listen: vec![GuardEndpoint::Tcp {
                    address: "127.0.0.1:8080".parse().unwrap(),
                }],
                upstream: GuardEndpoint::Tcp {
                    address: "127.0.0.1:18080".parse().unwrap(),
                },
                mode: GuardMode::Http,
                allow_users: vec![],
                allow_groups: vec![],
                allow_hosts: vec![],
                allow_origins: vec![],
                counters: GuardCounters::default(),
            }],
            status_file: String::new(),
        }
    }

    fn listener(owner: u32) -> InetSocket {
        InetSocket {
            protocol: crate::facts::Protocol::Tcp,
            address: "127.0.0.1".parse().unwrap(),
            port: 8080,
            v6only: None,
            state: SocketState::Listen,
            peer: None,
            bound_device: None,
            uid: 0,
            inode: 1,
            owners: vec![owner],
        }
    }

    /// A status tree as a guard running as this test's uid publishes it.
    fn publish(tag: &str, g: &Guard, dir_mode: u32) -> TempDir {
        let root = std::env::temp_dir().join(format!("lw-guards-{tag}-{}", std::process::id()));
        let instance = root.join("app");
        std::fs::create_dir_all(&instance).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&instance, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        std::fs::write(instance.join(GUARD_STATUS_FILE), serde_json::to_string(g).unwrap()).unwrap();
        TempDir(root)
    }

    fn me() -> (u32, u32) {
        (std::process::id(), std::fs::metadata("/proc/self").unwrap().uid())
    }

    #[test]
    fn a_live_guard_holding_its_front_is_read() {
        let (pid, uid) = me();
        if uid != 0 {
            eprintln!("SKIPPED a_live_guard_holding_its_front_is_read: the status root must be root's");
            return;
        }
        let dir = publish("live", &guard(pid, uid), 0o755);
        let mut limits = Vec::new();
        let found = collect_in(&dir.0, &[listener(pid)], &[], &mut limits);
        assert_eq!(found.len(), 1, "{limits:?}");
        assert!(found[0].status_file.ends_with("app/status.json"));
    }

    #[test]
    fn a_publication_others_can_write_or_naming_a_front_held_by_another_process_is_ignored() {
        let (pid, uid) = me();
        if uid != 0 {
            eprintln!("SKIPPED a_publication_others_can_write…: the status root must be root's");
            return;
        }
        let open_dir = publish("open", &guard(pid, uid), 0o777);
        let mut limits = Vec::new();
        assert!(collect_in(&open_dir.0, &[listener(pid)], &[], &mut limits).is_empty());
        assert!(
            limits.iter().any(|l| l.detail.contains("lets others write")),
            "{limits:?}"
        );

        let squatted = publish("squat", &guard(pid, uid), 0o755);
        let mut limits = Vec::new();
        assert!(collect_in(&squatted.0, &[listener(pid + 1)], &[], &mut limits).is_empty());
        assert!(
            limits
                .iter()
                .any(|l| l.detail.contains("does not hold its front 127.0.0.1:8080")),
            "{limits:?}"
        );
    }

    #[test]
    fn a_publication_lying_about_its_uid_or_naming_a_dead_pid_is_ignored() {
        let (pid, uid) = me();
        if uid != 0 {
            eprintln!("SKIPPED a_publication_lying_about_its_uid…: the status root must be root's");
            return;
        }
        // uid 0 writes a file claiming the guard runs as 4242: the file's owner (0) is allowed,
        // but the process does not run as 4242.
        let liar = publish("liar", &guard(pid, 4242), 0o755);
        let mut limits = Vec::new();
        assert!(collect_in(&liar.0, &[listener(pid)], &[], &mut limits).is_empty());
        assert!(
            limits.iter().any(|l| l.detail.contains("but it runs as uid 0")),
            "{limits:?}"
        );

        let dead = publish("dead", &guard(u32::MAX - 1, uid), 0o755);
        let mut limits = Vec::new();
        assert!(collect_in(&dead.0, &[listener(pid)], &[], &mut limits).is_empty());
        assert!(limits.is_empty(), "{limits:?}");
    }
}
