//! The per-request checks of an HTTP front, as a pure function of the request head.
//!
//! - `Host` (and the authority of an absolute-form target) must be an allowed name with the
//!   front's port: a DNS-rebinding page sends its own name (Ollama CVE-2024-28224, Transmission
//!   CVE-2018-5702). Missing or repeated `Host` is refused.
//! - A present `Origin` must be an allowed origin (the front's own, or `--allow-origin`) on every
//!   request, reads included: a page on another local port (`http://localhost:9999`, another
//!   user's server) is *same-site* with the front, and its `fetch()` carries its own origin.
//!   `Origin: null` is foreign; a repeated `Origin` is refused.
//! - `Sec-Fetch-Site` must be `same-origin` or `none` (typed, bookmarked), unless the request
//!   carries an allowed `Origin` (a CORS request of an allowed page) or is a top-level navigation
//!   (`Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`, GET or HEAD): a link the user
//!   followed opens the page in its own tab, where the linking page cannot read it. Frames
//!   (`iframe`, `frame`, `object`, `embed`), fetches, images, scripts and WebSockets from other
//!   sites — same-site ones included — are refused.
//! - CORS preflights and Private/Local Network Access preflights from foreign origins are
//!   refused.

use crate::config::HttpConfig;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, ORIGIN, UPGRADE};
use hyper::{Method, StatusCode, Uri};

/// The default `Host` names of a front (each with the front's port).
pub const DEFAULT_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// A resolved HTTP policy.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpPolicy {
    /// Accepted `Host` values.
    pub hosts: Vec<HostEntry>,
    /// Accepted origins for state-changing requests, upgrades and preflights.
    pub origins: Vec<Origin>,
    /// Header that carries the proven local user upstream.
    pub identity_header: Option<HeaderName>,
    /// Whether other pages may frame the service's answers (else the guard adds
    /// `X-Frame-Options: DENY` and `frame-ancestors 'none'` where the service says nothing).
    pub allow_framing: bool,
    /// Limits on request heads.
    pub limits: HeadLimits,
}

/// Limits on what a client may send before its request is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Time to send a complete head.
    pub timeout: std::time::Duration,
    /// Largest head.
    pub max_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
}

/// One accepted `Host`: a lower-case name and the port it must carry (`None`: any port — a
/// Unix front, where ports mean nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// Lower-case host name or bracketed IPv6 address.
    pub name: String,
    /// Required port.
    pub port: Option<u16>,
}

/// A web origin: scheme, lower-case host, port (defaulted by scheme).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https` (or another scheme, compared exactly).
    pub scheme: String,
    /// Lower-case host (IPv6 bracketed).
    pub host: String,
    /// Port, the scheme's default when absent.
    pub port: Option<u16>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}://{}:{p}", self.scheme, self.host),
            None => write!(f, "{}://{}", self.scheme, self.host),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRefusal {
    /// No `Host` header.
    MissingHost,
    /// More than one `Host` header.
    MultipleHosts,
    /// A `Host` (or absolute-form authority) not allowed: DNS rebinding.
    ForeignHost(String),
    /// A header that must appear at most once appears several times (`Origin`,
    /// `Sec-Fetch-Site`): which one is meant is ambiguous.
    Repeated(&'static str),
    /// `Sec-Fetch-Site` other than `same-origin`/`none` on something else than a top-level
    /// navigation or a request of an allowed origin.
    CrossSite(String),
    /// A request from a foreign `Origin`.
    ForeignOrigin(String),
    /// A CORS preflight from a foreign origin.
    ForeignPreflight(String),
    /// A Private/Local Network Access preflight from a foreign origin.
    NetworkAccessPreflight(String),
}

impl HttpRefusal {
    /// The counter key.
    pub fn key(&self) -> &'static str {
        match self {
            HttpRefusal::MissingHost | HttpRefusal::MultipleHosts => "missing-host",
            HttpRefusal::Repeated(_) => "repeated-header",
            HttpRefusal::ForeignHost(_) => "foreign-host",
            HttpRefusal::CrossSite(_) => "cross-site",
            HttpRefusal::ForeignOrigin(_) => "foreign-origin",
            HttpRefusal::ForeignPreflight(_) => "foreign-preflight",
            HttpRefusal::NetworkAccessPreflight(_) => "network-access-preflight",
        }
    }

    /// The status sent: 421 for a foreign Host (the request was not meant for this server), 400
    /// for a missing one or a repeated header, 403 for the rest.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpRefusal::ForeignHost(_) => StatusCode::MISDIRECTED_REQUEST,
            HttpRefusal::MissingHost | HttpRefusal::MultipleHosts | HttpRefusal::Repeated(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl std::fmt::Display for HttpRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpRefusal::MissingHost => write!(f, "no Host header"),
            HttpRefusal::MultipleHosts => write!(f, "more than one Host header"),
            HttpRefusal::ForeignHost(h) => write!(f, "Host {h:?} is not an allowed name (DNS rebinding?)"),
            HttpRefusal::Repeated(name) => write!(f, "more than one {name} header"),
            HttpRefusal::CrossSite(what) => write!(f, "request from another site refused ({what})"),
            HttpRefusal::ForeignOrigin(o) => write!(f, "Origin {o:?} is not an allowed origin"),
            HttpRefusal::ForeignPreflight(o) => write!(f, "CORS preflight from foreign Origin {o:?}"),
            HttpRefusal::NetworkAccessPreflight(o) => {
                write!(f, "private/local network access preflight from foreign Origin {o:?}")
            }
        }
    }
}

