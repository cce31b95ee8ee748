//! Relays end to end: real tinyproxy, microsocks, socat, nginx and OpenSSH sshd in a namespace made
//! for the test, each once open and once configured safely. `audit --probe` must flag exactly the
//! open ones — proxies proven through a canary, forwarders and configurations read from the host.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("utf-8 path").to_string()
}

/// Waits until every port listens inside `ns`.
fn wait_listening(ns: &Namespace, ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = ns.exec(&["ss", "-Hltn"]).unwrap_or_default();
        let missing: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| !table.lines().any(|l| l.contains(&format!(":{p} "))))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not listening after 10 s: {missing:?}\n{table}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn evidence(report: &serde_json::Value, check: &str, service: &str) -> String {
    findings(report, check, Some(service))
        .iter()
        .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

const UPSTREAMS: &str = r#"
import http.server, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"loopback-only service"; self.send_response(200); self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
for port in range(7001, 7010):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H); threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

#[test]
fn open_relays_are_flagged_and_safe_ones_are_not() {
    if !require_root("open_relays_are_flagged_and_safe_ones_are_not") {
        return;
    }
    let tmp = TempDir::new("probe-relay");
    let dir = tmp.path().to_path_buf();
    let d = dir.to_str().expect("utf-8 path").to_string();
    let ns = namespace("proberelay");
    // A non-loopback address, so that proxies are asked as a client from the network would ask.
    ns.exec(&["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        .expect("veth");
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "v0"])
        .expect("address");
    ns.exec(&["ip", "link", "set", "v0", "up"]).expect("v0 up");
    ns.exec(&["ip", "link", "set", "v1", "up"]).expect("v1 up");
    let _upstreams = python_in(&ns, None, UPSTREAMS);

    let tinyproxy = |name: &str, port: u16, extra: &str| {
        write(&dir, name, &format!(
            "Port {port}\nListen 0.0.0.0\nTimeout 10\nMaxClients 20\nPidFile \"{d}/{name}.pid\"\nLogFile \"{d}/{name}.log\"\n{extra}"
        ))
    };
    // Safe means an allowlist: a denylist of loopback spellings (^127\., ^localhost$, ::1) is
    // bypassed by the decimal 2130706433, which the probe tries.
    let filter = write(&dir, "filter", "^example\\.com$\n");
    let open_tp = tinyproxy("tinyproxy-open.conf", 8888, "");
    let safe_tp = tinyproxy(
        "tinyproxy-safe.conf",
        8889,
        &format!("Filter \"{filter}\"\nFilterType ere\nFilterDefaultDeny Yes\n"),
    );
    let denylist = write(&dir, "denylist", "^127\\.\n^localhost$\n^\\[?::1\n");
    let denylist_tp = tinyproxy(
        "tinyproxy-denylist.conf",
        8890,
        &format!("Filter \"{denylist}\"\nFilterType ere\n"),
    );
    let nginx_conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/nginx.err;\nevents {{}}\nhttp {{\n    access_log off;\n    \
         client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n    \
         uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n    \
         server {{\n        listen 8080;\n        location / {{\n            proxy_pass http://127.0.0.1:7001;\n        }}\n    }}\n    \
         server {{\n        listen 8081;\n        location / {{\n            allow 127.0.0.1;\n            deny all;\n            \
         proxy_pass http://127.0.0.1:7002;\n        }}\n    }}\n}}\n"
    );
    let nginx_path = write(&dir, "nginx.conf", &nginx_conf);
    let proxy_pass_line = nginx_conf
        .lines()
        .position(|l| l.contains("proxy_pass http://127.0.0.1:7001"))
        .expect("line")
        + 1;
    // HAProxy, Caddy and Apache: each with an open route (to 7003, 7005, 7007) and a safe one
    // (listening on loopback, or `Require local`) to 7004, 7006, 7008.
    let haproxy_conf = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
        frontend open\n    bind :8082\n    default_backend b_open\nfrontend local\n    bind 127.0.0.1:8092\n    default_backend b_local\n\
        backend b_open\n    server s1 127.0.0.1:7003\nbackend b_local\n    server s2 127.0.0.1:7004\n";
    let haproxy_path = write(&dir, "haproxy.cfg", haproxy_conf);
    let haproxy_line = haproxy_conf
        .lines()
        .position(|l| l.contains("127.0.0.1:7003"))
        .expect("line")
        + 1;
    let caddyfile = "{\n    admin off\n    auto_https off\n}\n:8085 {\n    reverse_proxy 127.0.0.1:7005\n}\n\
        http://127.0.0.1:8095 {\n    bind 127.0.0.1\n    reverse_proxy 127.0.0.1:7006\n}\n";
    let caddy_path = write(&dir, "Caddyfile", caddyfile);
    let modules = "/usr/lib/apache2/modules";
    let apache_main = format!(
        "ServerRoot {d}\nPidFile {d}/apache.pid\nErrorLog {d}/apache.err\nMutex file:{d} default\n\
         LoadModule mpm_event_module {modules}/mod_mpm_event.so\nLoadModule authz_core_module {modules}/mod_authz_core.so\n\
         LoadModule authz_host_module {modules}/mod_authz_host.so\nLoadModule proxy_module {modules}/mod_proxy.so\n\
         LoadModule proxy_http_module {modules}/mod_proxy_http.so\nUser nobody\nGroup nogroup\nServerName localhost\n\
         Listen 8087\nListen 8088\nInclude {d}/apache-sites.conf\n"
    );
    let apache_sites = "<VirtualHost *:8087>\n    ProxyPass \"/\" \"http://127.0.0.1:7007/\"\n</VirtualHost>\n\
        <VirtualHost *:8088>\n    <Location />\n        Require local\n        ProxyPass http://127.0.0.1:7008/\n    </Location>\n</VirtualHost>\n";
    let apache_path = write(&dir, "apache2.conf", &apache_main);
    let sites_path = write(&dir, "apache-sites.conf", apache_sites);

    let key = format!("{d}/hostkey");
    must(std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &key]));
    std::fs::create_dir_all("/run/sshd").expect("sshd privilege separation directory");
    let sshd = |name: &str, port: u16, extra: &str| {
        write(
            &dir,
            name,
            &format!("Port {port}\nListenAddress 0.0.0.0\nHostKey {key}\nPidFile {d}/{name}.pid\nUsePAM no\n{extra}"),
        )
    };
    let open_sshd = sshd("sshd-open.conf", 2222, "");
    let safe_sshd = sshd("sshd-safe.conf", 2223, "DisableForwarding yes\n");
    // Safe globally, open for root through a Match block: only `sshd -T -C user=root,…` sees it.
    let match_sshd = sshd(
        "sshd-match.conf",
        2224,
        "AllowTcpForwarding no\nMatch User root\n    AllowTcpForwarding yes\n",
    );

    let _daemons = [
        spawn_in(&ns, &["tinyproxy", "-d", "-c", &open_tp]),
        spawn_in(&ns, &["tinyproxy", "-d", "-c", &safe_tp]),
        spawn_in(&ns, &["tinyproxy", "-d", "-c", &denylist_tp]),
        spawn_in(&ns, &["microsocks", "-i", "0.0.0.0", "-p", "1080"]),
        spawn_in(
            &ns,
            &[
                "microsocks",
                "-i",
                "0.0.0.0",
                "-p",
                "1081",
                "-u",
                "lw",
                "-P",
                "not-offered",
            ],
        ),
        spawn_in(&ns, &["socat", "TCP-LISTEN:9090,fork,reuseaddr", "TCP:127.0.0.1:7001"]),
        spawn_in(
            &ns,
            &[
                "socat",
                "TCP-LISTEN:9091,fork,reuseaddr,bind=127.0.0.1",
                "TCP:127.0.0.1:7002",
            ],
        ),
        spawn_in(&ns, &["nginx", "-c", &nginx_path, "-p", &d, "-g", "daemon off;"]),
        spawn_in(
            &ns,
            &[
                "/usr/sbin/sshd",
                "-D",
                "-f",
                &open_sshd,
                "-E",
                &format!("{d}/sshd-open.log"),
            ],
        ),
        spawn_in(
            &ns,
            &[
                "/usr/sbin/sshd",
                "-D",
                "-f",
                &safe_sshd,
                "-E",
                &format!("{d}/sshd-safe.log"),
            ],
        ),
        spawn_in(
            &ns,
            &[
                "/usr/sbin/sshd",
                "-D",
                "-f",
                &match_sshd,
                "-E",
                &format!("{d}/sshd-match.log"),
            ],
        ),
        spawn_in(
            &ns,
            &[
                "ncat",
                "-l",
                "-k",
                "0.0.0.0",
                "9092",
                "--sh-exec",
                "ncat 127.0.0.1 7009",
            ],
        ),
        spawn_in(
            &ns,
            &[
                "ncat",
                "-l",
                "-k",
                "127.0.0.1",
                "9093",
                "--sh-exec",
                "ncat 127.0.0.1 7002",
            ],
        ),
        spawn_in(&ns, &["haproxy", "-db", "-f", &haproxy_path]),
        spawn_in(&ns, &["apache2", "-f", &apache_path, "-DFOREGROUND"]),
        Spawned(
            ns.command(&["caddy", "run", "--config", &caddy_path, "--adapter", "caddyfile"])
                .env("HOME", &d)
                .env("XDG_DATA_HOME", &d)
                .env("XDG_CONFIG_HOME", &d)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn caddy"),
        ),
    ];
    wait_listening(
        &ns,
        &[
            8888, 8889, 8890, 1080, 1081, 9090, 9091, 8080, 8081, 2222, 2223, 2224, 8082, 8092, 8085, 8095, 8087, 8088,
        ],
    );

    let started = Instant::now();
    let report = audit_json(&ns, &["--probe", "--fail-on", "critical"]);
    let took = started.elapsed();

    // The denylist proxy refuses 127.0.0.1 and localhost but relays another spelling.
    assert_eq!(
        service_ids(&report, "relay.http-proxy"),
        vec!["tcp:0.0.0.0:8888", "tcp:0.0.0.0:8890"],
        "{report:#}"
    );
    let bypass = evidence(&report, "relay.http-proxy", "tcp:0.0.0.0:8890");
    assert!(
        ["2130706433", "127.0.0.2", "[::1]"].iter().any(|h| bypass.contains(h))
            && !bypass.contains("CONNECT 127.0.0.1:"),
        "{bypass}"
    );
    assert_eq!(
        service_ids(&report, "relay.socks-proxy"),
        vec!["tcp:0.0.0.0:1080"],
        "{report:#}"
    );
    for check in ["relay.http-proxy", "relay.socks-proxy"] {
        let f = &findings(&report, check, None)[0];
        assert_eq!(
            (f["status"].as_str(), f["confidence"].as_str(), f["severity"].as_str()),
            (Some("open"), Some("probed"), Some("critical"))
        );
        let ev = evidence(&report, check, f["service"].as_str().unwrap_or(""));
        assert!(
            ev.contains("canary's token") && ev.contains("probed at 192.0.2.1:"),
            "{ev}"
        );
        assert!(ev.contains("tcp:127.0.0.1:7001"), "{ev}");
    }

    assert_eq!(
        service_ids(&report, "relay.forwarder"),
        vec!["tcp:127.0.0.1:7001", "tcp:127.0.0.1:7009"],
        "{report:#}"
    );
    let ncat = evidence(&report, "relay.forwarder", "tcp:127.0.0.1:7009");
    assert!(
        ncat.contains("--sh-exec \"ncat 127.0.0.1 7009\"") && ncat.contains("tcp:0.0.0.0:9092"),
        "{ncat}"
    );
    let socat = evidence(&report, "relay.forwarder", "tcp:127.0.0.1:7001");
    assert!(
        socat.contains("socat TCP-LISTEN:9090,fork,reuseaddr TCP:127.0.0.1:7001") && socat.contains("tcp:0.0.0.0:9090"),
        "{socat}"
    );

    assert_eq!(
        service_ids(&report, "relay.reverse-proxy"),
        vec![
            "tcp:127.0.0.1:7001",
            "tcp:127.0.0.1:7003",
            "tcp:127.0.0.1:7005",
            "tcp:127.0.0.1:7007"
        ],
        "{report:#}"
    );
    let haproxy = evidence(&report, "relay.reverse-proxy", "tcp:127.0.0.1:7003");
    assert!(
        haproxy.contains(&format!("{haproxy_path}:{haproxy_line}: server s1 127.0.0.1:7003")),
        "{haproxy}"
    );
    let caddy = evidence(&report, "relay.reverse-proxy", "tcp:127.0.0.1:7005");
    assert!(
        caddy.contains(&format!("{caddy_path}:6: reverse_proxy 127.0.0.1:7005")) && caddy.contains(":8085"),
        "{caddy}"
    );
    let apache = evidence(&report, "relay.reverse-proxy", "tcp:127.0.0.1:7007");
    assert!(
        apache.contains(&format!("{sites_path}:2: ProxyPass")) && apache.contains("Listen 8087"),
        "{apache}"
    );
    let nginx = evidence(&report, "relay.reverse-proxy", "tcp:127.0.0.1:7001");
    assert!(
        nginx.contains(&format!(
            "{nginx_path}:{proxy_pass_line}: proxy_pass http://127.0.0.1:7001"
        )),
        "{nginx}"
    );
    assert!(nginx.contains("Host"), "{nginx}");

    assert_eq!(
        service_ids(&report, "relay.ssh-forwarding"),
        vec!["tcp:0.0.0.0:2222", "tcp:0.0.0.0:2224"],
        "{report:#}"
    );
    let matched = evidence(&report, "relay.ssh-forwarding", "tcp:0.0.0.0:2224");
    assert!(
        matched.contains("for connection user=root,") && !matched.contains("globally"),
        "{matched}"
    );
    let ssh = evidence(&report, "relay.ssh-forwarding", "tcp:0.0.0.0:2222");
    assert!(
        ssh.contains("allowtcpforwarding yes") && ssh.contains(&open_sshd),
        "{ssh}"
    );

    // Not a speed test (bench/ measures that): the probes' own timeouts must bound the run, so
    // a hang shows up here, whatever the machine's load.
    assert!(took < Duration::from_secs(60), "probing took {took:?}");
}
