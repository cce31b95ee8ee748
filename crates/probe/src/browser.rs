//! Browser-borne probes of one local HTTP(S) service: what a web page in a browser on this host
//! can make it do.
//!
//! One `GET /` with a local `Host` recognises HTTP (or, after a TLS alert or a silent close, HTTPS)
//! and is the baseline; then, concurrently: the same request with a foreign `Host` (a DNS
//! rebinding page), with a foreign `Origin` (a cross-origin `fetch`), a Private Network Access
//! preflight, a WebSocket upgrade from a foreign `Origin`, and — for listeners that take
//! `0.0.0.0` — the request a page makes to `http://0.0.0.0:PORT`. Only when something is open is
//! the single state-changing request sent: an empty cross-site `text/plain` POST.

use crate::http::{Request, Response};
use crate::targets::Target;
use crate::wire::{Answer, Scheme, Wire};
use loopwarden_core::checks::CheckId;
use loopwarden_core::report::{Attacker, Confidence, Finding, Severity, Status};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The name a rebinding page's requests carry in `Host`.
pub const FOREIGN_HOST: &str = "loopwarden-rebind.example";
/// The origin of the attacking page.
pub const FOREIGN_ORIGIN: &str = "http://loopwarden-rebind.example";
/// A fixed, well-formed `Sec-WebSocket-Key` (16 bytes, base64).
const WEBSOCKET_KEY: &str = "bG9vcHdhcmRlbi1wcm9iZQ==";

/// What one service answered to each probe.
#[derive(Debug, Clone)]
pub struct Observed {
    /// HTTP or HTTPS.
    pub scheme: Scheme,
    /// The local `Host` used for the baseline and the cross-origin probes.
    pub local_host: String,
    /// `GET /` with the local `Host`.
    pub baseline: Response,
    /// `GET /` with a foreign `Host`.
    pub foreign_host: Answer,
    /// `GET /` with the local `Host` and a foreign `Origin`.
    pub cross_origin: Answer,
    /// `OPTIONS /` preflight with `Access-Control-Request-Private-Network: true`.
    pub preflight: Answer,
    /// WebSocket upgrade with the local `Host` and a foreign `Origin`.
    pub websocket: Answer,
    /// `GET /` sent to `0.0.0.0:PORT`, for listeners that take it.
    pub zero_address: Option<Answer>,
}

/// What probing one listener gave: whether it speaks HTTP or HTTPS, and the findings.
#[derive(Debug)]
pub struct Probed {
    /// HTTP, HTTPS, or neither (`None`: nothing more was asked).
    pub scheme: Option<Scheme>,
    /// The findings (none for a service that does not speak HTTP(S)).
    pub findings: Vec<Finding>,
    /// The answer to the first `GET /` (the plain HTTP one, or the HTTPS response): what a
    /// refusing front (`loopwarden guard`) did to the probe.
    pub first: Answer,
}

/// Probes one listener.
pub async fn probe(wire: &Wire, target: &Target, post: bool) -> Probed {
    let (scheme, baseline) = match recognise(wire, target).await {
        Ok(recognised) => recognised,
        Err(first) => {
            return Probed {
                scheme: None,
                findings: Vec::new(),
                first,
            }
        }
    };
    let local_host = host_value(target.connect);
    let addr = target.connect;
    let foreign = local_get(&format!("{FOREIGN_HOST}:{}", target.port));
    let cross = local_get(&local_host).header("Origin", FOREIGN_ORIGIN);
    let preflight = Request::new("OPTIONS", "/", local_host.clone())
        .header("Origin", FOREIGN_ORIGIN)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Private-Network", "true")
        .header("Connection", "close");
    let websocket = Request::new("GET", "/", local_host.clone())
        .header("Origin", FOREIGN_ORIGIN)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", WEBSOCKET_KEY)
        .header("Sec-WebSocket-Version", "13");
    let zero_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), target.port);
    let zero_request = local_get(&format!("0.0.0.0:{}", target.port));
    let zero = async {
        match target.zero_address {
            true => Some(wire.exchange(zero_addr, scheme, &zero_request).await),
            false => None,
        }
    };
    let (foreign_host, cross_origin, preflight, websocket, zero_address) = tokio::join!(
        wire.exchange(addr, scheme, &foreign),
        wire.exchange(addr, scheme, &cross),
        wire.exchange(addr, scheme, &preflight),
        wire.exchange(addr, scheme, &websocket),
        zero,
    );
    let observed = Observed {
        scheme,
        local_host,
        baseline,
        foreign_host,
        cross_origin,
        preflight,
        websocket,
        zero_address,
    };
    let mut findings = judge(&observed, target);
    if post && findings.iter().any(|f| f.status == Status::Open) {
        let request = Request::new("POST", "/", observed.local_host.clone())
            .header("Origin", FOREIGN_ORIGIN)
            .header("Content-Type", "text/plain")
            .header("Content-Length", "0")
            .header("Connection", "close");
        let answer = wire.exchange(addr, scheme, &request).await;
        let line = post_evidence(&answer);
        for f in &mut findings {
            f.evidence.push(line.clone());
        }
    }
    Probed {
        scheme: Some(scheme),
        findings,
        first: Answer::Http(observed.baseline),
    }
}