impl HttpPolicy {
    /// Builds the policy of a front listening on `port` (`None`: a Unix front).
    pub fn new(config: &HttpConfig, port: Option<u16>) -> Result<HttpPolicy, String> {
        let mut hosts: Vec<HostEntry> = DEFAULT_HOSTS
            .iter()
            .map(|h| HostEntry {
                name: h.to_string(),
                port,
            })
            .collect();
        for text in &config.allow_hosts {
            let (name, explicit) = parse_allowed_host(text)?;
            hosts.push(HostEntry {
                name,
                port: explicit.or(port),
            });
        }
        let mut origins: Vec<Origin> = match port {
            Some(p) => DEFAULT_HOSTS
                .iter()
                .map(|h| Origin {
                    scheme: "http".into(),
                    host: h.to_string(),
                    port: Some(p),
                })
                .collect(),
            None => Vec::new(),
        };
        for text in &config.allow_origins {
            origins.push(parse_allowed_origin(text)?);
        }
        let identity_header = config.identity_header.as_deref().map(identity_header).transpose()?;
        Ok(HttpPolicy {
            hosts,
            origins,
            identity_header,
            allow_framing: config.allow_framing,
            limits: HeadLimits {
                timeout: config.header_timeout,
                max_bytes: config.max_header_bytes,
                max_headers: config.max_headers,
            },
        })
    }

    /// The `Host` values as text, for the published status.
    pub fn host_list(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| match h.port {
                Some(p) => format!("{}:{p}", h.name),
                None => h.name.clone(),
            })
            .collect()
    }

    fn host_allowed(&self, value: &str) -> bool {
        let Some((name, port)) = split_host_ref(value) else {
            return false;
        };
        self.hosts.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && match h.port {
                    None => true,
                    Some(want) => port == Some(want) || (port.is_none() && want == 80),
                }
        })
    }

    fn origin_allowed(&self, value: &str) -> bool {
        parse_origin(value).is_some_and(|o| self.origins.contains(&o))
    }

    /// Checks one request head.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), HttpRefusal> {
        let mut hosts = headers.get_all(HOST).iter();
        let host = hosts.next().ok_or(HttpRefusal::MissingHost)?;
        if hosts.next().is_some() {
            return Err(HttpRefusal::MultipleHosts);
        }
        let host = host.to_str().map_err(|_| HttpRefusal::ForeignHost(lossy(host)))?;
        if !self.host_allowed(host) {
            return Err(HttpRefusal::ForeignHost(host.to_string()));
        }
        if let Some(authority) = uri.authority() {
            if !self.host_allowed(authority.as_str()) {
                return Err(HttpRefusal::ForeignHost(authority.to_string()));
            }
        }
        let origin = single(headers, ORIGIN.as_str(), "Origin")?.map(lossy);
        if method == Method::OPTIONS && headers.contains_key("access-control-request-method") {
            return match origin {
                Some(o) if !self.origin_allowed(&o) => {
                    if headers.contains_key("access-control-request-private-network")
                        || headers.contains_key("access-control-request-local-network")
                    {
                        Err(HttpRefusal::NetworkAccessPreflight(o))
                    } else {
                        Err(HttpRefusal::ForeignPreflight(o))
                    }
                }
                _ => Ok(()),
            };
        }
        if let Some(o) = &origin {
            if !self.origin_allowed(o) {
                return Err(HttpRefusal::ForeignOrigin(o.clone()));
            }
        }
        fetch_site(method, headers, origin.is_some())
    }
}

