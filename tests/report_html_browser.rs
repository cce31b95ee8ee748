//! The HTML report in a real browser: a namespace made for the test with a path for every
//! attacker kind — route_localnet on its LAN interface, a socat forwarder on the wildcard address,
//! loopback TCP and a world-writable Unix socket any local user reaches, an HTTP service that
//! answers a foreign Host — and host text chosen to break the page (a process named like markup, a
//! socket path that closes an attribute). `audit --probe --format html --out` writes the page;
//! headless Chromium (driven over the DevTools protocol by a small Python client) opens it from
//! `file://`, and the test checks the DOM: a node for each attacker and service with findings, an
//! edge for each (attacker, service, check) of the JSON report in its status's colour, the detail
//! panel after a click, the filters, no injected element and no console or script error; then
//! the same page with scripts disabled, where every finding must still be shown and reachable by
//! links from the map, and no control that needs the script may show. The screenshot is kept
//! under target/tmp (its path is printed).

mod common;

use common::*;
use std::path::Path;

/// A loopback TCP service that answers any Host (dns-rebinding open), named `<svg/onload=1>`
/// (its `comm`, which `ps` and loopwarden show), and a world-writable Unix socket whose path
/// closes an HTML attribute.
const SERVICES: &str = r#"
import http.server, os, socket, threading
open("/proc/self/comm", "w").write("<svg/onload=1>")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"local data"; self.send_response(200); self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
for port in (7001, 7002):
    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
path = @SOCK@
u.bind(path); os.chmod(path, 0o777); u.listen(8)
print("ready", flush=True)
threading.Event().wait()
"#;

