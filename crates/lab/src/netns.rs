//! Throwaway network namespaces with unique names, removed when dropped.
//!
//! Used by the lab and by the end-to-end tests. Everything here acts only inside namespaces it
//! created itself: nothing touches the caller's namespace.
//!
//! Programs (`ip`, and what `ip netns exec` starts: `nft`, `sysctl`, the iptables tools …) are
//! looked up on the audit collectors' fixed system `PATH` ([`SAFE_PATH`]), never on the caller's:
//! root must not run whatever a user's directory put first on `PATH`.

use loopwarden_core::collect::SAFE_PATH;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a namespace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A command could not be started at all (missing binary, no permission).
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Writing a namespace's configuration file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A network namespace created by this process (`ip netns add`), deleted on drop together with
/// its `/etc/netns/NAME` directory and every process still inside it.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

/// A command for the system program `program`, found (and finding what it starts) on
/// [`SAFE_PATH`] alone. A path (with a `/`) is run as given: the caller chose that file.
pub fn system_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", SAFE_PATH);
    cmd
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other run will pick: `lw-<tag>-<pid>-<n>-<nanos>`, at most 40 characters.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    format!("lw-{tag}-{}-{n}-{:x}", std::process::id(), nanos)
}

/// The pid in a name made by [`unique_name`] (`lw-<tag>-<pid>-<n>-<hex>`), if it is one.
fn owner_pid(name: &str) -> Option<i32> {
    let parts: Vec<&str> = name.split('-').collect();
    match parts.as_slice() {
        ["lw", tag, pid, n, hex]
            if tag.chars().all(|c| c.is_ascii_alphanumeric())
                && n.chars().all(|c| c.is_ascii_digit())
                && !hex.is_empty()
                && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            pid.parse().ok()
        }
        _ => None,
    }
}

/// Deletes namespaces that a loopwarden process made (named by [`unique_name`]) and that its
/// death left behind — a run ended by SIGKILL cannot clean up. A namespace whose creator is still
/// alive is never touched; processes still inside a stale one are left alone (they keep it until
/// they exit). Returns the names removed.
pub fn sweep_stale() -> Vec<String> {
    let listed = system_command("ip")
        .args(["netns", "list"])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut removed = Vec::new();
    for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = owner_pid(name) else { continue };
        // SAFETY: kill(pid, 0) only asks whether the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if alive {
            continue;
        }
        let deleted = system_command("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .process_group(0)
            .status()
            .is_ok_and(|s| s.success());
        if deleted {
            let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(name));
            removed.push(name.to_string());
        }
    }
    removed
}

impl Namespace {
    /// Creates a namespace named after `tag` (plus a unique suffix) and brings its `lo` up.
    pub fn create(tag: &str) -> Result<Namespace, NetnsError> {
        let name = unique_name(tag);
        run(system_command("ip").args(["netns", "add", &name]))?;
        let ns = Namespace { name };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `argv` inside the namespace (`ip netns exec NAME …`), not yet started.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = system_command("ip");
        cmd.args(["netns", "exec", &self.name]).args(argv);
        cmd
    }

    /// Runs `argv` inside the namespace and returns its stdout; a non-zero exit is an error.
    pub fn exec(&self, argv: &[&str]) -> Result<String, NetnsError> {
        let out = run(&mut self.command(argv))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Writes `/etc/netns/NAME/<file>`, which `ip netns exec` bind-mounts over `/etc/<file>`
    /// (for example a `hosts` file private to the namespace).
    pub fn set_etc_file(&self, file: &str, contents: &str) -> Result<(), NetnsError> {
        let dir = self.etc_dir();
        std::fs::create_dir_all(&dir).map_err(|source| NetnsError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(file);
        std::fs::write(&path, contents).map_err(|source| NetnsError::Io { path, source })
    }

    fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// Runs `f` on a fresh OS thread that has joined this namespace (`setns(2)` is per thread),
    /// and returns its result. Sockets created inside `f` stay in this namespace for their whole
    /// life, whichever thread uses them later; the caller's thread never changes namespace.
    pub fn run_in<R, F>(&self, f: F) -> Result<R, NetnsError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let path = PathBuf::from("/run/netns").join(&self.name);
        let handle = std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || -> Result<R, NetnsError> {
                let file = std::fs::File::open(&path).map_err(|source| NetnsError::Io {
                    path: path.clone(),
                    source,
                })?;
                use std::os::fd::AsRawFd;
                // SAFETY: setns(2) on a namespace file we just opened; affects only this thread.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(NetnsError::Io {
                        path,
                        source: std::io::Error::last_os_error(),
                    });
                }
                Ok(f())
            })
            .map_err(|source| NetnsError::Spawn {
                command: format!("thread in {}", self.name),
                source,
            })?;
        handle.join().unwrap_or_else(|_| {
            Err(NetnsError::Failed {
                command: format!("thread in {}", self.name),
                status: "panicked".to_string(),
                stderr: String::new(),
            })
        })
    }

    /// Pids of the processes inside the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        system_command("ip")
            .args(["netns", "pids", &self.name])
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Only processes inside this namespace, which this process created: they are ours.
        for pid in self.pids() {
            // SAFETY: kill(2) with a pid read from our own namespace; failure is harmless.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        // Its own process group: a second Ctrl-C at the terminal must not kill the clean-up.
        let _ = system_command("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .process_group(0)
            .status();
        let _ = std::fs::remove_dir_all(self.etc_dir());
    }
}

/// Runs a command to completion; a non-zero exit becomes [`NetnsError::Failed`] with its stderr.
pub fn run(cmd: &mut Command) -> Result<Output, NetnsError> {
    let command = format!("{cmd:?}").replace('"', "");
    // Short-lived set-up and clean-up commands run in their own process group, so that a
    // terminal's Ctrl-C reaches only loopwarden (which then cleans up) and never half of them.
    let out = cmd
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|source| NetnsError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(NetnsError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether this process may create network namespaces (effective uid 0). Tests that need one
/// skip, saying so, when it may not.
pub fn can_create_namespaces() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    root && system_command("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[cfg(test)]
mod sweep_tests {
    use super::{owner_pid, unique_name};

    #[test]
    fn only_names_made_by_unique_name_carry_an_owner() {
        let mine = unique_name("victim");
        assert_eq!(owner_pid(&mine), Some(std::process::id() as i32));
        for other in [
            "lw-demo-123",
            "lw-x-12-a-ff",
            "docker-1-2-3-4",
            "lw-a b-1-2-ff",
            "lw-v-1-2-xyz",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }
}