/// The one value of a header that may appear at most once.
fn single<'h>(headers: &'h HeaderMap, name: &str, shown: &'static str) -> Result<Option<&'h HeaderValue>, HttpRefusal> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(HttpRefusal::Repeated(shown));
    }
    Ok(first)
}

/// The resource-isolation policy on `Sec-Fetch-Site`: `same-origin` and `none` pass; any other
/// site passes only with an allowed `Origin` (checked before: `allowed_origin` says one was
/// present) or as a top-level navigation, never as a frame, a fetch, an embed or a WebSocket.
fn fetch_site(method: &Method, headers: &HeaderMap, allowed_origin: bool) -> Result<(), HttpRefusal> {
    let Some(site) = single(headers, "sec-fetch-site", "Sec-Fetch-Site")? else {
        return Ok(());
    };
    let site = lossy(site).to_ascii_lowercase();
    if matches!(site.as_str(), "same-origin" | "none") || allowed_origin {
        return Ok(());
    }
    let mode = headers.get("sec-fetch-mode").map(lossy).unwrap_or_default();
    let dest = headers.get("sec-fetch-dest").map(lossy).unwrap_or_default();
    let top_level = mode.eq_ignore_ascii_case("navigate")
        && dest.eq_ignore_ascii_case("document")
        && matches!(*method, Method::GET | Method::HEAD)
        && !is_upgrade(headers);
    if top_level {
        Ok(())
    } else {
        Err(HttpRefusal::CrossSite(format!(
            "Sec-Fetch-Site {}, mode {}, dest {}",
            or_dash(&site),
            or_dash(&mode),
            or_dash(&dest)
        )))
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Whether a request asks to switch protocols (`Connection: upgrade` with `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
        })
}

fn lossy(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// `name`, `name:port`, `[v6]`, `[v6]:port` → (lower-case name, port). `None` for anything
/// else (empty, spaces, userinfo, a bad port).
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    split_host_ref(text).map(|(name, port)| (name.to_ascii_lowercase(), port))
}

/// [`split_host`] without allocating: the name as written (compare it case-insensitively).
fn split_host_ref(text: &str) -> Option<(&str, Option<u16>)> {
    if text.is_empty() || text.bytes().any(|b| b.is_ascii_whitespace() || b == b'@' || b == b'/') {
        return None;
    }
    let (name, port) = if text.starts_with('[') {
        let close = text.find(']')?;
        text[1..close].parse::<std::net::Ipv6Addr>().ok()?;
        let port = match &text[close + 1..] {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&text[..=close], port)
    } else {
        match text.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (text, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((name, port))
}

/// Parses an origin as a browser sends it (`scheme://host[:port]`, no path); the port defaults
/// by scheme. Lenient: an unusual value that does not parse is simply not an allowed origin.
pub fn parse_origin(text: &str) -> Option<Origin> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        return None;
    }
    let (host, port) = split_host(rest)?;
    let port = port.or(match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    });
    Some(Origin { scheme, host, port })
}

/// What an `--allow-host` value must look like.
const HOST_FORM: &str = "expected one host name (app.localhost), IPv4 address or bracketed IPv6 address, \
                         optionally with :PORT (1-65535) — no wildcards, no lists (repeat the option)";

/// What an `--allow-origin` value must look like.
const ORIGIN_FORM: &str = "expected one origin, scheme://host[:port] as a browser sends it \
                           (https://tool.example:8443) — no wildcards, no path, no lists (repeat the option)";

/// Parses an `--allow-host` value strictly: a name the browser could send in `Host`, with an
/// optional port. The error names the value and the expected form.
pub fn parse_allowed_host(text: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("allowed host {text:?}: {HOST_FORM}");
    let (name, port) = split_host(text).ok_or_else(bad)?;
    if port == Some(0) || !valid_host_name(&name) {
        return Err(bad());
    }
    Ok((name, port))
}

