//! The guard's published status (`loopwarden.guard-status/v1`): what it guards and its
//! counters, rewritten every second (write, then rename) under its status directory, where
//! `loopwarden guard --status` and the audit read it.

use crate::state::FrontState;
use loopwarden_core::facts::{
    Guard, GuardAccount, GuardFront, GuardMode, GUARD_STATUS_DIR, GUARD_STATUS_FILE, GUARD_STATUS_SCHEMA,
};
use loopwarden_core::report::prometheus::escape_label;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Who publishes: the guard's process, uid and account name (looked up once).
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Instance name.
    pub name: String,
    /// Its effective uid.
    pub uid: u32,
    /// That uid's account name.
    pub user: Option<String>,
    /// Seconds since the epoch when it started.
    pub started_at: u64,
}

impl Publisher {
    /// This process, named `name`.
    pub fn this_process(name: &str) -> Publisher {
        let uid = rustix::process::geteuid().as_raw();
        Publisher {
            name: name.to_string(),
            uid,
            user: crate::accounts::user_name(uid),
            started_at: now(),
        }
    }
}

/// The status of a running guard, as published.
pub fn snapshot(me: &Publisher, fronts: &[Arc<FrontState>]) -> Guard {
    Guard {
        schema: GUARD_STATUS_SCHEMA.to_string(),
        name: me.name.clone(),
        pid: std::process::id(),
        uid: me.uid,
        user: me.user.clone(),
        started_at: me.started_at,
        updated_at: now(),
        fronts: fronts.iter().map(|f| front(f)).collect(),
        status_file: String::new(),
    }
}

fn front(f: &FrontState) -> GuardFront {
    let policy = f.policy();
    let account = |n: &crate::accounts::Named| GuardAccount {
        name: n.name.clone(),
        id: n.id,
    };
    GuardFront {
        name: f.config.name.clone(),
        listen: f.endpoints.clone(),
        upstream: f.config.upstream.published(),
        mode: if policy.http.is_some() {
            GuardMode::Http
        } else {
            GuardMode::Tcp
        },
        allow_users: policy.users.iter().map(account).collect(),
        allow_groups: policy.groups.iter().map(account).collect(),
        allow_hosts: policy.http.as_ref().map(|h| h.host_list()).unwrap_or_default(),
        allow_origins: policy
            .http
            .as_ref()
            .map(|h| h.origins.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        counters: f.counters.snapshot(f.occupancy.open()),
    }
}

/// A status directory prepared and locked for this guard: no second guard can publish in it
/// while this one runs (their `status.json` would overwrite each other's).
#[derive(Debug)]
pub struct StatusDir {
    /// The directory.
    pub path: PathBuf,
    /// Whether the audit looks there (`/run/loopwarden/guard/NAME`): only then does it credit
    /// this guard.
    pub audited: bool,
    _lock: std::fs::File,
}

/// Why no status will be published.
#[derive(Debug)]
pub enum StatusDirError {
    /// The directory cannot be used (the guard runs on, unpublished).
    Unusable(String),
    /// Another running guard publishes there (the guard refuses to start).
    InUse(String),
}

/// Chooses, prepares and locks the status directory: `--status-dir`, else systemd's
/// `$RUNTIME_DIRECTORY`, else `/run/loopwarden/guard/<name>` (created when the guard may).
pub fn directory(explicit: Option<&Path>, name: &str) -> Result<StatusDir, StatusDirError> {
    let (dir, create) = match (explicit, runtime_directory()) {
        (Some(dir), _) => (dir.to_path_buf(), false),
        (None, Some(dir)) => (dir, false),
        (None, None) => (Path::new(GUARD_STATUS_DIR).join(name), true),
    };
    prepare(&dir, create).map_err(StatusDirError::Unusable)?;
    let lock = std::fs::File::open(&dir)
        .map_err(|e| StatusDirError::Unusable(format!("cannot open status directory {}: {e}", dir.display())))?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let other = std::fs::read_to_string(dir.join(GUARD_STATUS_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<Guard>(&t).ok())
            .map_or_else(String::new, |g| format!(" (guard {} pid {})", g.name, g.pid));
        return Err(StatusDirError::InUse(format!(
            "status directory {} is in use by another running guard{other}: give each guard its own --status-dir \
             (or, without --status-dir, its own --name), else their status files overwrite each other",
            dir.display()
        )));
    }
    let audited = dir.parent() == Some(Path::new(GUARD_STATUS_DIR));
    Ok(StatusDir {
        path: dir,
        audited,
        _lock: lock,
    })
}

/// The status directory a guard with these settings would use, when it exists (nothing is
/// created): where root records its upstream check for the guard.
pub fn existing_directory(explicit: Option<&Path>, name: &str) -> Option<PathBuf> {
    let dir = match (explicit, runtime_directory()) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) => dir,
        (None, None) => Path::new(GUARD_STATUS_DIR).join(name),
    };
    std::fs::symlink_metadata(&dir).ok().filter(|m| m.is_dir()).map(|_| dir)
}