/// A DevTools client: starts Chromium with a debugging port, opens the page, records every
/// console error, exception and log error, reads the DOM, clicks a service and a path, uses a
/// filter, takes a screenshot and prints one JSON object.
const DRIVER: &str = r#"
import asyncio, base64, json, os, subprocess, sys, time, urllib.request
import websockets
browser, page, png, profile = sys.argv[1:5]
proc = subprocess.Popen([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--user-data-dir=" + profile, "--remote-debugging-port=0", "--window-size=1280,1800", "about:blank"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    port_file = os.path.join(profile, "DevToolsActivePort")
    for _ in range(200):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.1)
    port = open(port_file).read().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    ws_url = [t for t in targets if t["type"] == "page"][0]["webSocketDebuggerUrl"]

    QUERY = r'''
    (() => {
      const sec = document.querySelector("section.report");
      const detail = sec.querySelector("aside.detail");
      return JSON.stringify({
        script: document.documentElement.getAttribute("data-script"),
        attackers: [...sec.querySelectorAll("svg.map g.attacker")].map(g => g.getAttribute("data-attacker")),
        services: [...sec.querySelectorAll("svg.map g.service")].map(g => g.querySelector("title").textContent),
        edges: [...sec.querySelectorAll("svg.map g.edge")].map(g => ({
          attacker: g.getAttribute("data-attacker"), check: g.getAttribute("data-check"),
          status: g.getAttribute("data-status"), node: g.getAttribute("data-node"),
          service: sec.querySelector('svg.map g.service[data-node="' + g.getAttribute("data-node") + '"] title').textContent,
          stroke: getComputedStyle(g.querySelector("path.line")).stroke })),
        rows: sec.querySelectorAll("table.findings tbody tr").length,
        visibleRows: [...sec.querySelectorAll("table.findings tbody tr")].filter(r => !r.hidden).length,
        detailHidden: detail.hidden,
        detailHeading: detail.querySelector("h4") ? detail.querySelector("h4").textContent : null,
        detailRows: detail.querySelectorAll("tbody tr.finding").length,
        filtersShown: !sec.querySelector(".filters").hidden,
        injected: document.querySelectorAll("img, iframe, object, embed, svg svg:not(.sample), script").length,
        pwned: window.__pwned === true,
      });
    })()'''

    async def main():
        async with websockets.connect(ws_url, max_size=None) as ws:
            seq = 0
            errors = []
            async def call(method, **params):
                nonlocal seq
                seq += 1
                me = seq
                await ws.send(json.dumps({"id": me, "method": method, "params": params}))
                while True:
                    msg = json.loads(await ws.recv())
                    note(msg)
                    if msg.get("id") == me:
                        if "error" in msg:
                            raise RuntimeError(f"{method}: {msg['error']}")
                        return msg.get("result", {})
            def note(msg):
                m, p = msg.get("method"), msg.get("params", {})
                if m == "Runtime.exceptionThrown":
                    errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append("console: " + json.dumps(p.get("args", []))[:500])
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    errors.append("log: " + p["entry"].get("text", "")[:500])
            async def query():
                r = await call("Runtime.evaluate", expression=QUERY, returnByValue=True)
                return json.loads(r["result"]["value"])
            async def run(js):
                await call("Runtime.evaluate", expression=js)
            for domain in ("Runtime", "Log", "Page"):
                await call(domain + ".enable")
            await call("Page.navigate", url="file://" + page)
            deadline = time.time() + 20
            while time.time() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
                note(msg)
                if msg.get("method") == "Page.loadEventFired":
                    break
            out = {"loaded": await query()}
            await run('document.querySelector("svg.map g.service[data-node=\'0\']").dispatchEvent(new MouseEvent("click", {bubbles: true}))')
            out["service_clicked"] = await query()
            await run('document.querySelector("svg.map g.edge[data-status=\'open\']").dispatchEvent(new MouseEvent("click", {bubbles: true}))')
            out["edge_clicked"] = await query()
            shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            open(png, "wb").write(base64.b64decode(shot["data"]))
            await run('(() => { const s = document.querySelector("select[data-filter=status]"); s.value = "open"; s.dispatchEvent(new Event("change")); })()')
            out["filtered_open"] = await query()
            await asyncio.sleep(0.3)
            while True:
                try:
                    note(json.loads(await asyncio.wait_for(ws.recv(), 0.2)))
                except asyncio.TimeoutError:
                    break
            # The same page with scripts off: everything readable, nothing that needs a script
            # shown as a control, and every map edge a link to its path's entry.
            await call("Emulation.setScriptExecutionDisabled", value=True)
            await call("Page.navigate", url="file://" + page)
            deadline = time.time() + 20
            while time.time() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
                note(msg)
                if msg.get("method") == "Page.loadEventFired":
                    break
            NOSCRIPT = r'''
            (() => {
              const sec = document.querySelector("section.report");
              const rows = [...sec.querySelectorAll("table.findings tbody tr")];
              const links = [...sec.querySelectorAll("svg.map a")].map(a => a.getAttribute("href"));
              return JSON.stringify({
                script: document.documentElement.getAttribute("data-script"),
                rows: rows.length,
                shownRows: rows.filter(r => r.offsetParent !== null).length,
                visibleButtons: [...document.querySelectorAll("button")].filter(b => b.offsetParent !== null).length,
                visibleSelects: [...document.querySelectorAll("select")].filter(b => b.offsetParent !== null).length,
                deadLinks: links.filter(h => !document.getElementById(h.slice(1))),
                links: links.length,
                findingLinks: new Set([...sec.querySelectorAll("table.services a[href*='-f-']")].map(a => a.getAttribute("href"))).size,
              });
            })()'''
            r = await call("Runtime.evaluate", expression=NOSCRIPT, returnByValue=True)
            out["noscript"] = json.loads(r["result"]["value"])
            out["errors"] = errors
            print(json.dumps(out))
    asyncio.run(main())
finally:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
"#;

/// A Chromium that really runs here (Ubuntu's `chromium-browser` is a snap stub).
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

/// `#c62828` as a browser's computed style spells it: `rgb(198, 40, 40)`.
fn rgb(hex: &str) -> String {
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex colour");
    format!("rgb({}, {}, {})", byte(1), byte(3), byte(5))
}

#[test]
fn the_html_report_shows_every_attacker_kind_in_a_real_browser() {
    let test = "the_html_report_shows_every_attacker_kind_in_a_real_browser";
    if !require_root(test) || !require_tool(test, "socat") {
        return;
    }
    let Some(browser) = chromium() else {
        cannot_run(
            test,
            "chromium is not installed (scripts/install-test-deps.sh installs it)",
        );
        return;
    };
    let tmp = TempDir::new("report-html");
    let dir = tmp.path();
    let sock = dir.join("\"><svg onload=window.__pwned=true>.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let ns = namespace("reporthtml");
    for argv in [
        &["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"][..],
        &["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"],
        &["ip", "link", "set", "eth0", "up"],
        &["ip", "link", "set", "peer0", "up"],
        &["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
    ] {
        ns.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    let _services = python_in(&ns, None, &SERVICES.replace("@SOCK@", &format!("{sock:?}")));
    let _forwarder = spawn_in(
        &ns,
        &[
            "socat",
            "TCP-LISTEN:8080,bind=0.0.0.0,reuseaddr,fork",
            "TCP:127.0.0.1:7001",
        ],
    );
    wait_for_listener(&ns, 8080);

    let page = dir.join("report.html");
    let page_arg = page.to_str().expect("utf-8 path");
    let audit = run_loopwarden(
        &ns,
        &["audit", "--probe", "--no-post", "--format", "html", "--out", page_arg],
    );
    assert_eq!(
        audit.status.code(),
        Some(1),
        "findings expected: {}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(audit.stdout.is_empty(), "--out writes nothing to stdout");
    let report = audit_json(&ns, &["--probe", "--no-post"]);
    let html = std::fs::read_to_string(&page).expect("the page");
    eprintln!(
        "report.html: {} bytes, {} findings",
        html.len(),
        report["findings"].as_array().map_or(0, Vec::len)
    );

    // The test means something only if every attacker kind and the hostile name are there.
    let attackers_in_report: std::collections::BTreeSet<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["attacker"].as_str())
        .collect();
    assert_eq!(
        attackers_in_report.into_iter().collect::<Vec<_>>(),
        ["browser", "lan", "local-user", "remote"],
        "{report:#}"
    );
    assert!(
        report.to_string().contains("<svg/onload=1>"),
        "the hostile process name is in the report"
    );

    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html-audit.png");
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let profile = dir.join("profile");
    let mut driver = ns.command(&[
        "timeout",
        "90",
        python,
        "-c",
        DRIVER,
        browser,
        page_arg,
        png.to_str().expect("utf-8 path"),
        profile.to_str().expect("utf-8 path"),
    ]);
    driver.current_dir(dir);
    let out = output_within(&mut driver, LOOPWARDEN_TIMEOUT);
    assert!(
        out.status.success(),
        "the DevTools client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    eprintln!("screenshot of the report: {}", png.display());

    let loaded = &seen["loaded"];
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "console or script errors: {seen:#}"
    );
    assert_eq!(loaded["script"], "ready", "the page's script ran (CSP hash accepted)");
    assert_eq!(loaded["injected"], 1, "only the page's own script element: {loaded:#}");
    assert_eq!(loaded["pwned"], false);
    assert_eq!(
        loaded["attackers"],
        serde_json::json!(["lan", "remote", "local-user", "browser"])
    );
    assert_eq!(loaded["filtersShown"], true);
    assert_eq!(
        loaded["rows"].as_u64(),
        report["findings"].as_array().map(|a| a.len() as u64)
    );

    // Every (attacker, service, check) of the JSON report is an edge, coloured by its status.
    let edges = loaded["edges"].as_array().expect("edges");
    let colour = |status: &str| {
        rgb(match status {
            "open" => "#c62828",
            "unknown" => "#b26a00",
            _ => "#2e7d32",
        })
    };
    for e in edges {
        assert_eq!(e["stroke"], colour(e["status"].as_str().unwrap_or("")).as_str(), "{e}");
    }
    // A finding's path ends at its service; a host-wide one at each service it reaches (with
    // that service's own status), else at the host.
    for f in report["findings"].as_array().expect("findings") {
        let ends: Vec<(String, String)> = match (f["service"].as_str(), f["reaches"].as_array()) {
            (Some(service), _) => vec![(service.to_string(), String::new())],
            (None, Some(reaches)) if !reaches.is_empty() => reaches
                .iter()
                .map(|r| {
                    (
                        r["service"].as_str().unwrap_or_default().to_string(),
                        r["status"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            _ => vec![("this host (host-wide)".to_string(), String::new())],
        };
        for (service, status) in ends {
            assert!(
                edges.iter().any(|e| e["attacker"] == f["attacker"]
                    && e["check"] == f["check"]
                    && e["service"]
                        .as_str()
                        .is_some_and(|s| s == service || s.starts_with(&format!("{service} · ")))
                    && (status.is_empty() || e["status"] == status.as_str())),
                "no edge for {f} to {service}\nedges: {edges:#?}"
            );
        }
    }
    // route_localnet's path is drawn to the loopback services it exposes, not to the host.
    assert!(
        edges.iter().any(|e| e["check"] == "net.route-localnet"
            && e["service"]
                .as_str()
                .is_some_and(|s| s.starts_with("tcp:127.0.0.1:7001"))),
        "{edges:#?}"
    );
    assert!(
        !edges
            .iter()
            .any(|e| e["check"] == "net.route-localnet"
                && e["service"].as_str().is_some_and(|s| s.starts_with("this host"))),
        "{edges:#?}"
    );
    let edge = |check: &str| {
        edges
            .iter()
            .find(|e| e["check"] == check)
            .unwrap_or_else(|| panic!("no {check} edge: {edges:#?}"))
    };
    assert_eq!(edge("net.route-localnet")["status"], "open");
    assert_eq!(edge("web.dns-rebinding")["attacker"], "browser");
    assert_eq!(edge("relay.forwarder")["attacker"], "remote");
    assert!(edges.iter().any(|e| e["check"] == "local.unix-world"
        && e["service"]
            .as_str()
            .is_some_and(|s| s.contains("\"><svg onload=window.__pwned=true>.sock"))));
    assert!(
        loaded["services"]
            .as_array()
            .expect("services")
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains("· <svg/onload=1>"))),
        "the hostile process name is shown as text: {loaded:#}"
    );

    // A click on a service opens its findings; a click on a path, that path's.
    let clicked = &seen["service_clicked"];
    assert_eq!(clicked["detailHidden"], false, "{clicked:#}");
    assert!(clicked["detailRows"].as_u64().is_some_and(|n| n >= 1), "{clicked:#}");
    let on_edge = &seen["edge_clicked"];
    assert!(
        on_edge["detailHeading"].as_str().is_some_and(|h| h.contains(" by ")),
        "{on_edge:#}"
    );
    assert!(on_edge["detailRows"].as_u64().is_some_and(|n| n >= 1), "{on_edge:#}");
    let open = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["status"] == "open")
        .count();
    assert_eq!(seen["filtered_open"]["visibleRows"], open, "the status filter");
    assert!(
        std::fs::metadata(&png).is_ok_and(|m| m.len() > 10_000),
        "screenshot written"
    );

    // With scripts off: every finding shown, no control that needs the script, every map link
    // leads somewhere, and the services table links to every finding on a path.
    let plain = &seen["noscript"];
    assert_eq!(
        plain["script"],
        serde_json::Value::Null,
        "the script did not run: {plain:#}"
    );
    assert_eq!(plain["rows"], loaded["rows"], "{plain:#}");
    assert_eq!(plain["shownRows"], loaded["rows"], "{plain:#}");
    assert_eq!(plain["visibleButtons"], 0, "{plain:#}");
    assert_eq!(plain["visibleSelects"], 0, "{plain:#}");
    assert_eq!(plain["deadLinks"], serde_json::json!([]), "{plain:#}");
    assert!(plain["links"].as_u64().is_some_and(|n| n > 0), "{plain:#}");
    assert_eq!(
        plain["findingLinks"], loaded["rows"],
        "every finding is linked from its path: {plain:#}"
    );
}

/// Waits (at most 10 s) until something listens on TCP `port` inside `ns`.
fn wait_for_listener(ns: &Namespace, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ns
        .exec(&["ss", "-Hltn"])
        .unwrap_or_default()
        .contains(&format!(":{port} "))
    {
        assert!(std::time::Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