/// Parses an `--allow-origin` value strictly (see [`parse_allowed_host`] for the host part).
pub fn parse_allowed_origin(text: &str) -> Result<Origin, String> {
    let bad = || format!("allowed origin {text:?}: {ORIGIN_FORM}");
    let (_, rest) = text.split_once("://").ok_or_else(bad)?;
    let origin = parse_origin(text).ok_or_else(bad)?;
    let explicit_port = split_host(rest).and_then(|(_, p)| p);
    if explicit_port == Some(0) || !valid_host_name(&origin.host) {
        return Err(bad());
    }
    Ok(origin)
}

/// A lower-case DNS name (labels of letters, digits and inner hyphens, none empty), an IPv4
/// address or a bracketed IPv6 address.
fn valid_host_name(name: &str) -> bool {
    if name.starts_with('[') {
        return true; // split_host checked the address inside the brackets
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        // A name of digits and dots that is no IPv4 address (`1.2.3`) is no host name either.
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Headers a proxy, the HTTP framing or the routing to the upstream depend on: never usable as
/// the identity header (a client could remove it through `Connection`, or it would change how
/// the request is framed or routed).
const RESERVED_HEADERS: [&str; 10] = [
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "forwarded",
];

/// Checks and parses the `--identity-header` name.
pub fn identity_header(name: &str) -> Result<HeaderName, String> {
    let not_a_name = || format!("identity header {name:?} is not a header name (letters, digits and '-')");
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(not_a_name());
    }
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| not_a_name())?;
    let lower = header.as_str();
    if RESERVED_HEADERS.contains(&lower)
        || lower.starts_with("proxy-")
        || lower.starts_with("sec-")
        || IDENTITY_HEADERS.contains(&lower)
        || lower.starts_with("x-forwarded-")
    {
        return Err(format!(
            "identity header {name:?} is a hop-by-hop, framing, routing or client-address header: \
             use a header of its own such as X-Loopwarden-User"
        ));
    }
    Ok(header)
}

/// Request headers that carry a client's claimed identity, address or original URL: removed
/// before forwarding, so the upstream sees only what the guard proved and the request it checked
/// (plus every `X-Forwarded-*`).
const IDENTITY_HEADERS: [&str; 10] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-original-url",
    "x-rewrite-url",
];

