//! Real child processes and scratch directories for the collectors' unit tests.

use crate::facts::Process;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A long-running child (`sleep 30`, or any program and arguments), killed and reaped when
/// dropped.
pub struct Sleeper(std::process::Child, String);

impl Sleeper {
    /// Starts `program 30` (coreutils `sleep` or a copy of it).
    pub fn start(program: &Path) -> Sleeper {
        Sleeper::spawn(program, &["30"])
    }

    /// Starts `program args…`; the last argument tells when the exec has happened. A program
    /// just copied may be busy for a moment (ETXTBSY): another test thread that forked while the
    /// copy was open for writing holds that descriptor until its child execs; the start is
    /// tried again then.
    pub fn spawn(program: &Path, args: &[&str]) -> Sleeper {
        let mut tries = 0;
        let child = loop {
            match std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .spawn()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                started => break started.expect("start child"),
            }
        };
        Sleeper(child, args.last().map(|a| a.to_string()).unwrap_or_default())
    }

    /// The child as the owners collector lists it, once it runs the new program.
    pub fn process(&self) -> Process {
        let pid = self.0.id();
        for _ in 0..400 {
            if let Some(p) = super::owners::process(pid) {
                if p.cmdline.last() == Some(&self.1) && p.cmdline.len() > 1 {
                    return p;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("child {pid} did not start");
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// coreutils `sleep`.
pub fn sleep_binary() -> PathBuf {
    ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("coreutils sleep")
}

/// A directory of the test's own under the temp dir, with `mode`, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `lw-<tag>-<pid>` with `mode`.
    pub fn new(tag: &str, mode: u32) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lw-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