/// The baseline request; tells HTTP from HTTPS from neither (`Err`: the plain answer).
async fn recognise(wire: &Wire, target: &Target) -> Result<(Scheme, Response), Answer> {
    let request = local_get(&host_value(target.connect));
    let plain = wire.exchange(target.connect, Scheme::Http, &request).await;
    let try_tls = match &plain {
        Answer::Http(resp) => {
            let body = String::from_utf8_lossy(&resp.body).to_ascii_lowercase();
            if resp.status == 400 && (body.contains("https") || body.contains("ssl") || body.contains("tls")) {
                true
            } else {
                return Ok((Scheme::Http, resp.clone()));
            }
        }
        Answer::Other(bytes) => bytes.first() == Some(&0x15) && bytes.get(1) == Some(&0x03),
        Answer::Closed => true,
        Answer::Failed(e) => e.contains("reset"),
        Answer::Silent => false,
    };
    if !try_tls {
        return Err(plain);
    }
    match wire.exchange(target.connect, Scheme::Https, &request).await {
        Answer::Http(resp) => Ok((Scheme::Https, resp)),
        _ => Err(plain),
    }
}

/// `Host` value for a connect address: `127.0.0.1:8080`, `[::1]:8080`.
fn host_value(addr: SocketAddr) -> String {
    loopwarden_core::addr::socket_label(addr.ip(), addr.port())
}

/// `GET /` as a browser sends it, with the given `Host`.
fn local_get(host: &str) -> Request {
    Request::new("GET", "/", host)
        .header("User-Agent", "loopwarden-probe")
        .header("Accept", "*/*")
        .header("Connection", "close")
}

/// Whether a response is an authentication challenge.
fn is_auth_challenge(resp: &Response) -> bool {
    resp.status == 401 || resp.status == 407
}

/// What the baseline says about authentication.
fn auth_evidence(baseline: &Response) -> String {
    match baseline
        .header("WWW-Authenticate")
        .or_else(|| baseline.header("Proxy-Authenticate"))
    {
        Some(challenge) if is_auth_challenge(baseline) => {
            format!(
                "authentication demanded: {} with challenge {challenge}",
                baseline.status_line()
            )
        }
        _ if is_auth_challenge(baseline) => {
            format!(
                "authentication demanded: {} (no challenge header)",
                baseline.status_line()
            )
        }
        _ if baseline.status == 403 => "GET / refused with 403: may demand authentication".to_string(),
        _ => format!("no authentication demanded for GET / ({})", baseline.status_line()),
    }
}

/// Evidence line for the cross-site simple POST.
fn post_evidence(answer: &Answer) -> String {
    let verdict = match answer.response() {
        Some(r) if r.is_success() || (300..400).contains(&r.status) => "accepted",
        Some(r) if r.status == 404 || r.status == 405 || r.status == 501 => "not handled at /",
        Some(_) => "refused",
        None => "no HTTP answer",
    };
    format!(
        "cross-site simple POST / (Origin {FOREIGN_ORIGIN}, Content-Type: text/plain, empty body; \
         browsers send it without a preflight): {} — {verdict}",
        answer.describe()
    )
}

