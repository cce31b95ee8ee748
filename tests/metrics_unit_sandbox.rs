//! The metrics unit's sandbox with a real nginx: `contrib/systemd/loopwarden-metrics.service`
//! makes the file system read-only (`ProtectSystem=strict`) but for its `ReadWritePaths=`, and
//! `nginx -T` opens nginx's pid file and logs for writing, so under a bare `strict` the nginx
//! relays are a limit. This test runs the unit's own `ExecStart=` and `loopwarden facts` under
//! the unit's file-system settings, read from the unit file, against Debian's nginx with its
//! stock configuration, and checks that nginx answers (its configuration is captured, no
//! `relays.nginx` limit) and that nothing nginx opened was written to — and, under `strict` with
//! only the metrics directory writable, that the limit quotes nginx's own error line.
//!
//! systemd-run cannot be used: the machine's pid 1 is not systemd (and a systemd started for the
//! test would take over the machine's cgroups). The sandboxing is done as systemd does it, in a
//! fresh mount namespace per run: every mount but `/proc`, `/sys` and `/dev` remounted
//! read-only, then each `ReadWritePaths=` entry bind-mounted over itself read-write (a `-` entry
//! skipped when absent, any other absent entry a failure as systemd's 226/NAMESPACE);
//! `NoNewPrivileges=` with `setpriv --no-new-privs`. The other settings (system call filters,
//! `IPAddressDeny=`) need systemd and are not reproduced. Everything runs in a sandboxed host
//! (`common::sandbox`): its own pid, network and mount namespaces, with tmpfs over `/run`,
//! `/var/lib`, `/var/log` and `/etc/nginx/conf.d`, so nginx's files are the sandbox's.

mod common;

use common::sandbox;
use common::*;
use std::time::Duration;

const UNIT: &str = include_str!("../contrib/systemd/loopwarden-metrics.service");

/// The proxy the test adds to Debian's stock nginx configuration (its `conf.d` is included).
const RELAY_CONF: &str = "server { listen 8080; location / { proxy_pass http://127.0.0.1:7001; } }";

/// The unit's file-system settings, as systemd reads them.
struct Sandboxing {
    protect_system: String,
    read_write: Vec<String>,
    no_new_privileges: bool,
    exec_start: Vec<String>,
}

impl Sandboxing {
    fn of(unit: &str) -> Sandboxing {
        let mut out = Sandboxing {
            protect_system: String::new(),
            read_write: Vec::new(),
            no_new_privileges: false,
            exec_start: Vec::new(),
        };
        for line in unit.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "ProtectSystem" => out.protect_system = value.to_string(),
                "ReadWritePaths" => out.read_write.extend(value.split_whitespace().map(str::to_string)),
                "NoNewPrivileges" => out.no_new_privileges = value == "yes",
                "ExecStart" => out.exec_start = value.split_whitespace().map(str::to_string).collect(),
                _ => {}
            }
        }
        out
    }
}

/// Words as a bash array's items, each single-quoted (the unit's paths have no quote).
fn bash_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            assert!(!w.contains('\''), "{w}");
            format!("'{w}'")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `unit RW… -- COMMAND…`: COMMAND in a fresh mount namespace made read-only as
