//! Ground truth for the end-to-end "truth" tests: a victim host and a LAN neighbour on one veth
//! segment, an independent attacker (Debian's python3-scapy, `tests/real/attacker.py`, not
//! loopwarden's lab), a receiver that logs what really arrived and with which peer address
//! (`tests/real/receiver.py`), and a ledger that compares loopwarden's verdicts with what the
//! attacks showed and fails with the whole table of disagreements.
//!
//! Everything runs inside namespaces created here and removed on drop (also on panic).

use super::{loopwarden, namespace, Namespace, Spawned, TestNamespace};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver as Channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The victim's LAN address (documentation range).
pub const VICTIM_V4: &str = "192.0.2.1";
/// The victim's global IPv6 address, when it has one.
pub const VICTIM_V6: &str = "2001:db8::1";
/// The neighbour namespace's own address (its kernel has it).
pub const NEIGHBOUR_V4: &str = "192.0.2.254";
/// The address the attacker claims on the LAN (answers ARP for it; its kernel does not have it).
pub const CLAIM_V4: &str = "192.0.2.200";
/// The IPv6 address the attacker claims on the LAN.
pub const CLAIM_V6: &str = "2001:db8::200";
/// How long a receiver is watched for a token before the attack counts as dropped.
pub const DELIVERY_WAIT: Duration = Duration::from_millis(1200);

/// The Python interpreter with Debian's scapy: never a per-user interpreter on PATH.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Path of a helper script under `tests/real/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/real").join(name)
}