/// Turns what a service answered into findings. Pure.
pub fn judge(obs: &Observed, target: &Target) -> Vec<Finding> {
    let base = &obs.baseline;
    let mut common = vec![
        format!(
            "{}://{} answers GET / (Host: {}) with {}",
            obs.scheme.as_str(),
            host_value(target.connect),
            obs.local_host,
            base.status_line()
        ),
        auth_evidence(base),
    ];
    if obs.scheme == Scheme::Https {
        common.push("TLS service; probed without certificate verification".to_string());
    }
    let finding = |check: CheckId, severity, status, title: String, mut evidence: Vec<String>, fix: &'static str| {
        evidence.extend(common.iter().cloned());
        Finding {
            check,
            service: Some(target.service.clone()),
            attacker: Attacker::Browser,
            severity,
            status,
            confidence: Confidence::Probed,
            title: title.into(),
            evidence,
            fix: fix.into(),
            subject: None,
        }
    };
    let mut out = Vec::new();
    if let Some((severity, status, title, line)) = rebinding_verdict(base, &obs.foreign_host, target.port) {
        out.push(finding(
            CheckId::WebDnsRebinding,
            severity,
            status,
            title,
            vec![
                line,
                "a DNS-rebinding page is same-origin with the service: it reads every answer \
                        and may send any header, including Authorization"
                    .to_string(),
            ],
            "refuse requests whose Host is not an exact allowed name (localhost, 127.0.0.1, [::1] \
             with the port) — e.g. Vite server.allowedHosts, Transmission rpc-host-whitelist, Geth \
             --http.vhosts — and require a token",
        ));
    }
    let mut cors_lines = Vec::new();
    let mut cors_severity = None;
    for (what, answer) in [
        ("GET / with Origin", &obs.cross_origin),
        ("preflight OPTIONS /", &obs.preflight),
    ] {
        if let Some((severity, line)) = answer.response().and_then(cors_grant) {
            cors_lines.push(format!("{what} {FOREIGN_ORIGIN}: {line}"));
            cors_severity = cors_severity.max(Some(severity));
        }
    }
    if let Some(severity) = cors_severity {
        out.push(finding(
            CheckId::WebCorsPermissive,
            severity,
            Status::Open,
            "CORS grants a foreign origin: any web page can read its answers".to_string(),
            cors_lines,
            "send Access-Control-Allow-Origin only for the exact origins that need it; never \
             reflect Origin, never combine a granted foreign origin with credentials",
        ));
    }
    if let Some(resp) = obs.preflight.response() {
        let allowed = resp
            .header("Access-Control-Allow-Private-Network")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if allowed {
            out.push(finding(
                CheckId::WebPrivateNetworkAccess,
                Severity::Medium,
                Status::Open,
                "answers Private Network Access preflights from public pages with yes".to_string(),
                vec![
                    format!(
                        "OPTIONS / with Origin {FOREIGN_ORIGIN} and Access-Control-Request-Private-Network: \
                         true: {} with Access-Control-Allow-Private-Network: true",
                        resp.status_line()
                    ),
                    "the service opts in to being called from public web sites; Chrome never enforced \
                     the PNA preflight and replaces it with a Local Network Access prompt (Chrome 142)"
                        .to_string(),
                ],
                "do not send Access-Control-Allow-Private-Network: true unless public pages must call \
                 this service; then allow only their exact origins",
            ));
        }
    }
    if let Some(resp) = obs.websocket.response().filter(|r| r.status == 101) {
        out.push(finding(
            CheckId::WebWebsocketOrigin,
            Severity::High,
            Status::Open,
            "accepts WebSocket connections from any web page (no Origin check)".to_string(),
            vec![format!(
                "WebSocket upgrade GET / with Host {} and Origin {FOREIGN_ORIGIN}: {} (Upgrade: {})",
                obs.local_host,
                resp.status_line(),
                resp.header("Upgrade").unwrap_or("-")
            )],
            "check Origin on every WebSocket upgrade against an exact allowlist and require a token \
             (webpack-dev-server CVE-2018-14732, Vite CVE-2025-24010, MCP Inspector CVE-2025-49596)",
        ));
    }
    if let Some(answer) = &obs.zero_address {
        if let Some(resp) = answer.response() {
            if resp.is_success() || resp.status == base.status {
                out.push(finding(
                    CheckId::WebZeroAddress,
                    Severity::Medium,
                    Status::Open,
                    "reachable from web pages as http://0.0.0.0:PORT".to_string(),
                    vec![
                        format!(
                            "{}://0.0.0.0:{} (Host: 0.0.0.0:{}) answers {}",
                            obs.scheme.as_str(),
                            target.port,
                            target.port,
                            resp.status_line()
                        ),
                        "browsers without the 2024 '0.0.0.0 Day' fix (Chrome before 128-133, Safari \
                         before 18, Firefox) send such requests to this host"
                            .to_string(),
                    ],
                    "bind to 127.0.0.1/::1 instead of the wildcard, and refuse Host values that are \
                     not an allowed name (0.0.0.0 among them)",
                ));
            }
        }
    }
    out
}

