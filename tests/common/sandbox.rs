//! A sandboxed host for the `--all-netns` tests: a shell script run as pid 1 of a pid namespace
//! of its own, in a network namespace (only `lo`) and a mount namespace of its own, with its own
//! `/proc` and a tmpfs over `/run`. Inside, `ip netns add` and `unshare --net` make namespaces
//! that only the sandbox sees, so `loopwarden … --all-netns` run there finds exactly the
//! namespaces the test made — none of the machine's or of tests running beside it — and nothing
//! made there outlives the script: when pid 1 exits the kernel kills every process of the pid
//! namespace, and the namespaces and mounts go with them. `unshare --kill-child` ends pid 1 when
//! the test kills `unshare` (timeout) or drops the run.

use super::{output_within, TempDir};
use std::process::{Command, Output};
use std::time::Duration;

/// What every sandbox script starts with: the namespace bind mounts copied from the machine's
/// mount namespace taken away (in the sandbox's copy only: its mounts are private; findmnt fails
/// when there are none; one already gone with a parent taken before it is no failure, one still
/// there is), its own `/run`, and `lo` up.
const PRELUDE: &str = "set -euo pipefail\n\
    { findmnt -rn -t nsfs -o TARGET || true; } | while read -r m; do \
      umount -l \"$m\" 2>/dev/null || { if findmnt -rn -M \"$m\" > /dev/null; then \
      echo \"cannot unmount $m\" >&2; exit 1; fi; }; done\n\
    mount -t tmpfs -o mode=755 tmpfs /run\n\
    ip link set lo up\n";

/// [`run`], which must succeed: else the test fails with the sandbox's status, stdout and stderr.
pub fn run_ok(script: &str, dir: &TempDir, limit: Duration) -> Output {
    let out = run(script, dir, limit);
    assert!(
        out.status.success(),
        "sandbox failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `script` (bash) in a new sandbox and returns its output. The script finds the binary
/// under test in `$LOOPWARDEN` and a directory for its results in `$OUT` (`dir`, shared with the
/// test).
pub fn run(script: &str, dir: &TempDir, limit: Duration) -> Output {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount",
        "--mount-proc",
        "--propagation",
        "private",
        "bash",
        "-c",
    ])
    .arg(format!("{PRELUDE}{script}"))
    .env("LOOPWARDEN", super::loopwarden())
    .env("OUT", dir.path());
    output_within(&mut cmd, limit)
}

/// Reads `$OUT/NAME` as JSON, naming the file when it is not.
pub fn json(dir: &TempDir, name: &str) -> serde_json::Value {
    let path = dir.path().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
}