/// True when the truth tests can run: root, iproute2, and Debian's python3-scapy importable by
/// `/usr/bin/python3`. Otherwise prints why and returns false — or fails, in a full run
/// (`LOOPWARDEN_E2E=1`), where a test that cannot run must not pass.
pub fn require_truth_tools(test: &str, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !loopwarden_lab::netns::can_create_namespaces() {
        missing.push("root and iproute2".to_string());
    }
    let scapy = Command::new(SYSTEM_PYTHON)
        .args(["-c", "import scapy.all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !scapy {
        missing.push("python3-scapy for /usr/bin/python3".to_string());
    }
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || std::path::Path::new(tool).is_file();
        if !found {
            missing.push((*tool).to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "SKIPPED {test}: needs {} (scripts/install-test-deps.sh)",
        missing.join(", ")
    );
    if std::env::var("LOOPWARDEN_E2E").is_ok_and(|v| v == "1") {
        panic!("{why} — LOOPWARDEN_E2E=1: a full run must not skip");
    }
    eprintln!("{why}");
    false
}

/// Whether the victim's LAN interface gets a global IPv6 address or only its link-local one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6 {
    /// `2001:db8::1/64` plus the kernel's `fe80::` address.
    Global,
    /// Only the kernel's `fe80::` address (most LAN hosts).
    LinkLocalOnly,
}

/// A victim namespace (`eth0`) and a neighbour namespace (`peer0`) on one veth segment.
pub struct Lan {
    /// The host under test.
    pub victim: TestNamespace,
    /// The LAN neighbour, where the attacker runs.
    pub neighbour: TestNamespace,
    /// MAC address of the victim's `eth0`.
    pub victim_mac: String,
    /// The victim's `fe80::` address on `eth0`.
    pub victim_link_local: String,
}

impl Lan {
    /// Builds the segment: victim `eth0` 192.0.2.1/24 (+ 2001:db8::1/64 with [`Ipv6::Global`]),
    /// neighbour `peer0` 192.0.2.254/24 (+ 2001:db8::254/64), DAD off so addresses are usable at once.
    pub fn new(tag: &str, ipv6: Ipv6) -> Lan {
        let victim = namespace(&format!("v{tag}"));
        let neighbour = namespace(&format!("n{tag}"));
        let peer = neighbour.name().to_string();
        for ns in [&victim, &neighbour] {
            for key in ["net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"] {
                ns.exec(&["sysctl", "-qw", key]).expect("sysctl accept_dad");
            }
        }
        victim
            .exec(&[
                "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0", "netns", &peer,
            ])
            .expect("veth");
        victim
            .exec(&["ip", "addr", "add", &format!("{VICTIM_V4}/24"), "dev", "eth0"])
            .expect("victim addr");
        if ipv6 == Ipv6::Global {
            victim
                .exec(&["ip", "addr", "add", &format!("{VICTIM_V6}/64"), "dev", "eth0", "nodad"])
                .expect("victim addr6");
            neighbour
                .exec(&["ip", "addr", "add", "2001:db8::254/64", "dev", "peer0", "nodad"])
                .expect("neighbour addr6");
        }
        victim.exec(&["ip", "link", "set", "eth0", "up"]).expect("eth0 up");
        neighbour
            .exec(&["ip", "addr", "add", &format!("{NEIGHBOUR_V4}/24"), "dev", "peer0"])
            .expect("neighbour addr");
        neighbour.exec(&["ip", "link", "set", "peer0", "up"]).expect("peer0 up");
        let victim_mac = link_mac(&victim, "eth0");
        let victim_link_local = wait_link_local(&victim, "eth0");
        Lan {
            victim,
            neighbour,
            victim_mac,
            victim_link_local,
        }
    }

    /// Starts the attacker on the neighbour's `peer0`, aiming at the victim's MAC.
    pub fn attacker(&self) -> Attacker {
        let script = script("attacker.py");
        let cmd = self.neighbour.command(&[
            SYSTEM_PYTHON,
            "-u",
            script.to_str().unwrap_or_default(),
            "--iface",
            "peer0",
            "--claim",
            CLAIM_V4,
            "--claim",
            CLAIM_V6,
        ]);
        Attacker::start(cmd, &self.victim_mac, CLAIM_V4, CLAIM_V6)
    }

    /// Sets sysctls (`key=value`) in the victim namespace.
    pub fn victim_sysctls(&self, settings: &[&str]) {
        for s in settings {
            self.victim.exec(&["sysctl", "-qw", s]).expect("victim sysctl");
        }
    }
}

/// The MAC address of `iface` in `ns`.
pub fn link_mac(ns: &Namespace, iface: &str) -> String {
    let out = ns.exec(&["ip", "-j", "link", "show", iface]).expect("ip link");
    let v: Value = serde_json::from_str(&out).expect("ip -j link");
    v[0]["address"].as_str().expect("link address").to_string()
}

/// The `fe80::` address of `iface` in `ns`, waiting (bounded) for the kernel to assign it.
pub fn wait_link_local(ns: &Namespace, iface: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = ns
            .exec(&["ip", "-j", "-6", "addr", "show", "dev", iface])
            .expect("ip addr");
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let found = v[0]["addr_info"].as_array().into_iter().flatten().find_map(|a| {
            let local = a["local"].as_str()?;
            (local.starts_with("fe80:") && a["tentative"].is_null()).then(|| local.to_string())
        });
        if let Some(addr) = found {
            return addr;
        }
        assert!(Instant::now() < deadline, "no link-local address on {iface}: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// A SYN, and a full handshake with data when the source is the attacker's own.
    Tcp,
    /// One datagram carrying the token.
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One attack: a hand-built packet from the attacker (source possibly spoofed) to a destination.
#[derive(Debug, Clone)]
pub struct Attack {
    /// What the test calls it (also part of the token).
    pub name: String,
    /// TCP or UDP.
    pub proto: Proto,
    /// Source address written into the packet.
    pub src: String,
    /// Destination address written into the packet.
    pub dst: String,
    /// Destination port.
    pub dport: u16,
}

impl Attack {
    /// A TCP attack (handshake and data when `src` is the attacker's claimed address).
    pub fn tcp(name: &str, src: &str, dst: &str, dport: u16) -> Attack {
        Attack {
            name: name.into(),
            proto: Proto::Tcp,
            src: src.into(),
            dst: dst.into(),
            dport,
        }
    }

    /// A UDP attack: one datagram.
    pub fn udp(name: &str, src: &str, dst: &str, dport: u16) -> Attack {
        Attack {
            name: name.into(),
            proto: Proto::Udp,
            src: src.into(),
            dst: dst.into(),
            dport,
        }
    }

    /// `UDP 127.0.0.2 -> 192.0.2.1:7007`, for tables and messages.
    pub fn describe(&self) -> String {
        let dst = if self.dst.contains(':') {
            format!("[{}]", self.dst)
        } else {
            self.dst.clone()
        };
        format!(
            "{} {} -> {dst}:{}",
            self.proto.as_str().to_uppercase(),
            self.src,
            self.dport
        )
    }
}

/// What a TCP attack saw come back.
#[derive(Debug, Clone, Default)]
pub struct TcpReply {
    /// A SYN-ACK came back to the attacker.
    pub synack: bool,
    /// Its source address.
    pub synack_src: Option<String>,
    /// The data segment was acknowledged.
    pub data_acked: bool,
}

/// The observed fate of one attack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    /// The receiver never got the token.
    Dropped,
    /// The receiver got the token; `peer` is the address the application saw.
    Delivered {
        /// The peer address the application saw.
        peer: String,
        /// The receiver socket that got it.
        socket: String,
    },
}

impl Truth {
    /// Whether the application got the attack's data.
    pub fn delivered(&self) -> bool {
        matches!(self, Truth::Delivered { .. })
    }

    /// Delivered and the application saw a loopback peer (127/8, ::1, ::ffff:127/104).
    pub fn loopback_peer(&self) -> bool {
        match self {
            Truth::Delivered { peer, .. } => is_loopback_text(peer),
            Truth::Dropped => false,
        }
    }
}

impl std::fmt::Display for Truth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Truth::Dropped => write!(f, "dropped"),
            Truth::Delivered { peer, socket } if is_loopback_text(peer) => {
                write!(f, "delivered to {socket}, loopback peer {peer}")
            }
            Truth::Delivered { peer, socket } => write!(f, "delivered to {socket}, peer {peer}"),
        }
    }
}

fn is_loopback_text(addr: &str) -> bool {
    addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.")
}