/// The DNS-rebinding verdict: foreign `Host` compared with the local baseline.
/// A 2xx to the foreign Host whose body is short and unlike the local answer ("Invalid Host
/// header" sent with 200): not proof of a refusal, but no proof of access either.
fn refusal_in_disguise(base: &Response, foreign: &Response) -> bool {
    const SHORT: usize = 256;
    foreign.body != base.body && foreign.body.len() <= SHORT && base.body.len() > foreign.body.len() * 2
}

fn rebinding_verdict(base: &Response, foreign: &Answer, port: u16) -> Option<(Severity, Status, String, String)> {
    let asked = format!("GET / with Host {FOREIGN_HOST}:{port}");
    let Some(resp) = foreign.response() else {
        return Some((
            Severity::Info,
            Status::Unknown,
            "could not tell whether it answers a foreign Host".to_string(),
            format!("{asked}: {}", foreign.describe()),
        ));
    };
    let line = format!("{asked}: {} (local Host: {})", resp.status_line(), base.status_line());
    if resp.is_success() && refusal_in_disguise(base, resp) {
        return Some((
            Severity::Info,
            Status::Unknown,
            "answers a foreign Host with success but a short, different body: perhaps a refusal".into(),
            format!(
                "{line}; body: {:?}",
                String::from_utf8_lossy(&resp.body[..resp.body.len().min(120)])
            ),
        ));
    }
    if resp.is_success() {
        return Some((
            Severity::High,
            Status::Open,
            "answers requests for a foreign Host name (DNS rebinding)".into(),
            line,
        ));
    }
    if is_auth_challenge(resp) && is_auth_challenge(base) {
        return Some((
            Severity::Low,
            Status::Open,
            "answers a foreign Host name; only its authentication stands in a rebinding page's way".into(),
            line,
        ));
    }
    if resp.status == base.status && (300..400).contains(&resp.status) {
        return Some((
            Severity::Medium,
            Status::Open,
            "answers a foreign Host name exactly as a local one (DNS rebinding)".into(),
            format!("{line}; Location: {}", resp.header("Location").unwrap_or("-")),
        ));
    }
    if resp.status == base.status {
        return Some((
            Severity::Info,
            Status::Unknown,
            "answers a foreign Host exactly as a local one, but / holds nothing: data elsewhere is \
             unknown"
                .into(),
            line,
        ));
    }
    None
}

