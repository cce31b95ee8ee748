//! `audit --probe`, browser-borne checks, end to end: Python HTTP services with known behaviour in
//! a namespace made for the test, probed through the binary. Every service is there to be found,
//! or to show that its protection is recognised.

mod common;

use common::*;

/// Python services, one per port, each with one known behaviour. `@DIR@` is the test's directory
/// (POST log, TLS key and certificate).
const SERVICES: &str = r#"
import base64, hashlib, http.server, socket, ssl, threading
DIR = "@DIR@"
class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    strict = False
    def log_message(self, *a): pass
    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body))); self.send_header("Connection", "close")
        self.end_headers(); self.wfile.write(body); self.close_connection = True
    def host_ok(self):
        port = self.server.server_address[1]
        return not self.strict or self.headers.get("Host") in (f"127.0.0.1:{port}", f"localhost:{port}")
    def do_GET(self):
        if not self.host_ok(): return self.reply(421, b"misdirected")
        self.get()
    def get(self): self.reply(200, b"private data of port %d" % self.server.server_address[1])
    def do_POST(self):
        with open(DIR + "/posts", "a") as f: f.write("%d %s\n" % (self.server.server_address[1], self.headers.get("Content-Type")))
        self.reply(200, b"stored")
    def do_OPTIONS(self): self.reply(405)
class Open(Base): pass
class Strict(Base): strict = True
class Cors(Base):
    strict = True
    def get(self):
        o = self.headers.get("Origin", "")
        self.reply(200, b"{}", [("Access-Control-Allow-Origin", o), ("Access-Control-Allow-Credentials", "true")])
    def do_OPTIONS(self):
        o = self.headers.get("Origin", "")
        self.reply(204, b"", [("Access-Control-Allow-Origin", o), ("Access-Control-Allow-Methods", "GET, POST"),
                              ("Access-Control-Allow-Private-Network", "true")])
class WebSocket(Base):
    strict = True
    def get(self):
        if self.headers.get("Upgrade", "").lower() != "websocket": return self.reply(200, b"ws endpoint")
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101); self.send_header("Upgrade", "websocket"); self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept); self.end_headers(); self.close_connection = True
class Auth(Base):
    def get(self): self.reply(401, b"login", [("WWW-Authenticate", 'Basic realm="admin"')])
class Missing(Base):
    def get(self): self.reply(404, b"not found")