/// The first directory systemd created for the unit (`RuntimeDirectory=`).
fn runtime_directory() -> Option<PathBuf> {
    let runtime = std::env::var_os("RUNTIME_DIRECTORY")?;
    let first = runtime
        .to_string_lossy()
        .split(':')
        .next()
        .filter(|s| !s.is_empty())?
        .to_string();
    Some(PathBuf::from(first))
}

/// Makes sure the guard can write `dir` and that nobody else can.
fn prepare(dir: &Path, create_parents: bool) -> Result<(), String> {
    if create_parents && !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| {
                format!(
                    "cannot create {}: {e} (pass --status-dir, or run under the systemd unit)",
                    dir.display()
                )
            })?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("status directory {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("status directory {} is not a directory", dir.display()));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(format!("status directory {} is not the guard's own", dir.display()));
    }
    if meta.mode() & 0o022 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} private: {e}", dir.display()))?;
    }
    Ok(())
}

/// Writes the status atomically (a reader never sees half a file).
pub fn write(dir: &Path, status: &Guard) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{GUARD_STATUS_FILE}.tmp"));
    let text = serde_json::to_string_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, dir.join(GUARD_STATUS_FILE))
}

/// Removes the published status (on exit).
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(GUARD_STATUS_FILE));
}

/// Reads the status files of every guard under `root` (`<root>/<name>/status.json`), or the one
/// in `root` itself. Errors name the file.
pub fn read_all(root: &Path) -> Result<Vec<Guard>, String> {
    let direct = root.join(GUARD_STATUS_FILE);
    let files: Vec<PathBuf> = if direct.exists() {
        vec![direct]
    } else {
        let entries = std::fs::read_dir(root).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join(GUARD_STATUS_FILE))
            .filter(|p| p.exists())
            .collect();
        files.sort();
        files
    };
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut guard: Guard =
                serde_json::from_str(&text).map_err(|e| format!("{} is not a guard status: {e}", path.display()))?;
            guard.status_file = path.display().to_string();
            Ok(guard)
        })
        .collect()
}

/// What a status file is worth, as the audit judges it: anyone may write a file that claims a
/// guard, so it counts as running only when the file is root's or the claimed uid's, the pid it
/// names runs as that uid, and runs in this network namespace (else its fronts are not this
/// namespace's ports).
pub fn state(guard: &Guard) -> String {
    let claimed = guard.uid;
    if let Ok(meta) = std::fs::metadata(&guard.status_file) {
        if meta.uid() != 0 && meta.uid() != claimed {
            return format!(
                "not trusted: the status file is owned by uid {}, not root or uid {claimed}",
                meta.uid()
            );
        }
    }
    let proc = PathBuf::from(format!("/proc/{}", guard.pid));
    let Ok(meta) = std::fs::metadata(&proc) else {
        return "not running (stale status)".to_string();
    };
    if meta.uid() != claimed {
        return format!(
            "not trusted: pid {} runs as uid {}, not uid {claimed}",
            guard.pid,
            meta.uid()
        );
    }
    let netns = |p: &Path| std::fs::metadata(p.join("ns/net")).map(|m| m.ino()).ok();
    match (netns(&proc), netns(Path::new("/proc/self"))) {
        (Some(theirs), Some(ours)) if theirs != ours => {
            format!("running in another network namespace (net:[{theirs}]): its fronts are not this namespace's ports")
        }
        _ => "running".to_string(),
    }
}