/// Reads JSON lines from a child's stdout on a thread, so no read blocks a test forever.
fn json_lines(stdout: impl std::io::Read + Send + 'static) -> Channel<Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// The independent attacker: `tests/real/attacker.py` running in the neighbour namespace (or in
/// a container), fed JSON commands.
pub struct Attacker {
    _child: Spawned,
    stdin: ChildStdin,
    answers: Channel<Value>,
    dst_mac: String,
    /// The IPv4 address the attacker answers ARP for.
    pub claim_v4: String,
    /// The IPv6 address the attacker answers neighbour solicitations for.
    pub claim_v6: String,
}

static SPORT: AtomicU32 = AtomicU32::new(0);

impl Attacker {
    /// Starts `cmd` (an `attacker.py` invocation) and waits until it says it is ready.
    pub fn start(mut cmd: Command, dst_mac: &str, claim_v4: &str, claim_v6: &str) -> Attacker {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start attacker.py");
        let stdin = child.stdin.take().expect("attacker stdin");
        let answers = json_lines(child.stdout.take().expect("attacker stdout"));
        let child = Spawned(child);
        let ready = answers
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("attacker.py did not start ({cmd:?})"));
        assert_eq!(ready["ready"], true, "attacker.py: {ready}");
        Attacker {
            _child: child,
            stdin,
            answers,
            dst_mac: dst_mac.to_string(),
            claim_v4: claim_v4.to_string(),
            claim_v6: claim_v6.to_string(),
        }
    }

    fn ask(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("write to attacker.py");
        let answer = self
            .answers
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("attacker.py did not answer {cmd}"));
        assert!(answer.get("error").is_none(), "attacker.py failed on {cmd}: {answer}");
        answer
    }

    fn sport() -> u16 {
        41000 + (SPORT.fetch_add(1, Ordering::Relaxed) % 20000) as u16
    }

    /// Sends one UDP datagram carrying `payload`.
    pub fn udp(&mut self, src: &str, dst: &str, dport: u16, payload: &str) {
        let cmd = serde_json::json!({"op": "udp", "dst_mac": self.dst_mac, "src": src, "dst": dst,
            "sport": Self::sport(), "dport": dport, "payload": payload});
        self.ask(cmd);
    }

    /// Sends a SYN; when `src` is the attacker's own (claimed) address, completes the handshake
    /// and sends `payload`.
    pub fn tcp(&mut self, src: &str, dst: &str, dport: u16, payload: &str) -> TcpReply {
        let cmd = serde_json::json!({"op": "tcp", "dst_mac": self.dst_mac, "src": src, "dst": dst,
            "sport": Self::sport(), "dport": dport, "payload": payload, "timeout": 2.0});
        let a = self.ask(cmd);
        TcpReply {
            synack: a["synack"] == true,
            synack_src: a["synack_src"].as_str().map(str::to_string),
            data_acked: a["data_acked"] == true,
        }
    }

    /// The ARP / neighbour solicitations the attacker saw: (family, asker, target).
    pub fn neighbour_requests(&mut self) -> Vec<(String, String, String)> {
        let a = self.ask(serde_json::json!({"op": "neighbour_requests"}));
        a["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                (s("family"), s("asker"), s("target"))
            })
            .collect()
    }

    /// Fires `attack` and watches `receiver` for its token: the observed truth.
    pub fn fire(&mut self, receiver: &Receiver, attack: &Attack) -> Truth {
        let token = receiver.token(&attack.name);
        let payload = format!("{token}\n");
        match attack.proto {
            Proto::Udp => self.udp(&attack.src, &attack.dst, attack.dport, &payload),
            Proto::Tcp => {
                self.tcp(&attack.src, &attack.dst, attack.dport, &payload);
            }
        }
        receiver.wait_for(&token, DELIVERY_WAIT)
    }
}

/// One thing the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The receiver socket (`udp:[::]:9002`).
    pub socket: String,
    /// The peer address the application saw.
    pub peer: String,
    /// What arrived.
    pub data: String,
}

/// The victim-side listener: `tests/real/receiver.py` with real sockets, logging every datagram
/// and connection with the peer address the application saw.
pub struct Receiver {
    _child: Spawned,
    events: Arc<Mutex<Vec<Received>>>,
    tag: String,
}

static TOKEN: AtomicU32 = AtomicU32::new(0);

impl Receiver {
    /// Starts a receiver with `sockets` (`tcp:127.0.0.1:7001`, `udp:[::]:9002`, `udp6only:[::]:7008`)
    /// inside `ns`.
    pub fn in_namespace(ns: &Namespace, sockets: &[&str]) -> Receiver {
        let script = script("receiver.py");
        let mut argv = vec![SYSTEM_PYTHON, "-u", script.to_str().unwrap_or_default()];
        argv.extend_from_slice(sockets);
        Receiver::start(ns.command(&argv))
    }

