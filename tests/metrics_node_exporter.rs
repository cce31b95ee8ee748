//! The metrics end to end: a host namespace with route_localnet on `eth0` and loopwarden's own
//! table (`harden --apply`), a neighbour that sends spoofed loopback frames at it, then
//! `audit --format prometheus --out DIR/loopwarden.prom`. Debian's `prometheus-node-exporter`,
//! started inside the host namespace on its loopback with the textfile collector on DIR, must
//! serve the series (the drop counters per interface and family among them) with
//! `node_textfile_scrape_error 0`, and `promtool check metrics` must accept the file. The
//! systemd service and timer that refresh the file pass `systemd-analyze verify`.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A namespace's harden state directory (under /run/loopwarden/harden), removed when dropped.
struct State(Option<std::path::PathBuf>);

impl State {
    fn of(ns: &Namespace) -> State {
        let key = ns
            .run_in(loopwarden_harden::state::namespace_key)
            .ok()
            .and_then(Result::ok);
        State(key.map(|k| Path::new(loopwarden_harden::state::DEFAULT_ROOT).join(k)))
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
            // The root stays: another test may be creating its own state under it.
        }
    }
}

/// Sends hand-built frames from `peer`'s `peer0` to `host`'s `eth0`.
fn spoof(host: &Namespace, peer: &Namespace, frames: &[(SocketAddr, SocketAddr)]) {
    let mac = host.exec(&["cat", "/sys/class/net/eth0/address"]).expect("host MAC");
    let dst_mac = loopwarden_lab::topology::parse_mac(mac.trim()).expect("MAC");
    let frames = frames.to_vec();
    peer.run_in(move || {
        // SAFETY: if_nametoindex with a NUL-terminated name; this thread is in the peer's namespace.
        let index = unsafe { libc::if_nametoindex(c"peer0".as_ptr()) };
        assert!(index > 0, "peer0 has no index");
        let socket = loopwarden_lab::packet::PacketSocket::open(index).expect("AF_PACKET socket");
        for (src, dst) in frames {
            let frame =
                loopwarden_lab::packet::build([2, 0, 0, 0, 0, 0xfe], dst_mac, src, dst, None, b"spoof").expect("frame");
            socket.send(&frame).expect("send frame");
        }
    })
    .expect("run in the neighbour");
    std::thread::sleep(Duration::from_millis(200));
}

/// `/metrics` of the node_exporter in `ns` (curl inside the namespace), once it answers.
fn scrape(ns: &Namespace, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = output_within(
            &mut ns.command(&["curl", "-sf", "--max-time", "5", &url]),
            COMMAND_TIMEOUT,
        );
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(Instant::now() < deadline, "node_exporter did not answer on {url}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sample lines of `text` whose series starts with `prefix`, with the label
/// `netns="NETNS"` (which every loopwarden series carries) taken out.
fn samples(text: &str, prefix: &str, netns: &str) -> Vec<String> {
    let label = format!("netns=\"{netns}\"");
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            l.replace(&format!("{{{label}}}"), "")
                .replace(&format!("{label},"), "")
                .replace(&format!(",{label}"), "")
        })
        .collect()
}

/// The value of the `netns` label loopwarden gave its series in `text`.
fn netns_label(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("loopwarden_info{netns=\""))
        .and_then(|rest| rest.split_once("\",version="))
        .map(|(netns, _)| netns.to_string())
        .unwrap_or_else(|| panic!("no loopwarden_info{{netns=…}} in {text}"))
}