class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
def serve(handler, addr, port, tls=False):
    srv = (Server6 if ":" in addr else http.server.ThreadingHTTPServer)((addr, port), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(DIR + "/cert.pem", DIR + "/key.pem")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
serve(Open, "127.0.0.1", 7001); serve(Strict, "127.0.0.1", 7002); serve(Cors, "127.0.0.1", 7003)
serve(WebSocket, "127.0.0.1", 7004); serve(Open, "0.0.0.0", 7005); serve(Auth, "127.0.0.1", 7006)
serve(Missing, "127.0.0.1", 7007); serve(Open, "127.0.0.1", 7009, tls=True)
serve(Open, "::1", 7010); serve(Open, "::", 7011)
banner = socket.socket(); banner.bind(("127.0.0.1", 7008)); banner.listen()
def ssh_like():
    while True:
        c, _ = banner.accept(); c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"); c.close()
threading.Thread(target=ssh_like, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

/// Service ids with a finding of `check`, and their statuses.
fn flagged(report: &serde_json::Value, check: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = findings(report, check, None)
        .iter()
        .map(|f| {
            (
                f["service"].as_str().unwrap_or("").to_string(),
                f["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn open(ids: &[&str]) -> Vec<(String, String)> {
    ids.iter().map(|id| (id.to_string(), "open".to_string())).collect()
}

fn evidence(report: &serde_json::Value, check: &str, service: &str) -> String {
    let found = findings(report, check, Some(service));
    assert_eq!(found.len(), 1, "{check} on {service}: {report:#}");
    found[0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn browser_borne_checks_find_what_each_service_allows() {
    if !require_root("browser_borne_checks_find_what_each_service_allows") {
        return;
    }
    let tmp = TempDir::new("probe-web");
    let dir = tmp.path().to_path_buf();
    let d = dir.to_str().expect("utf-8 path");
    must(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-keyout",
                &format!("{d}/key.pem"),
                "-out",
                &format!("{d}/cert.pem"),
            ])
            .stderr(std::process::Stdio::null()),
    );
    let ns = namespace("probeweb");
    let _services = python_in(&ns, None, &SERVICES.replace("@DIR@", d));

    // First without the POST: nothing may be stored.
    let quiet = audit_json(&ns, &["--probe", "--no-post", "--fail-on", "critical"]);
    assert!(!dir.join("posts").exists(), "--no-post still sent a POST");
    assert!(!quiet.to_string().contains("simple POST"), "{quiet:#}");

    let out = run_loopwarden(
        &ns,
        &["audit", "--json", "--probe", "--verbose", "--fail-on", "critical"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("loopwarden probe: 127.0.0.1:7002 http GET / [Host: loopwarden-rebind.example:7002]"),
        "{log}"
    );
    assert!(log.contains("-> HTTP 421"), "{log}");

    let mut rebinding = open(&[
        "tcp:0.0.0.0:7005",
        "tcp:127.0.0.1:7001",
        "tcp:127.0.0.1:7006",
        "tcp:127.0.0.1:7009",
        "tcp:[::1]:7010",
        "tcp:[::]:7011",
    ]);
    rebinding.push(("tcp:127.0.0.1:7007".into(), "unknown".into()));
    rebinding.sort();
    assert_eq!(flagged(&report, "web.dns-rebinding"), rebinding, "{report:#}");
    assert_eq!(flagged(&report, "web.cors-permissive"), open(&["tcp:127.0.0.1:7003"]));
    assert_eq!(
        flagged(&report, "web.private-network-access"),
        open(&["tcp:127.0.0.1:7003"])
    );
    assert_eq!(flagged(&report, "web.websocket-origin"), open(&["tcp:127.0.0.1:7004"]));
    // A dual-stack [::] listener takes http://0.0.0.0:PORT too.
    assert_eq!(
        flagged(&report, "web.zero-address"),
        open(&["tcp:0.0.0.0:7005", "tcp:[::]:7011"])
    );
    assert!(evidence(&report, "web.dns-rebinding", "tcp:[::1]:7010").contains("http://[::1]:7010"));

    let plain = evidence(&report, "web.dns-rebinding", "tcp:127.0.0.1:7001");
    assert!(plain.contains("no authentication demanded"), "{plain}");
    assert!(plain.contains("simple POST") && plain.contains("accepted"), "{plain}");
    let auth = evidence(&report, "web.dns-rebinding", "tcp:127.0.0.1:7006");
    assert!(
        auth.contains("authentication demanded: 401") && auth.contains("Basic realm=\"admin\""),
        "{auth}"
    );
    assert!(evidence(&report, "web.dns-rebinding", "tcp:127.0.0.1:7009").contains("https://127.0.0.1:7009"));
    assert!(evidence(&report, "web.cors-permissive", "tcp:127.0.0.1:7003").contains("Access-Control-Allow-Credentials"));
    let severity = |check, service| findings(&report, check, Some(service))[0]["severity"].clone();
    assert_eq!(severity("web.dns-rebinding", "tcp:127.0.0.1:7001"), "high");
    assert_eq!(severity("web.dns-rebinding", "tcp:127.0.0.1:7006"), "low");
    assert_eq!(severity("web.dns-rebinding", "tcp:127.0.0.1:7007"), "info");

    let web: Vec<_> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"].as_str().is_some_and(|c| c.starts_with("web.")))
        .collect();
    assert!(
        web.iter()
            .all(|f| f["confidence"] == "probed" && f["attacker"] == "browser"),
        "{web:#?}"
    );
    assert!(
        !web.iter().any(|f| f["service"] == "tcp:127.0.0.1:7008"),
        "a non-HTTP service was judged"
    );

    let posts = std::fs::read_to_string(dir.join("posts")).expect("POST log");
    assert!(posts.lines().all(|l| l.ends_with("text/plain")), "{posts}");
    let ports: std::collections::BTreeSet<&str> = posts.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(
        ports.contains("7001") && !ports.contains("7002"),
        "POST only where a finding is open: {posts}"
    );
}