    /// Starts a receiver in the network namespace of process `pid` (a container's), through
    /// `nsenter`: the container's own network stack, the host's Python.
    pub fn in_netns_of(pid: u32, sockets: &[&str]) -> Receiver {
        let script = script("receiver.py");
        let target = pid.to_string();
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &target,
            "-n",
            SYSTEM_PYTHON,
            "-u",
            script.to_str().unwrap_or_default(),
        ]);
        cmd.args(sockets);
        Receiver::start(cmd)
    }

    /// Starts `cmd` (a `receiver.py` invocation) and waits until every socket is bound.
    pub fn start(mut cmd: Command) -> Receiver {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start receiver.py");
        let lines = json_lines(child.stdout.take().expect("receiver stdout"));
        let child = Spawned(child);
        let ready = lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("receiver.py did not bind its sockets ({cmd:?})"));
        assert_eq!(ready["ready"], true, "receiver.py: {ready}");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            while let Ok(v) = lines.recv() {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let r = Received {
                    socket: s("socket"),
                    peer: s("peer"),
                    data: s("data"),
                };
                if let Ok(mut e) = sink.lock() {
                    e.push(r);
                }
            }
        });
        Receiver {
            _child: child,
            events,
            tag: format!("{}", std::process::id()),
        }
    }

    /// A token unique to this run and attack.
    pub fn token(&self, name: &str) -> String {
        let n = TOKEN.fetch_add(1, Ordering::Relaxed);
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        format!("lwtruth-{}-{n}-{name}", self.tag)
    }

    /// Waits up to `wait` for something carrying `token`.
    pub fn wait_for(&self, token: &str, wait: Duration) -> Truth {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(r) = self
                .events
                .lock()
                .ok()
                .and_then(|e| e.iter().find(|r| r.data.contains(token)).cloned())
            {
                return Truth::Delivered {
                    peer: r.peer,
                    socket: r.socket,
                };
            }
            if Instant::now() >= deadline {
                return Truth::Dropped;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Output of one loopwarden run.
pub struct Run {
    /// The argv after `loopwarden`.
    pub args: Vec<String>,
    /// Exit code.
    pub code: Option<i32>,
    /// Parsed stdout (`Value::Null` when it is not JSON).
    pub json: Value,
    /// Stderr.
    pub stderr: String,
    /// Wall-clock time.
    pub took: Duration,
}

impl Run {
    /// Exit 0 or 1 (findings) and a JSON document: the run worked.
    pub fn worked(&self) -> bool {
        matches!(self.code, Some(0) | Some(1)) && !self.json.is_null()
    }

    /// One line saying how the run ended, for failure messages.
    pub fn summary(&self) -> String {
        let stderr: String = self.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        let stderr: String = stderr.chars().take(240).collect();
        format!(
            "`loopwarden {}` exit {:?} after {:.1}s{}",
            self.args.join(" "),
            self.code,
            self.took.as_secs_f64(),
            if stderr.is_empty() {
                String::new()
            } else {
                format!(": {stderr}")
            }
        )
    }
}

/// Runs the built binary with `args` inside `ns` and parses its JSON output.
pub fn loopwarden_in(ns: &Namespace, args: &[&str]) -> Run {
    let mut argv = vec![loopwarden()];
    argv.extend_from_slice(args);
    let start = Instant::now();
    let out = ns
        .command(&argv)
        .stdin(Stdio::null())
        .output()
        .expect("run loopwarden in namespace");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: out.status.code(),
        json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// The three runs every truth test compares: `audit --json`, `audit --prove --json`,
/// `prove --json`.
pub struct Runs {
    /// `audit --json`.
    pub audit: Run,
    /// `audit --prove --json`.
    pub audit_prove: Run,
    /// `prove --json`.
    pub prove: Run,
}

impl Runs {
    /// Runs all three inside `ns`. With `LOOPWARDEN_TRUTH_DUMP=DIR` set, their outputs are also
    /// written to `DIR/<namespace>-<run>.json` for reading after a failure.
    pub fn collect(ns: &Namespace) -> Runs {
        let runs = Runs {
            audit: loopwarden_in(ns, &["audit", "--json"]),
            audit_prove: loopwarden_in(ns, &["audit", "--prove", "--json"]),
            prove: loopwarden_in(ns, &["prove", "--json"]),
        };
        if let Some(dir) = std::env::var_os("LOOPWARDEN_TRUTH_DUMP") {
            let dir = PathBuf::from(dir);
            for (name, run) in [
                ("audit", &runs.audit),
                ("audit-prove", &runs.audit_prove),
                ("prove", &runs.prove),
            ] {
                let file = dir.join(format!("{}-{name}.json", ns.name()));
                let text = serde_json::to_string_pretty(&run.json).unwrap_or_default();
                if let Err(e) = std::fs::write(&file, format!("{text}\n{}", run.stderr)) {
                    eprintln!("cannot write {}: {e}", file.display());
                }
            }
        }
        runs
    }

    /// The two audit reports with their names, for checks that must hold in both.
    pub fn reports(&self) -> [(&'static str, &Run); 2] {
        [("audit", &self.audit), ("audit --prove", &self.audit_prove)]
    }
}

/// A finding's verdict, as loopwarden gave it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `open`, `blocked`, `unknown`.
    pub status: String,
    /// `inspected`, `probed`, `proven`.
    pub confidence: String,
    /// The service the finding is about (null: host-wide).
    pub service: Option<String>,
    /// The title.
    pub title: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} · {}", self.status, self.confidence)
    }
}

/// The findings of `check` about `service`: those whose service id is `service`, or (for NAT
/// findings whose published address has no listener) whose title or evidence names it.
pub fn verdicts(report: &Value, check: &str, service: Option<&str>) -> Vec<Verdict> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["check"] == check)
        .filter(|f| match service {
            None => f["service"].is_null(),
            Some(s) => {
                f["service"] == s
                    || (f["service"].is_null() && {
                        let port = s.rsplit(':').next().unwrap_or_default();
                        mentions_port(f["title"].as_str().unwrap_or_default(), port)
                            || mentions_port(&f["evidence"].to_string(), port)
                    })
            }
        })
        .map(|f| Verdict {
            status: f["status"].as_str().unwrap_or_default().to_string(),
            confidence: f["confidence"].as_str().unwrap_or_default().to_string(),
            service: f["service"].as_str().map(str::to_string),
            title: f["title"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Whether `text` names `port` as a port (`:8080` or `port 8080`, not followed by a digit).
fn mentions_port(text: &str, port: &str) -> bool {
    [format!(":{port}"), format!("port {port}"), format!("dport {port}")]
        .iter()
        .any(|needle| {
            text.match_indices(needle.as_str())
                .any(|(i, m)| !text[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
}

/// Runs `fixtures/firewall/scenarios/NAME/setup.sh` inside `ns`, as `fixtures/firewall/capture.sh`
/// does, so a truth test and its offline fixture share one scenario.
pub fn run_scenario(ns: &Namespace, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/firewall/scenarios")
        .join(name);
    let setup = dir.join("setup.sh");
    let out = ns
        .command(&["bash", "-euo", "pipefail", setup.to_str().unwrap_or_default()])
        .env("LW_SCENARIO_DIR", &dir)
        .env("LW_NETNS", ns.name())
        .stdin(Stdio::null())
        .output()
        .expect("run scenario setup.sh");
    assert!(
        out.status.success(),
        "scenario {name} failed in {}: {}",
        ns.name(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace attached to `bridge` in `host` (a pod, a container): a veth whose host end
/// (`veth` + 8 hex digits, as CNI plugins name it) joins the bridge, `eth0` inside with `ip/24`
/// and a default route through `gateway`.
pub fn attach_to_bridge(host: &Namespace, bridge: &str, tag: &str, ip: &str, gateway: &str) -> TestNamespace {
    let ns = namespace(tag);
    let n = SPORT.fetch_add(1, Ordering::Relaxed);
    let host_end = format!("veth{:04x}{:04x}", std::process::id() & 0xffff, n & 0xffff);
    let peer = ns.name().to_string();
    host.exec(&[
        "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &peer,
    ])
    .expect("pod veth");
    host.exec(&["ip", "link", "set", &host_end, "master", bridge, "up"])
        .expect("veth to bridge");
    ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])
        .expect("pod addr");
    ns.exec(&["ip", "link", "set", "eth0", "up"]).expect("pod eth0 up");
    ns.exec(&["ip", "route", "add", "default", "via", gateway])
        .expect("pod route");
    ns
}

/// What the truth says a finding must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A finding with status `open` (any confidence).
    Open,
    /// A finding with status `open` and confidence `proven`.
    OpenProven,
    /// No finding with status `open` or `unknown`: absent or `blocked`.
    NotOpen,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expect::Open => "open",
            Expect::OpenProven => "open · proven",
            Expect::NotOpen => "blocked or absent",
        })
    }
}

fn satisfies(found: &[Verdict], expect: Expect) -> bool {
    match expect {
        Expect::Open => found.iter().any(|v| v.status == "open"),
        Expect::OpenProven => found.iter().any(|v| v.status == "open" && v.confidence == "proven"),
        Expect::NotOpen => found.iter().all(|v| v.status == "blocked"),
    }
}

fn said(found: &[Verdict]) -> String {
    if found.is_empty() {
        return "no finding".into();
    }
    found.iter().map(ToString::to_string).collect::<Vec<_>>().join(" + ")
}

/// One comparison: a case, what the attack showed, what loopwarden said, whether they agree.
#[derive(Debug, Clone)]
pub struct Row {
    /// Issue 8 item and short name of the case.
    pub case: String,
    /// The truth, in words.
    pub truth: String,
    /// What loopwarden said, in words.
    pub said: String,
    /// Whether they agree.
    pub agrees: bool,
}

/// Collects comparisons for one scenario and fails once, at the end, with every disagreement.
pub struct Ledger {
    scenario: String,
    started: Instant,
    rows: Vec<Row>,
}

impl Ledger {
    /// A ledger for `scenario`; its clock starts now.
    pub fn new(scenario: &str) -> Ledger {
        Ledger {
            scenario: scenario.into(),
            started: Instant::now(),
            rows: Vec::new(),
        }
    }

    /// Records a free-form comparison.
    pub fn record(&mut self, case: &str, truth: impl std::fmt::Display, said: impl std::fmt::Display, agrees: bool) {
        self.rows.push(Row {
            case: case.into(),
            truth: truth.to_string(),
            said: said.to_string(),
            agrees,
        });
    }

    /// Records a comparison about the output of `run` (named `run_name`): `said` describes what
    /// it showed; when the run itself failed, that failure is what loopwarden said.
    pub fn about_run(&mut self, case: &str, truth: &str, run_name: &str, run: &Run, said: String, agrees: bool) {
        if run.worked() {
            self.record(case, truth, format!("{run_name}: {said}"), agrees);
        } else {
            self.record(case, truth, format!("{run_name} did not run: {}", run.summary()), false);
        }
    }

    /// Records that the `run` worked (exit 0/1 with JSON); `case` names the issue item.
    pub fn run_worked(&mut self, case: &str, run: &Run) -> bool {
        let ok = run.worked();
        self.record(case, "runs to completion (exit 0/1, JSON)", run.summary(), ok);
        ok
    }

    /// Compares the findings of `check` about `service` in `run` with `expect`, derived from `truth`.
    #[allow(clippy::too_many_arguments)] // one comparison's whole statement, read at each call
    pub fn expect(
        &mut self,
        case: &str,
        truth: impl std::fmt::Display,
        run_name: &str,
        run: &Run,
        check: &str,
        service: Option<&str>,
        expect: Expect,
    ) {
        let found = verdicts(&run.json, check, service);
        let subject = service.unwrap_or("host-wide");
        let said = if run.worked() {
            format!("{run_name}: {check} {subject}: {}", said(&found))
        } else {
            format!("{run_name} did not run: {}", run.summary())
        };
        let agrees = run.worked() && satisfies(&found, expect);
        self.record(case, format!("{truth} ⇒ {expect}"), said, agrees);
    }

    /// Compares the lab's rows matching `pred` in `run` (`prove --json`) with the truth: when the
    /// attack was delivered, some row must be delivered; when it was dropped, none may be.
    pub fn lab(&mut self, case: &str, truth: &str, run: &Run, delivered: bool, pred: impl Fn(&Value) -> bool + Copy) {
        let said = if run.worked() {
            format!("prove: {}", lab_outcome(&run.json, pred))
        } else {
            format!("prove did not run: {}", run.summary())
        };
        let agrees = run.worked() && lab_delivered(&run.json, pred) == delivered;
        let truth = format!(
            "{truth} ⇒ {}",
            if delivered {
                "a lab row delivered"
            } else {
                "no lab row delivered"
            }
        );
        self.record(case, truth, said, agrees);
    }

    /// Records that `run_name` showed none of `found` (joined with `sep` when it did).
    fn none_of(&mut self, case: &str, truth: &str, run_name: &str, found: &[String], sep: &str) {
        let said = if found.is_empty() {
            "none".to_string()
        } else {
            found.join(sep)
        };
        self.record(case, truth, format!("{run_name}: {said}"), found.is_empty());
    }

    /// The generic output rules of issue 8 item 9, over every finding of `run`: a `blocked`
    /// finding's title does not claim reachability; no `unknown · proven` contradictions; no
    /// bridge member port (`veth…`) named as an ingress interface.
    pub fn output_rules(&mut self, run_name: &str, run: &Run) {
        if !run.worked() {
            return;
        }
        let findings = run.json["findings"].as_array().cloned().unwrap_or_default();
        let reach = ["can reach", "reaches ", "answers a LAN", "publishes loopback"];
        let claims: Vec<String> = findings
            .iter()
            .filter(|f| f["status"] == "blocked")
            .filter_map(|f| f["title"].as_str())
            .filter(|t| !t.starts_with("refuted in the lab:") && reach.iter().any(|p| t.contains(p)))
            .map(str::to_string)
            .collect();
        self.none_of(
            "9 blocked titles",
            "a blocked finding does not claim reachability",
            run_name,
            &claims,
            " | ",
        );
        let refuted: Vec<String> = findings
            .iter()
            .filter(|f| f["status"] != "blocked")
            .filter(|f| f["title"].as_str().is_some_and(|t| t.starts_with("refuted in the lab")))
            .map(|f| format!("{} {} is {}", f["check"], f["service"], f["status"]))
            .collect();
        self.none_of(
            "9 refuted ⇒ blocked",
            "\"refuted in the lab\" only on blocked findings",
            run_name,
            &refuted,
            ", ",
        );
        let contradictions: Vec<String> = findings
            .iter()
            .filter(|f| f["status"] == "unknown" && f["confidence"] == "proven")
            .map(|f| format!("{} {}", f["check"], f["service"]))
            .collect();
        self.none_of(
            "9 unknown·proven",
            "no finding is unknown · proven",
            run_name,
            &contradictions,
            ", ",
        );
        let lines: Vec<String> = findings
            .iter()
            .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e.as_str().map(str::to_string))
            .filter(|e| !veth_ingress(e).is_empty())
            .collect();
        let mut ports: Vec<String> = lines.iter().flat_map(|l| veth_ingress(l)).collect();
        ports.sort();
        ports.dedup();
        let said = match lines.first() {
            None => "none".to_string(),
            Some(example) => format!(
                "{} evidence lines name {} as ingress, e.g. \"{}\"",
                lines.len(),
                ports.join(", "),
                example.chars().take(160).collect::<String>()
            ),
        };
        self.record(
            "9 veth ingress",
            "bridge member ports are not ingress interfaces",
            format!("{run_name}: {said}"),
            lines.is_empty(),
        );
    }

    /// Prints the table (always) and panics listing every disagreement.
    pub fn finish(self) {
        let took = self.started.elapsed();
        let mut table = format!(
            "\n== truth: {} ({} comparisons, {:.1}s) ==\n",
            self.scenario,
            self.rows.len(),
            took.as_secs_f64()
        );
        for r in &self.rows {
            table.push_str(&format!(
                "{} {:<22} truth: {:<58} loopwarden: {}\n",
                if r.agrees { "ok  " } else { "FAIL" },
                r.case,
                r.truth,
                r.said
            ));
        }
        eprintln!("{table}");
        let failures: Vec<&Row> = self.rows.iter().filter(|r| !r.agrees).collect();
        assert!(
            failures.is_empty(),
            "{}: loopwarden disagrees with the real attacks in {} of {} comparisons:\n{}",
            self.scenario,
            failures.len(),
            self.rows.len(),
            failures
                .iter()
                .map(|r| format!(
                    "  [{}] the attack showed: {}; loopwarden said: {}",
                    r.case, r.truth, r.said
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Asserts a truth the scenario itself depends on: if reality is not what the scenario is
    /// built to show, the scenario is wrong and the test says so before comparing anything.
    pub fn establish(&mut self, attack: &Attack, truth: &Truth, expected: TruthIs) {
        let ok = match expected {
            TruthIs::Dropped => !truth.delivered(),
            TruthIs::Delivered => truth.delivered() && !truth.loopback_peer(),
            TruthIs::DeliveredLoopbackPeer => truth.loopback_peer(),
        };
        assert!(
            ok,
            "{}: the scenario is not what it should be: {} was expected {expected:?} but was {truth}",
            self.scenario,
            attack.describe()
        );
        eprintln!(
            "truth {}: {} — {} ({})",
            self.scenario,
            attack.name,
            attack.describe(),
            truth
        );
    }
}

/// What a scenario is built to show for one attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruthIs {
    /// Nothing arrived.
    Dropped,
    /// Arrived, with a non-loopback peer.
    Delivered,
    /// Arrived, and the application saw a loopback peer.
    DeliveredLoopbackPeer,
}

/// The `veth…` ports an evidence line names as interfaces traffic comes in on (`on eth0, vethX:`);
/// lab lines are left out (the lab's own veths are its topology, not the host's).
fn veth_ingress(line: &str) -> Vec<String> {
    if line.starts_with("lab: ") {
        return Vec::new();
    }
    line.split(|c: char| c.is_whitespace() || c == ',' || c == ':' || c == '(' || c == ')')
        .filter(|w| w.starts_with("veth") && w.len() > 4)
        .map(str::to_string)
        .collect()
}

/// A lab-row predicate: protocol `proto` (`tcp`/`udp`), destination `dst` (`127.0.0.1:8080`,
/// `[2001:db8::1]:22`), and, when given, the victim interface.
pub fn lab_row<'a>(
    proto: &'static str,
    dst: &'a str,
    interface: Option<&'static str>,
) -> impl Fn(&Value) -> bool + Copy + 'a {
    move |r: &Value| {
        r["protocol"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(proto))
            && r["destination"].as_str() == Some(dst)
            && interface.is_none_or(|i| r["interface"] == i)
    }
}

/// Rows of `prove --json` (or the lab part of `audit --prove`) matching `pred`.
pub fn lab_rows<'a>(proof: &'a Value, pred: impl Fn(&Value) -> bool + 'a) -> Vec<&'a Value> {
    proof["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["control"] != true)
        .filter(move |r| pred(r))
        .collect()
}

/// The lab's outcome for the first row matching `pred`, or "not attacked".
pub fn lab_outcome(proof: &Value, pred: impl Fn(&Value) -> bool) -> String {
    let rows = lab_rows(proof, pred);
    if rows.is_empty() {
        return "not attacked".into();
    }
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} -> {} on {}: {}",
                r["attack"].as_str().unwrap_or(""),
                r["protocol"].as_str().unwrap_or(""),
                r["source"].as_str().unwrap_or(""),
                r["destination"].as_str().unwrap_or(""),
                r["interface"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Whether any row matching `pred` was delivered.
pub fn lab_delivered(proof: &Value, pred: impl Fn(&Value) -> bool) -> bool {
    lab_rows(proof, pred)
        .iter()
        .any(|r| r["outcome"].as_str().is_some_and(|o| o.starts_with("delivered")))
}

/// Starts the attacker on `iface` in `ns` (a VM behind a bridge, a second LAN), aiming at
/// `dst_mac` and answering ARP / neighbour solicitations for every address in `claims`. The
/// first IPv4 and the first IPv6 claim become the attacker's own addresses.
pub fn attacker_on(ns: &Namespace, iface: &str, dst_mac: &str, claims: &[&str]) -> Attacker {
    let script = script("attacker.py");
    let mut argv = vec![
        SYSTEM_PYTHON,
        "-u",
        script.to_str().unwrap_or_default(),
        "--iface",
        iface,
    ];
    for c in claims {
        argv.extend(["--claim", c]);
    }
    let v4 = claims.iter().find(|c| !c.contains(':')).copied().unwrap_or_default();
    let v6 = claims.iter().find(|c| c.contains(':')).copied().unwrap_or_default();
    Attacker::start(ns.command(&argv), dst_mac, v4, v6)
}

impl Lan {
    /// The attacker on the neighbour's `peer0`, answering ARP / neighbour solicitations for
    /// `extra` as well as for [`CLAIM_V4`] and [`CLAIM_V6`]: a neighbour that impersonates an
    /// address the victim's firewall trusts.
    pub fn attacker_claiming(&self, extra: &[&str]) -> Attacker {
        let mut claims = vec![CLAIM_V4, CLAIM_V6];
        claims.extend_from_slice(extra);
        attacker_on(&self.neighbour, "peer0", &self.victim_mac, &claims)
    }
}

/// The member ports of `bridge` in `ns` (`ip -j link show master BRIDGE`).
pub fn bridge_ports(ns: &Namespace, bridge: &str) -> Vec<String> {
    let out = ns
        .exec(&["ip", "-j", "link", "show", "master", bridge])
        .expect("ip link show master");
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

/// Every finding of `check` in `report`, whatever its service.
pub fn all_verdicts(report: &Value, check: &str) -> Vec<Verdict> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["check"] == check)
        .map(|f| Verdict {
            status: f["status"].as_str().unwrap_or_default().to_string(),
            confidence: f["confidence"].as_str().unwrap_or_default().to_string(),
            service: f["service"].as_str().map(str::to_string),
            title: f["title"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

fn said_with_services(found: &[Verdict]) -> String {
    if found.is_empty() {
        return "no finding".into();
    }
    found
        .iter()
        .map(|v| format!("{} {v}", v.service.as_deref().unwrap_or("host-wide")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The attacks (`attack` field) of the lab rows in `proof` whose name starts with `prefix`.
pub fn lab_attacks(proof: &Value, prefix: &str) -> Vec<String> {
    lab_rows(proof, |r| r["attack"].as_str().is_some_and(|a| a.starts_with(prefix)))
        .iter()
        .map(|r| {
            format!(
                "{} {} {} -> {} on {}: {}",
                r["attack"].as_str().unwrap_or(""),
                r["protocol"].as_str().unwrap_or(""),
                r["source"].as_str().unwrap_or(""),
                r["destination"].as_str().unwrap_or(""),
                r["interface"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// A finding's severity, status and confidence.
fn graded(f: &Value) -> String {
    format!(
        "{} · {} · {}",
        f["status"].as_str().unwrap_or_default(),
        f["confidence"].as_str().unwrap_or_default(),
        f["severity"].as_str().unwrap_or_default()
    )
}

impl Ledger {
    /// No finding of `check` at all, about any service and with any status: the truth shows the
    /// condition the check names does not exist on this host (a NAT finding without NAT).
    pub fn expect_absent(&mut self, case: &str, truth: &str, run_name: &str, run: &Run, check: &str) {
        let found = all_verdicts(&run.json, check);
        let said = format!("{check}: {}", said_with_services(&found));
        self.about_run(
            case,
            &format!("{truth} ⇒ no {check} finding"),
            run_name,
            run,
            said,
            found.is_empty(),
        );
    }

    /// Every finding of `check`, about any service, is `blocked` (or there is none): the truth
    /// shows no path, so neither `open` nor `unknown` may be said.
    pub fn expect_nowhere_open(&mut self, case: &str, truth: &str, run_name: &str, run: &Run, check: &str) {
        let found = all_verdicts(&run.json, check);
        let agrees = found.iter().all(|v| v.status == "blocked");
        let said = format!("{check}: {}", said_with_services(&found));
        self.about_run(
            case,
            &format!("{truth} ⇒ {check} blocked or absent for every service"),
            run_name,
            run,
            said,
            agrees,
        );
    }

    /// The lab upgraded (check, service) to `open · proven` in `run` and gave it the severity the
    /// static audit `baseline` gives the same finding when it says `open` itself: the attack
    /// settles whether it is open, not how bad an open one is.
    #[allow(clippy::too_many_arguments)] // one comparison's whole statement, read at each call
    pub fn severity_as_static(
        &mut self,
        case: &str,
        baseline_name: &str,
        baseline: &Run,
        run_name: &str,
        run: &Run,
        check: &str,
        service: Option<&str>,
    ) {
        let pick = |report: &Value, status: &str, confidence: Option<&str>| -> Option<Value> {
            report["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| {
                    f["check"] == check
                        && f["status"] == status
                        && confidence.is_none_or(|c| f["confidence"] == c)
                        && match service {
                            None => f["service"].is_null(),
                            Some(s) => f["service"] == s,
                        }
                })
                .cloned()
        };
        let subject = service.unwrap_or("host-wide");
        let Some(open) = pick(&baseline.json, "open", None) else {
            self.about_run(
                case,
                &format!("{check} {subject} open in the static audit ({baseline_name}), as the scenario is built"),
                baseline_name,
                baseline,
                format!("{check} {subject}: {}", said(&verdicts(&baseline.json, check, service))),
                false,
            );
            return;
        };
        let wanted = open["severity"].as_str().unwrap_or_default().to_string();
        let truth = format!("{baseline_name} rates an open {check} {subject} {wanted} ⇒ open · proven · {wanted}");
        let (said, agrees) = match pick(&run.json, "open", Some("proven")) {
            Some(proven) => (
                format!("{check} {subject}: {}", graded(&proven)),
                proven["severity"] == wanted.as_str(),
            ),
            None => {
                let all: Vec<String> = run.json["findings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| f["check"] == check && f["service"].as_str() == service)
                    .map(graded)
                    .collect();
                (
                    format!(
                        "{check} {subject}: not open · proven ({})",
                        if all.is_empty() {
                            "no finding".into()
                        } else {
                            all.join(" + ")
                        }
                    ),
                    false,
                )
            }
        };
        self.about_run(case, &truth, run_name, run, said, agrees);
    }

    /// `ports` (bridge member ports on the host) are not ingress interfaces of their own: traffic
    /// through them enters the host's stack on their bridge. Checked in the lab's interface list,
    /// in its rows, and in every evidence line of `run`'s findings.
    pub fn member_ports_not_ingress(&mut self, case: &str, run_name: &str, run: &Run, ports: &[String]) {
        assert!(
            !ports.is_empty(),
            "{case}: the scenario should have bridge member ports to check"
        );
        let names = |text: &str| -> Vec<String> {
            text.split(|c: char| c.is_whitespace() || ",:()[]\"'".contains(c))
                .filter(|w| ports.iter().any(|p| p == w))
                .map(str::to_string)
                .collect()
        };
        let mut wrong: Vec<String> = Vec::new();
        for i in run.json["interfaces"].as_array().into_iter().flatten() {
            let name = i
                .as_str()
                .map(str::to_string)
                .or_else(|| i["name"].as_str().map(str::to_string));
            if let Some(n) = name.filter(|n| ports.contains(n)) {
                wrong.push(format!("lab interface list has {n}"));
            }
        }
        let rows: Vec<String> = run.json["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["interface"].as_str())
            .filter(|i| ports.iter().any(|p| p == i))
            .map(|i| format!("lab row on {i}"))
            .collect();
        if let Some(first) = rows.first() {
            wrong.push(format!("{} ({} rows)", first, rows.len()));
        }
        let lines: Vec<String> = run.json["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e.as_str().map(str::to_string))
            .filter(|e| !names(e).is_empty())
            .collect();
        if let Some(example) = lines.first() {
            wrong.push(format!(
                "{} evidence lines, e.g. \"{}\"",
                lines.len(),
                example.chars().take(160).collect::<String>()
            ));
        }
        let truth = format!(
            "{} enslaved to a bridge ⇒ never an ingress interface of its own",
            ports.join(", ")
        );
        let said = if wrong.is_empty() {
            "not named".to_string()
        } else {
            wrong.join("; ")
        };
        let agrees = wrong.is_empty();
        self.about_run(case, &truth, run_name, run, said, agrees);
    }
}