/// Removes claimed identities and rewritten targets (`Forwarded`, `X-Forwarded-*`,
/// `X-Real-IP`, `True-Client-IP`, `X-Original-URL` …, the identity header) and every header
/// whose name contains `_` (as nginx does by default: CGI, WSGI and PHP read `X_Real_IP` as
/// `X-Real-IP`, so such a name could smuggle any of the others), and, when configured, states
/// the proven identity. Call it after the hop-by-hop headers are removed, so that no
/// `Connection` token can remove the identity header again.
pub fn scrub(headers: &mut HeaderMap, identity: Option<(&HeaderName, &str)>) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            IDENTITY_HEADERS.contains(&k) || k.starts_with("x-forwarded-") || k.contains('_')
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
    if let Some((name, value)) = identity {
        headers.remove(name);
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name.clone(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> HttpPolicy {
        HttpPolicy::new(
            &HttpConfig {
                allow_hosts: vec!["app.localhost".into(), "Dev.Example:9000".into()],
                allow_origins: vec!["https://app.example".into()],
                ..HttpConfig::default()
            },
            Some(8080),
        )
        .unwrap()
    }

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Result<(), HttpRefusal> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        policy().check(&method.parse().unwrap(), &uri.parse().unwrap(), &map)
    }

    #[test]
    fn only_allowed_host_names_with_the_front_port_pass() {
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
            "app.localhost:8080",
            "dev.example:9000",
        ] {
            assert_eq!(req("GET", "/", &[("host", ok)]), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "localhost:8081",
            "localhost",
            "localhost.:8080",
            "127.0.0.1:8080@evil",
            "",
            "[::1",
            "0.0.0.0:8080",
        ] {
            assert!(req("GET", "/", &[("host", bad)]).is_err(), "{bad}");
        }
        assert_eq!(req("GET", "/", &[]), Err(HttpRefusal::MissingHost));
        assert_eq!(
            req("GET", "/", &[("host", "localhost:8080"), ("host", "evil:8080")]),
            Err(HttpRefusal::MultipleHosts)
        );
        assert_eq!(
            req("GET", "http://evil.example:8080/", &[("host", "localhost:8080")]),
            Err(HttpRefusal::ForeignHost("evil.example:8080".into()))
        );
    }

    #[test]
    fn a_present_origin_must_be_allowed_on_every_request() {
        let h = ("host", "localhost:8080");
        assert_eq!(
            req("POST", "/", &[h]),
            Ok(()),
            "no Origin: not a browser's cross-origin request"
        );
        assert_eq!(req("POST", "/", &[h, ("origin", "http://localhost:8080")]), Ok(()));
        assert_eq!(req("POST", "/", &[h, ("origin", "https://app.example")]), Ok(()));
        assert_eq!(
            req("POST", "/", &[h, ("origin", "http://evil.example")]),
            Err(HttpRefusal::ForeignOrigin("http://evil.example".into()))
        );
        assert!(req("DELETE", "/", &[h, ("origin", "null")]).is_err());
        // A page on another local port (another user's server) is same-site with the front:
        // its fetch() is a read, and it carries its own origin.
        assert_eq!(
            req(
                "GET",
                "/secret",
                &[h, ("origin", "http://localhost:9999"), ("sec-fetch-site", "same-site")]
            ),
            Err(HttpRefusal::ForeignOrigin("http://localhost:9999".into())),
            "reads from foreign origins are refused too"
        );
        assert_eq!(
            req(
                "GET",
                "/",
                &[
                    h,
                    ("origin", "http://localhost:8080"),
                    ("origin", "http://evil.example")
                ]
            ),
            Err(HttpRefusal::Repeated("Origin")),
            "a second Origin is not left unchecked"
        );
        let ws = [h, ("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")];
        assert_eq!(
            req(
                "GET",
                "/ws",
                &[ws[0], ws[1], ws[2], ("origin", "http://127.0.0.1:8080")]
            ),
            Ok(())
        );
        assert!(matches!(
            req(
                "GET",
                "/ws",
                &[ws[0], ws[1], ws[2], ("origin", "http://evil.example:8080")]
            ),
            Err(HttpRefusal::ForeignOrigin(_))
        ));
    }

    #[test]
    fn other_sites_pass_only_as_a_top_level_navigation_or_with_an_allowed_origin() {
        let h = ("host", "localhost:8080");
        let fetch = |site, mode, dest| {
            [
                h,
                ("sec-fetch-site", site),
                ("sec-fetch-mode", mode),
                ("sec-fetch-dest", dest),
            ]
        };
        for site in ["cross-site", "same-site"] {
            assert_eq!(req("GET", "/", &fetch(site, "navigate", "document")), Ok(()), "{site}");
            assert!(matches!(
                req("POST", "/", &fetch(site, "navigate", "document")),
                Err(HttpRefusal::CrossSite(_))
            ));
            for (mode, dest) in [
                ("no-cors", "image"),
                ("navigate", "iframe"),
                ("navigate", "frame"),
                ("navigate", "object"),
                ("navigate", "embed"),
                ("cors", "empty"),
                ("no-cors", "script"),
                ("navigate", ""),
            ] {
                assert!(
                    matches!(
                        req("GET", "/", &fetch(site, mode, dest)),
                        Err(HttpRefusal::CrossSite(_))
                    ),
                    "{site} {mode} {dest}"
                );
            }
        }
        assert_eq!(req("GET", "/", &[h, ("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(req("GET", "/", &[h, ("sec-fetch-site", "none")]), Ok(()));
        // A CORS request of an allowed page (another site) passes.
        let allowed = [
            h,
            ("origin", "https://app.example"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "cors"),
        ];
        assert_eq!(req("GET", "/", &allowed), Ok(()));
        assert_eq!(
            req(
                "GET",
                "/",
                &[h, ("sec-fetch-site", "same-origin"), ("sec-fetch-site", "cross-site")]
            ),
            Err(HttpRefusal::Repeated("Sec-Fetch-Site"))
        );
    }

    #[test]
    fn allowed_hosts_and_origins_must_be_single_exact_values() {
        for bad in [
            "*",
            ".example",
            "a,b",
            "127.0.0.1:0",
            "a..b",
            "-a.example",
            "app.example.",
            "x y",
            "1.2.3",
        ] {
            let err = parse_allowed_host(bad).unwrap_err();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("expected one host name"),
                "{err}"
            );
        }
        assert_eq!(
            parse_allowed_host("App.Localhost:9000"),
            Ok(("app.localhost".into(), Some(9000)))
        );
        assert_eq!(parse_allowed_host("[::1]"), Ok(("[::1]".into(), None)));
        for bad in [
            "http://*.example",
            "http://a.example/",
            "app.example",
            "http://a,b",
            "https://x.example:0",
        ] {
            let err = parse_allowed_origin(bad).unwrap_err();
            assert!(err.contains("expected one origin"), "{err}");
        }
        assert_eq!(
            parse_allowed_origin("https://tool.example:8443").map(|o| o.to_string()),
            Ok("https://tool.example:8443".into())
        );
    }

    #[test]
    fn the_identity_header_cannot_be_one_a_client_or_the_framing_removes_or_rewrites() {
        for bad in [
            "Connection",
            "Content-Length",
            "Transfer-Encoding",
            "Host",
            "Upgrade",
            "TE",
            "Trailer",
            "Keep-Alive",
            "Proxy-Authorization",
            "X-Forwarded-User",
            "X-Real-IP",
        ] {
            assert!(identity_header(bad).unwrap_err().contains("hop-by-hop"), "{bad}");
        }
        assert!(identity_header("bad header").unwrap_err().contains("not a header name"));
        assert!(identity_header("X_Loopwarden_User")
            .unwrap_err()
            .contains("not a header name"));
        assert_eq!(
            identity_header("X-Loopwarden-User").unwrap().as_str(),
            "x-loopwarden-user"
        );
    }

    #[test]
    fn foreign_preflights_are_refused_and_own_ones_pass() {
        let h = ("host", "localhost:8080");
        let acrm = ("access-control-request-method", "PUT");
        assert!(matches!(
            req("OPTIONS", "/", &[h, acrm, ("origin", "http://evil.example")]),
            Err(HttpRefusal::ForeignPreflight(_))
        ));
        assert!(matches!(
            req(
                "OPTIONS",
                "/",
                &[
                    h,
                    acrm,
                    ("origin", "http://evil.example"),
                    ("access-control-request-private-network", "true")
                ]
            ),
            Err(HttpRefusal::NetworkAccessPreflight(_))
        ));
        assert_eq!(
            req("OPTIONS", "/", &[h, acrm, ("origin", "https://app.example:443")]),
            Ok(())
        );
    }

    #[test]
    fn unix_fronts_accept_their_names_on_any_port() {
        let p = HttpPolicy::new(&HttpConfig::default(), None).unwrap();
        let mut m = HeaderMap::new();
        m.insert(HOST, HeaderValue::from_static("localhost"));
        assert_eq!(p.check(&Method::GET, &"/".parse().unwrap(), &m), Ok(()));
        m.insert(HOST, HeaderValue::from_static("evil.example"));
        assert!(p.check(&Method::GET, &"/".parse().unwrap(), &m).is_err());
    }

    #[test]
    fn claimed_identities_are_removed_and_the_proven_one_set() {
        let mut m = HeaderMap::new();
        for (k, v) in [
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-user", "admin"),
            ("x-real-ip", "1.2.3.4"),
            ("true-client-ip", "1.2.3.4"),
            ("x-client-ip", "1.2.3.4"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-loopwarden-user", "root"),
            ("x_loopwarden_user", "root"),
            ("x_forwarded_for", "1.2.3.4"),
            ("x_anything", "1"),
            ("accept", "*/*"),
        ] {
            m.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let name = HeaderName::from_static("x-loopwarden-user");
        scrub(&mut m, Some((&name, "alice")));
        let left: Vec<_> = m.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(left, vec![("accept", "*/*"), ("x-loopwarden-user", "alice")]);
    }

    proptest! {
        #[test]
        fn no_header_value_makes_the_check_panic(
            method in "[A-Z]{1,8}",
            host in proptest::collection::vec(any::<u8>(), 0..40),
            origin in proptest::collection::vec(any::<u8>(), 0..40),
            site in "(cross-site|same-origin|none|[a-z-]{0,12})",
        ) {
            let mut m = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&host) { m.insert(HOST, v); }
            if let Ok(v) = HeaderValue::from_bytes(&origin) { m.insert(ORIGIN, v); }
            m.insert("sec-fetch-site", HeaderValue::from_str(&site).unwrap());
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let _ = policy().check(&method, &Uri::from_static("/"), &m);
            if let Ok(text) = std::str::from_utf8(&host) { let _ = parse_origin(text); let _ = split_host(text); }
        }
    }
}