/// Whether a response grants the foreign origin read access, how badly, and why.
fn cors_grant(resp: &Response) -> Option<(Severity, String)> {
    let allow = resp.header("Access-Control-Allow-Origin")?;
    let credentials = resp
        .header("Access-Control-Allow-Credentials")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let with = if credentials {
        " with Access-Control-Allow-Credentials: true"
    } else {
        ""
    };
    if allow == FOREIGN_ORIGIN {
        return Some((
            Severity::High,
            format!(
                "{} reflects it in Access-Control-Allow-Origin{with}",
                resp.status_line()
            ),
        ));
    }
    if allow.eq_ignore_ascii_case("null") {
        return Some((
            Severity::Medium,
            format!("{} grants origin null (sandboxed pages){with}", resp.status_line()),
        ));
    }
    if allow == "*" && resp.is_success() && (resp.has_body() || resp.status == 204) {
        return Some((
            Severity::Medium,
            format!("{} grants * on a response carrying data", resp.status_line()),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            reason: String::new(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn target(bound: &str, zero: bool) -> Target {
        Target {
            service: format!("tcp:{bound}:8080"),
            bound: bound.parse().unwrap(),
            port: 8080,
            connect: "127.0.0.1:8080".parse().unwrap(),
            zero_address: zero,
        }
    }

    fn observed(base: Response, foreign: Response) -> Observed {
        Observed {
            scheme: Scheme::Http,
            local_host: "127.0.0.1:8080".into(),
            baseline: base,
            foreign_host: Answer::Http(foreign),
            cross_origin: Answer::Http(resp(200, &[], "x")),
            preflight: Answer::Http(resp(405, &[], "")),
            websocket: Answer::Http(resp(200, &[], "x")),
            zero_address: None,
        }
    }

    fn checks(findings: &[Finding]) -> Vec<(CheckId, Status)> {
        findings.iter().map(|f| (f.check, f.status)).collect()
    }

    #[test]
    fn host_allowlist_is_not_flagged_and_missing_check_is() {
        let t = target("127.0.0.1", false);
        let strict = observed(resp(200, &[], "data"), resp(403, &[], "bad host"));
        assert!(judge(&strict, &t).is_empty());
        let open = observed(resp(200, &[], "data"), resp(200, &[], "data"));
        let findings = judge(&open, &t);
        assert_eq!(checks(&findings), vec![(CheckId::WebDnsRebinding, Status::Open)]);
        assert_eq!(findings[0].severity, Severity::High);
        assert!(findings[0]
            .evidence
            .iter()
            .any(|e| e.contains("no authentication demanded")));
    }

    #[test]
    fn a_200_refusal_is_unknown_and_a_dynamic_page_is_still_open() {
        let t = target("127.0.0.1", false);
        let page = "<html>".to_string() + &"dashboard ".repeat(60) + "</html>";
        let refusal = judge(
            &observed(resp(200, &[], &page), resp(200, &[], "Invalid Host header")),
            &t,
        );
        assert_eq!(checks(&refusal), vec![(CheckId::WebDnsRebinding, Status::Unknown)]);
        assert!(
            refusal[0].evidence[0].contains("Invalid Host header"),
            "{:?}",
            refusal[0].evidence
        );
        let later = page.replace("dashboard", "dashboarD");
        let dynamic = judge(&observed(resp(200, &[], &page), resp(200, &[], &later)), &t);
        assert_eq!(checks(&dynamic), vec![(CheckId::WebDnsRebinding, Status::Open)]);
    }

    #[test]
    fn not_found_everywhere_is_unknown_but_a_shared_401_is_open() {
        let t = target("127.0.0.1", false);
        let nothing = judge(&observed(resp(404, &[], ""), resp(404, &[], "")), &t);
        assert_eq!(checks(&nothing), vec![(CheckId::WebDnsRebinding, Status::Unknown)]);
        assert_eq!(nothing[0].severity, Severity::Info);
        let basic = [("WWW-Authenticate", "Basic realm=\"x\"")];
        let auth = judge(&observed(resp(401, &basic, ""), resp(401, &basic, "")), &t);
        assert_eq!(checks(&auth), vec![(CheckId::WebDnsRebinding, Status::Open)]);
        assert!(auth[0]
            .evidence
            .iter()
            .any(|e| e.contains("authentication demanded: 401")));
    }

    #[test]
    fn reflected_cors_pna_websocket_and_zero_address_are_each_reported() {
        let t = target("0.0.0.0", true);
        let mut obs = observed(resp(200, &[], "x"), resp(421, &[], ""));
        obs.cross_origin = Answer::Http(resp(
            200,
            &[
                ("Access-Control-Allow-Origin", FOREIGN_ORIGIN),
                ("Access-Control-Allow-Credentials", "true"),
            ],
            "x",
        ));
        obs.preflight = Answer::Http(resp(
            204,
            &[
                ("Access-Control-Allow-Origin", FOREIGN_ORIGIN),
                ("Access-Control-Allow-Private-Network", "true"),
            ],
            "",
        ));
        obs.websocket = Answer::Http(resp(101, &[("Upgrade", "websocket")], ""));
        obs.zero_address = Some(Answer::Http(resp(200, &[], "x")));
        let findings = judge(&obs, &t);
        assert_eq!(
            checks(&findings),
            vec![
                (CheckId::WebCorsPermissive, Status::Open),
                (CheckId::WebPrivateNetworkAccess, Status::Open),
                (CheckId::WebWebsocketOrigin, Status::Open),
                (CheckId::WebZeroAddress, Status::Open)
            ]
        );
        assert_eq!(findings[0].severity, Severity::High);
        assert!(findings[0].evidence[0].contains("Credentials"));
    }

    #[test]
    fn star_without_data_is_not_a_grant() {
        assert!(cors_grant(&resp(404, &[("Access-Control-Allow-Origin", "*")], "")).is_none());
        assert!(cors_grant(&resp(200, &[("Access-Control-Allow-Origin", "*")], "{}")).is_some());
        assert!(cors_grant(&resp(
            200,
            &[("Access-Control-Allow-Origin", "http://localhost:3000")],
            "x"
        ))
        .is_none());
    }
}