/// The status as text for people.
pub fn render(guards: &[Guard]) -> String {
    let mut out = String::new();
    for g in guards {
        let state = state(g);
        push_line(
            &mut out,
            &format!(
                "guard {} pid {} uid {}{} — {state}, status {}s old",
                g.name,
                g.pid,
                g.uid,
                g.user.as_deref().map(|u| format!(" ({u})")).unwrap_or_default(),
                now().saturating_sub(g.updated_at)
            ),
        );
        for f in &g.fronts {
            let listen: Vec<String> = f.listen.iter().map(ToString::to_string).collect();
            let who: Vec<String> = f
                .allow_users
                .iter()
                .map(|a| a.name.clone())
                .chain(f.allow_groups.iter().map(|a| format!("@{}", a.name)))
                .collect();
            let c = &f.counters;
            push_line(
                &mut out,
                &format!(
                    "  front {} [{}] {} -> {}  allows {}",
                    f.name,
                    match f.mode {
                        GuardMode::Http => "http",
                        GuardMode::Tcp => "tcp",
                    },
                    listen.join(" "),
                    f.upstream,
                    who.join(", ")
                ),
            );
            let refused: Vec<String> = c.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
            push_line(
                &mut out,
                &format!(
                    "    connections: {} accepted, {} allowed, {} open; requests {}; upstream errors {}; refused: {}",
                    c.accepted,
                    c.allowed,
                    c.active,
                    c.requests,
                    c.upstream_errors,
                    if refused.is_empty() {
                        "none".to_string()
                    } else {
                        refused.join(", ")
                    }
                ),
            );
        }
    }
    out
}

/// Appends one line of the human status: everything in it comes from a file the guard's
/// (unprivileged) user wrote, so it is escaped — no control character or escape sequence from
/// it reaches the terminal — and clipped.
fn push_line(out: &mut String, text: &str) {
    out.push_str(&loopwarden_core::report::shown::line(text));
    out.push('\n');
}

/// The counters in Prometheus text exposition format (for node_exporter's textfile collector).
pub fn prometheus(guards: &[Guard]) -> String {
    let mut out = String::from(
        "# HELP loopwarden_guard_connections_total Connections by outcome.\n\
         # TYPE loopwarden_guard_connections_total counter\n",
    );
    let label = |g: &Guard, f: &GuardFront| {
        format!(
            "guard=\"{}\",front=\"{}\"",
            escape_label(&g.name),
            escape_label(&f.name)
        )
    };
    for g in guards {
        for f in &g.fronts {
            let l = label(g, f);
            let c = &f.counters;
            out.push_str(&format!(
                "loopwarden_guard_connections_total{{{l},outcome=\"accepted\"}} {}\n",
                c.accepted
            ));
            out.push_str(&format!(
                "loopwarden_guard_connections_total{{{l},outcome=\"allowed\"}} {}\n",
                c.allowed
            ));
        }
    }
    out.push_str(
        "# HELP loopwarden_guard_refused_total Refusals by reason.\n# TYPE loopwarden_guard_refused_total counter\n",
    );
    for g in guards {
        for f in &g.fronts {
            for (reason, n) in &f.counters.refused {
                out.push_str(&format!(
                    "loopwarden_guard_refused_total{{{},reason=\"{}\"}} {n}\n",
                    label(g, f),
                    escape_label(reason)
                ));
            }
        }
    }
    for (metric, help, kind, value) in [
        ("open_connections", "Connections open now.", "gauge", 0usize),
        ("requests_total", "HTTP requests forwarded.", "counter", 1),
        ("upstream_errors_total", "Failures to reach the upstream.", "counter", 2),
    ] {
        out.push_str(&format!(
            "# HELP loopwarden_guard_{metric} {help}\n# TYPE loopwarden_guard_{metric} {kind}\n"
        ));
        for g in guards {
            for f in &g.fronts {
                let c = &f.counters;
                let v = [c.active, c.requests, c.upstream_errors][value];
                out.push_str(&format!("loopwarden_guard_{metric}{{{}}} {v}\n", label(g, f)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anyone can write a file claiming a guard: it counts as running only when the file and the
    /// process are the claimed user's (review of #11: a forged status showed as "running").
    #[test]
    fn a_status_counts_as_running_only_when_file_and_process_are_the_claimed_users() {
        let file = std::env::temp_dir().join(format!("lw-guard-status-{}.json", std::process::id()));
        std::fs::write(&file, "{}").expect("status file");
        let me = std::fs::metadata("/proc/self").expect("proc").uid();
        let mut guard = Guard {
            schema: loopwarden_core::facts::GUARD_STATUS_SCHEMA.into(),
            name: "t".into(),
            pid: std::process::id(),
            uid: me,
            user: None,
            started_at: 0,
            updated_at: 0,
            fronts: Vec::new(),
            status_file: file.display().to_string(),
        };
        assert_eq!(state(&guard), "running");
        guard.uid = me + 1;
        assert!(state(&guard).starts_with("not trusted: "), "{}", state(&guard));
        guard.uid = me;
        guard.pid = u32::MAX - 1;
        assert_eq!(state(&guard), "not running (stale status)");
        let _ = std::fs::remove_file(&file);
    }
}