/// `ProtectSystem=strict` makes it, but for the RW paths.
const EMULATE: &str = r#"
unit() {
    unshare --mount --propagation private bash -c '
        set -euo pipefail
        findmnt -rn -o TARGET | grep -vE "^/(proc|sys|dev)(/|$)" | while read -r m; do
            # A mount hidden under a later one (the sandbox'"'"'s /run) has no path any more.
            [ -e "$m" ] || continue
            mount -o remount,bind,ro "$m"
        done
        while [ "$1" != -- ]; do
            path=${1#-}
            if [ ! -e "$path" ]; then
                [ "$path" != "$1" ] || { echo "ReadWritePaths: no $path (226/NAMESPACE)" >&2; exit 226; }
            else
                mount --bind "$path" "$path"
                mount -o remount,bind,rw "$path"
            fi
            shift
        done
        shift
        exec $NNP "$@"' unit "$@"
}
"#;

const SCRIPT: &str = r#"
for d in /var/lib /var/log /etc/nginx/conf.d; do mount -t tmpfs -o mode=755 tmpfs "$d"; done
mkdir -p /var/log/nginx /var/lib/nginx /var/lib/prometheus/node-exporter
echo "$RELAY_CONF" > /etc/nginx/conf.d/lw-relay.conf
nginx
for _ in $(seq 100); do [ -s /run/nginx.pid ] && break; sleep 0.1; done
[ -s /run/nginx.pid ] || { echo "nginx did not start" >&2; exit 1; }
written() { stat -c '%n %s %Y' /run/nginx.pid /var/log/nginx/*; md5sum /run/nginx.pid; }
written > "$OUT/before"
unit "${unit_rw[@]}" -- touch "$OUT/read-only-probe" 2> "$OUT/read-only-probe.err" || true
rc=0; unit "${unit_rw[@]}" -- "${exec_start[@]}" 2> "$OUT/exec.err" || rc=$?
echo "$rc" > "$OUT/exec.rc"
cp /var/lib/prometheus/node-exporter/loopwarden.prom "$OUT/" 2>/dev/null || true
unit "${unit_rw[@]}" -- "$LOOPWARDEN" facts > "$OUT/unit.json"
unit "${bare_rw[@]}" -- "$LOOPWARDEN" facts > "$OUT/bare.json"
written > "$OUT/after"
"#;

/// The `relays.nginx` limits of a snapshot.
fn nginx_limits(facts: &serde_json::Value) -> Vec<String> {
    facts["host"]["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .filter(|l| l["scope"] == "relays.nginx")
        .map(|l| l["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The nginx captures' outputs.
fn nginx_captures(facts: &serde_json::Value) -> Vec<String> {
    facts["relays"]["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .filter(|c| c["kind"] == "nginx")
        .map(|c| c["output"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn nginx_answers_under_the_metrics_units_sandbox_and_nothing_is_written() {
    let test = "nginx_answers_under_the_metrics_units_sandbox_and_nothing_is_written";
    if !require_root(test) || !require_tool(test, "nginx") || !require_tool(test, "findmnt") {
        return;
    }
    let unit = Sandboxing::of(UNIT);
    assert_eq!(
        unit.protect_system, "strict",
        "the test reproduces ProtectSystem=strict"
    );
    assert_eq!(
        unit.exec_start.first().map(String::as_str),
        Some("/usr/bin/loopwarden"),
        "{:?}",
        unit.exec_start
    );
    let mut exec_start = unit.exec_start.clone();
    exec_start[0] = loopwarden().to_string();
    // Without the lines for nginx: the metrics directory alone.
    let bare: Vec<String> = unit
        .read_write
        .iter()
        .filter(|p| !p.contains("nginx"))
        .cloned()
        .collect();
    assert!(bare.len() < unit.read_write.len(), "{:?}", unit.read_write);
    let script =
        format!(
        "RELAY_CONF='{RELAY_CONF}'\nexport NNP='{}'\nunit_rw=({})\nbare_rw=({})\nexec_start=({})\n{EMULATE}{SCRIPT}",
        if unit.no_new_privileges { "setpriv --no-new-privs" } else { "" },
        bash_words(&unit.read_write),
        bash_words(&bare),
        bash_words(&exec_start),
    );
    let dir = TempDir::new("metrics-unit");
    sandbox::run_ok(&script, &dir, Duration::from_secs(120));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();

    // The emulation is read-only where the unit is: the test's own directory is not writable.
    assert!(!dir.path().join("read-only-probe").exists());
    assert!(
        read("read-only-probe.err").contains("Read-only file system"),
        "{}",
        read("read-only-probe.err")
    );

    // The unit's own command: findings are exit 1 (SuccessExitStatus=1), the file is written.
    let rc = read("exec.rc");
    assert!(
        matches!(rc.trim(), "0" | "1"),
        "ExecStart exited {rc}: {}",
        read("exec.err")
    );
    let metrics = read("loopwarden.prom");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("loopwarden_privileged{") && l.ends_with(" 1")),
        "{metrics}"
    );

    // Under the unit, nginx -T answers: its configuration is captured with the test's proxy.
    let facts = sandbox::json(&dir, "unit.json");
    assert_eq!(nginx_limits(&facts), Vec::<String>::new());
    let captures = nginx_captures(&facts);
    assert!(
        captures.iter().any(|c| c.contains("proxy_pass http://127.0.0.1:7001")),
        "{captures:?}"
    );

    // Under strict with only the metrics directory writable, nginx -T fails; the limit quotes
    // nginx's error line, which is not its first (that one says the syntax is ok).
    let bare = sandbox::json(&dir, "bare.json");
    assert!(nginx_captures(&bare).is_empty());
    let limits = nginx_limits(&bare);
    assert!(
        limits.iter().any(|l| l.contains("[emerg]")
            && l.contains("\"/run/nginx.pid\" failed (30: Read-only file system)")
            && l.contains("syntax is ok")),
        "{limits:?}"
    );

    // nginx opened its pid file and logs for writing and wrote nothing.
    assert_eq!(read("before"), read("after"));
}
