//! The probe's DNS-rebinding verdicts against a real browser: headless Chromium in a namespace made
//! for the test, with `--host-resolver-rules` mapping a foreign name to 127.0.0.1 (what a rebinding
//! attack achieves with DNS). A page served under that name runs a script that reads the service's
//! data and writes the result into the DOM (`--dump-dom`). The browser must read the unprotected
//! service and not the protected one — exactly where the probe says `web.dns-rebinding` is open.
//!
//! The page is served by the service itself: after rebinding, the attacker's page and the service
//! share the origin `http://rebind.example:PORT`, which is what the browser checks.

mod common;

use common::*;
use std::path::Path;

const FOREIGN: &str = "rebind.example";

/// Two file servers on loopback with the same content: one without a Host check, one with an
/// exact allowlist. `@WWW@` is the directory they serve.
const SERVERS: &str = r#"
import functools, http.server, threading
class Files(http.server.SimpleHTTPRequestHandler):
    allow = None
    def log_message(self, *a): pass
    def do_GET(self):
        port = self.server.server_address[1]
        if self.allow and self.headers.get("Host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            body = b"misdirected request"
            self.send_response(421); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        super().do_GET()
class Strict(Files): allow = True
for port, handler in ((7101, Files), (7102, Strict)):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory="@WWW@"))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

const PAGE: &str = r#"<html><body><div id="out">script did not run</div><script>
var x = new XMLHttpRequest();
try { x.open("GET", "/secret.txt", false); x.send();
      document.getElementById("out").textContent = "status=" + x.status + " body=" + x.responseText; }
catch (e) { document.getElementById("out").textContent = "blocked " + e; }
</script></body></html>
"#;

/// A Chromium that really runs here (Ubuntu's `chromium-browser` is a snap stub that cannot run
/// inside `ip netns exec`: `--version` tells).
fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| {
            Path::new(p).exists()
                && std::process::Command::new(p)
                    .arg("--version")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        })
}

/// Loads `url` in a fresh headless Chromium inside `ns` and returns the DOM after load.
fn dump_dom(ns: &Namespace, browser: &str, profile: &Path, url: &str) -> String {
    let rules = format!("--host-resolver-rules=MAP {FOREIGN} 127.0.0.1");
    let profile = format!("--user-data-dir={}", profile.display());
    let out = ns
        .command(&[
            "timeout",
            "40",
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &profile,
            &rules,
            "--dump-dom",
            url,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn probe_verdicts_agree_with_a_real_browser() {
    if !require_root("probe_verdicts_agree_with_a_real_browser") {
        return;
    }
    let Some(browser) = chromium() else {
        cannot_run(
            "probe_verdicts_agree_with_a_real_browser",
            "chromium is not installed (scripts/install-test-deps.sh installs it)",
        );
        return;
    };
    let tmp = TempDir::new("probe-chromium");
    let dir = tmp.path().to_path_buf();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("temp dir");
    std::fs::write(www.join("page.html"), PAGE).expect("page");
    std::fs::write(www.join("secret.txt"), "TOKEN-7f3a91").expect("secret");
    let ns = namespace("probechrome");
    let _servers = python_in(&ns, None, &SERVERS.replace("@WWW@", www.to_str().expect("utf-8 path")));

    let report = audit_json(&ns, &["--probe", "--no-post", "--fail-on", "critical"]);
    let probe_open = |service: &str| {
        findings(&report, "web.dns-rebinding", Some(service))
            .iter()
            .any(|f| f["status"] == "open")
    };

    let runs = [
        ("unprotected, foreign name", format!("http://{FOREIGN}:7101/page.html")),
        ("protected, foreign name", format!("http://{FOREIGN}:7102/page.html")),
        (
            "protected, localhost (control)",
            "http://localhost:7102/page.html".to_string(),
        ),
    ];
    let doms: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, (_, url))| {
                let (ns, profile) = (&ns, dir.join(format!("profile-{i}")));
                s.spawn(move || dump_dom(ns, browser, &profile, url))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("chromium thread"))
            .collect()
    });
    let read = |dom: &str| dom.contains("status=200 body=TOKEN-7f3a91");
    for ((what, url), dom) in runs.iter().zip(&doms) {
        eprintln!("{what}: {url}: browser read the data: {}", read(dom));
    }
    assert!(
        read(&doms[2]),
        "control failed: the browser could not read the protected service locally:\n{}",
        doms[2]
    );
    assert!(
        read(&doms[0]),
        "browser did not read the unprotected service under {FOREIGN}:\n{}",
        doms[0]
    );
    assert!(
        !read(&doms[1]),
        "browser read the protected service under {FOREIGN}:\n{}",
        doms[1]
    );

    assert_eq!(
        probe_open("tcp:127.0.0.1:7101"),
        read(&doms[0]),
        "probe and browser disagree on 7101: {report:#}"
    );
    assert_eq!(
        probe_open("tcp:127.0.0.1:7102"),
        read(&doms[1]),
        "probe and browser disagree on 7102: {report:#}"
    );
}