#[test]
fn node_exporter_serves_the_audit_and_the_drop_counters() {
    let test = "node_exporter_serves_the_audit_and_the_drop_counters";
    let exporter = "prometheus-node-exporter";
    if !require_root(test)
        || !require_tool(test, "nft")
        || !require_tool(test, exporter)
        || !require_tool(test, "promtool")
        || !require_tool(test, "curl")
    {
        return;
    }
    let host = namespace("metricsh");
    let peer = namespace("metricsp");
    let peer_name = peer.name().to_string();
    for argv in [
        &[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0", "netns", &peer_name,
        ][..],
        &["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"],
        &["ip", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"],
        &["ip", "link", "set", "eth0", "up"],
        &["ip", "link", "set", "lo", "up"],
        &["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
    ] {
        host.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    for argv in [
        &["ip", "addr", "add", "192.0.2.254/24", "dev", "peer0"][..],
        &["ip", "addr", "add", "2001:db8::fffe/64", "dev", "peer0", "nodad"],
        &["ip", "link", "set", "peer0", "up"],
    ] {
        peer.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    let _state = State::of(&host);
    for args in [
        &["harden", "--apply", "--confirm-within", "60"][..],
        &["harden", "--confirm"],
    ] {
        let out = run_loopwarden(&host, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // harden turned route_localnet off; something (kube-proxy, a Docker setting) turns it on
    // again: the table still stops the path, which the metrics must say.
    host.exec(&["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"])
        .expect("route_localnet again");
    let attacker = |ip: &str, port| SocketAddr::new(ip.parse().expect("address"), port);
    spoof(
        &host,
        &peer,
        &[
            (attacker("192.0.2.254", 40000), attacker("127.0.0.1", 7001)),
            (attacker("192.0.2.254", 40001), attacker("127.0.0.1", 7001)),
            (attacker("::ffff:127.0.0.1", 40002), attacker("2001:db8::1", 7001)),
        ],
    );

    let tmp = TempDir::new("metrics");
    let textfiles = tmp.path().join("textfile");
    std::fs::create_dir(&textfiles).expect("textfile directory");
    let prom = textfiles.join("loopwarden.prom");
    let prom_arg = prom.to_str().expect("utf-8 path");
    // Twice: the second run replaces the first file whole.
    for _ in 0..2 {
        let out = run_loopwarden(&host, &["audit", "--format", "prometheus", "--out", prom_arg]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "audit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&textfiles)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers,
        [std::ffi::OsString::from("loopwarden.prom")],
        "no temporary file left"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&prom).expect("metadata").permissions());
    assert_eq!(mode & 0o777, 0o644, "node_exporter's user must read it");
    let text = std::fs::read_to_string(&prom).expect("metrics file");

    let lint = output_within(
        std::process::Command::new("sh").args(["-c", &format!("promtool check metrics < '{prom_arg}'")]),
        COMMAND_TIMEOUT,
    );
    assert!(
        lint.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let port = 9100;
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let directory = format!("--collector.textfile.directory={}", textfiles.display());
    let _exporter = spawn_in(
        &host,
        &[
            exporter,
            &listen,
            "--collector.disable-defaults",
            "--collector.textfile",
            &directory,
        ],
    );
    let metrics = scrape(&host, port);
    // Every loopwarden series names the audited namespace (its inode, as the kernel says it).
    let inode = host
        .exec(&["readlink", "/proc/self/ns/net"])
        .expect("netns")
        .trim()
        .to_string();
    let netns = netns_label(&text);
    assert!(netns.starts_with(&inode), "{netns} is not {inode}");
    let ours: Vec<&str> = metrics.lines().filter(|l| l.starts_with("loopwarden_")).collect();
    assert!(!ours.is_empty(), "{metrics}");
    for line in &ours {
        assert!(
            line.contains(&format!("netns=\"{netns}\"")),
            "{line} lacks netns=\"{netns}\""
        );
    }
    assert_eq!(
        samples(&metrics, "node_textfile_scrape_error", &netns),
        ["node_textfile_scrape_error 0"],
        "{metrics}"
    );
    assert_eq!(
        samples(&metrics, "loopwarden_spoofed_packets_dropped_total", &netns),
        [
            "loopwarden_spoofed_packets_dropped_total{family=\"ipv4\",interface=\"eth0\"} 2",
            "loopwarden_spoofed_packets_dropped_total{family=\"ipv6\",interface=\"eth0\"} 1",
        ],
        "{metrics}"
    );
    assert!(
        samples(&metrics, "loopwarden_spoofed_packets_dropped_by_rule_total", &netns).contains(
            &"loopwarden_spoofed_packets_dropped_by_rule_total{family=\"ipv4\",rule=\"ipv4-destination\"} 2"
                .to_string()
        ),
        "{metrics}"
    );
    assert_eq!(
        samples(&metrics, "loopwarden_harden_table", &netns),
        ["loopwarden_harden_table 1"],
        "{metrics}"
    );
    // The table blocks the path route_localnet opened: the finding is there, blocked.
    assert!(
        samples(&metrics, "loopwarden_findings{check=\"net.route-localnet\"", &netns)
            .iter()
            .any(|l| l.contains("status=\"blocked\"") && l.ends_with(" 1")),
        "{metrics}"
    );
    let duration = samples(&metrics, "loopwarden_audit_duration_seconds{", &netns);
    assert_eq!(duration.len(), 1, "{metrics}");
    let seconds: f64 = duration[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(seconds > 0.0 && seconds < 60.0, "{seconds}");
    let stamp = samples(&metrics, "loopwarden_audit_timestamp_seconds{", &netns);
    let when: f64 = stamp
        .first()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("a timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - when).abs() < 300.0, "{when} vs {now}");
    let _ = run_loopwarden(&host, &["harden", "--remove"]);
}

#[test]
fn the_metrics_units_verify() {
    let test = "the_metrics_units_verify";
    if !require_tool(test, "systemd-analyze") {
        return;
    }
    // The units name the packaged binary; verify a copy that names this build's.
    let tmp = TempDir::new("metrics-units");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut units = Vec::new();
    for name in ["loopwarden-metrics.service", "loopwarden-metrics.timer"] {
        let text = std::fs::read_to_string(repo.join("contrib/systemd").join(name)).expect("unit");
        assert!(
            name.ends_with(".timer") || text.contains("ExecStart=/usr/bin/loopwarden audit --format prometheus --out ")
        );
        let copy = tmp.path().join(name);
        std::fs::write(&copy, text.replace("/usr/bin/loopwarden", loopwarden())).expect("copy");
        units.push(copy.to_str().expect("utf-8 path").to_string());
    }
    // Their Documentation= names man:loopwarden-audit(1), which verify looks up with man: this
    // build's pages, as the package installs them.
    let man = tmp.path().join("man");
    must(
        std::process::Command::new(loopwarden())
            .args(["man", "--out-dir"])
            .arg(man.join("man1")),
    );
    let out = output_within(
        std::process::Command::new("systemd-analyze")
            .arg("verify")
            .args(&units)
            .env("MANPATH", &man),
        COMMAND_TIMEOUT,
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("loopwarden-metrics"),
        "systemd-analyze verify: {said}"
    );
}

/// Label values from a snapshot are escaped as the exposition format says: a network namespace
/// name with a double quote, a backslash, a newline that starts a forged `# TYPE` line, a
/// carriage return and terminal escapes gives one `loopwarden_info` line whose label reads back
/// as the name (control characters other than newline shown as `\xNN` text, backslashes
/// doubled), and the real `promtool check metrics` accepts the whole output.
#[test]
fn hostile_label_values_are_escaped_and_promtool_accepts_them() {
    let test = "hostile_label_values_are_escaped_and_promtool_accepts_them";
    if !require_tool(test, "promtool") {
        return;
    }
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/core/tests/fixtures/facts/namespace-every-listener-kind.json"
    );
    let tmp = TempDir::new("promlabels");
    for (name, shown) in [
        (
            "net:[1] \"}\" 1\nloopwarden_info 2",
            "net:[1] \"}\" 1\nloopwarden_info 2",
        ),
        // A name's own backslashes read back doubled: `\x1b` text never names an ESC.
        ("a\\\"b\\n\\", "a\\\\\"b\\\\n\\\\"),
        (
            "x\n# TYPE loopwarden_info counter\n",
            "x\n# TYPE loopwarden_info counter\n",
        ),
        ("cr\r\u{1b}[2J\u{7f}", "cr\\x0d\\x1b[2J\\x7f"),
    ] {
        let mut snapshot: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("fixture JSON");
        snapshot["host"]["netns"] = serde_json::Value::String(name.into());
        let path = tmp.path().join("hostile.json");
        std::fs::write(&path, snapshot.to_string()).expect("write snapshot");
        let prom = tmp.path().join("hostile.prom");
        let out = output_within(
            std::process::Command::new(loopwarden()).args([
                "audit",
                "--facts",
                path.to_str().expect("utf-8 path"),
                "--format",
                "prometheus",
                "--out",
                prom.to_str().expect("utf-8 path"),
            ]),
            COMMAND_TIMEOUT,
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{name:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&prom).expect("metrics written");
        let info: Vec<&str> = text.lines().filter(|l| l.starts_with("loopwarden_info")).collect();
        assert_eq!(info.len(), 1, "{name:?}: {text}");
        let types = text
            .lines()
            .filter(|l| l.starts_with("# TYPE loopwarden_info "))
            .count();
        assert_eq!(types, 1, "{name:?}: {text}");
        let value = label_value(info[0], "netns").unwrap_or_else(|| panic!("{name:?}: no netns label: {}", info[0]));
        assert_eq!(value, shown, "{name:?}: {}", info[0]);
        let check = output_within(
            std::process::Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(std::fs::File::open(&prom).expect("open metrics")),
            COMMAND_TIMEOUT,
        );
        assert!(
            check.status.success(),
            "{name:?}: promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// The value of label `key` in one exposition-format sample line, unescaped as the format says
/// (`\\`, `\"`, `\n`).
fn label_value(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}=\""))? + key.len() + 2;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}
