//! HTTP fronts: an admitted connection is served by hyper, every request is checked
//! ([`check`]) and forwarded on one upstream connection per client connection (keep-alive both
//! sides). Refusals are answered with 421/403/400 and a one-line reason; an unreachable upstream
//! with 502. Allowed WebSocket (and other) upgrades and streaming bodies pass through untouched.
//!
//! hyper normalises header case on the way (HTTP header names are case-insensitive; a proxy
//! may), and enforces the head limits: `header_read_timeout` (slowloris), `max_header_size`,
//! `max_headers` (431).

pub mod check;
pub mod refused;

use crate::identity::Peer;
use crate::policy::Refusal;
use crate::state::{FrontState, Shared};
use crate::upstream::{ConnectError, Stream};
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Response bodies: the upstream's, streamed, or a refusal text (no boxing on the hot path).
type Body = Either<Incoming, Full<Bytes>>;

/// Headers that concern one hop only and are never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    hyper::header::TE,
    hyper::header::TRAILER,
    hyper::header::TRANSFER_ENCODING,
    hyper::header::UPGRADE,
];

/// One client connection: who it is and its upstream connection.
struct Conn {
    peer: Peer,
    identity: String,
    upstream: tokio::sync::Mutex<Option<SendRequest<Incoming>>>,
    logged: AtomicBool,
}

/// Serves an admitted client connection until it ends or the guard drains.
pub async fn serve<IO>(io: IO, peer: Peer, front: Arc<FrontState>, shared: Arc<Shared>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(limits) = front.policy().http.as_ref().map(|h| h.limits) else {
        return;
    };
    let conn = Arc::new(Conn {
        identity: peer.identity(),
        peer,
        upstream: tokio::sync::Mutex::new(None),
        logged: AtomicBool::new(false),
    });
    let (front2, shared2) = (Arc::clone(&front), Arc::clone(&shared));
    let service = hyper::service::service_fn(move |req| {
        let (conn, front, shared) = (Arc::clone(&conn), Arc::clone(&front2), Arc::clone(&shared2));
        async move { Ok::<_, Infallible>(handle(req, &conn, &front, &shared).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.timeout)
        // A client that sends its request and shuts down writing still gets the answer.
        .half_close(true)
        .max_header_size(limits.max_bytes)
        .max_buf_size(limits.max_bytes.max(64 * 1024));
    if limits.max_headers != crate::config::DEFAULT_MAX_HEADERS {
        builder.max_headers(limits.max_headers);
    }
    let connection = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(connection);
    let mut draining = shared.draining.clone();
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = crate::state::drained(&mut draining) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

async fn handle(
    mut req: Request<Incoming>,
    conn: &Conn,
    front: &Arc<FrontState>,
    shared: &Arc<Shared>,
) -> Response<Body> {
    let policy = front.policy();
    let Some(http) = policy.http.as_ref() else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "loopwarden guard: front has no HTTP policy",
        );
    };
    // A reload may have removed this user: every request is judged by the policy in force.
    let refusal = if !policy.admits(&conn.peer) {
        Some(Refusal::NotAllowed)
    } else {
        http.check(req.method(), req.uri(), req.headers())
            .err()
            .map(Refusal::Http)
    };
    if let Some(refusal) = refusal {
        let status = match &refusal {
            Refusal::Http(h) => h.status(),
            _ => StatusCode::FORBIDDEN,
        };
        if conn.logged.swap(true, Ordering::Relaxed) {
            front.counters.refused(refusal.key());
        } else {
            shared.refuse(front, Some(conn.peer.clone()), &refusal).await;
        }
        return text(status, &format!("loopwarden guard: refused: {refusal}"));
    }
    let upgrade = check::is_upgrade(req.headers());
    // Hop-by-hop first: a `Connection` token naming the identity header must not remove the
    // one the guard adds.
    strip_hop_by_hop(req.headers_mut(), upgrade);
    check::scrub(
        req.headers_mut(),
        http.identity_header.as_ref().map(|h| (h, conn.identity.as_str())),
    );
    if req.uri().authority().is_some() {
        // Absolute-form (already checked against the allowed hosts): the upstream gets the path.
        let path = req.uri().path_and_query().cloned();
        *req.uri_mut() = path.map_or_else(|| Uri::from_static("/"), Uri::from);
    }
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut slot = conn.upstream.lock().await;
    let mut resp = match send(&mut slot, req, front, shared).await {
        Ok(resp) => resp,
        Err(failed) => {
            *slot = None;
            if let SendError::Exchange(why) = &failed {
                front.counters.upstream_error();
                crate::logln!(
                    "loopwarden guard {} front {}: upstream {}: {why}",
                    shared.name,
                    front.config.name,
                    front.config.upstream
                );
            }
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("loopwarden guard: upstream {}: {failed}", front.config.upstream),
            );
        }
    };
    front.counters.request();
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = client_upgrade {
            *slot = None; // the upstream connection now belongs to the upgraded stream
            let upstream_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(c), Ok(u)) = tokio::join!(client_side, upstream_side) {
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(u)).await;
                }
            });
        }
    } else {
        strip_hop_by_hop(resp.headers_mut(), false);
        if !http.allow_framing {
            deny_framing(resp.headers_mut());
        }
    }
    resp.map(Either::Left)
}

/// Forbids other pages to frame the answer (`X-Frame-Options: DENY`, CSP `frame-ancestors
/// 'none'`), unless the service already says who may frame it.
fn deny_framing(headers: &mut HeaderMap) {
    let says = headers.contains_key(hyper::header::X_FRAME_OPTIONS)
        || headers.get_all(hyper::header::CONTENT_SECURITY_POLICY).iter().any(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .to_ascii_lowercase()
                .contains("frame-ancestors")
        });
    if !says {
        headers.insert(hyper::header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.append(
            hyper::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
}

/// Sends on the connection's upstream, (re)connecting when there is none or it closed. A
/// request the closed connection did not take is sent once more on a fresh one.
async fn send(
    slot: &mut Option<SendRequest<Incoming>>,
    req: Request<Incoming>,
    front: &FrontState,
    shared: &Shared,
) -> Result<Response<Incoming>, SendError> {
    let mut req = req;
    for _ in 0..2 {
        if slot.as_ref().is_none_or(SendRequest::is_closed) {
            *slot = Some(connect(front, shared).await?);
        }
        let Some(sender) = slot.as_mut() else {
            return Err(SendError::Exchange("no upstream connection".into()));
        };
        if sender.ready().await.is_err() {
            *slot = None;
            continue;
        }
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok(resp),
            Err(mut e) => match e.take_message() {
                Some(back) => {
                    req = back;
                    *slot = None;
                }
                None => return Err(SendError::Exchange(e.into_error().to_string())),
            },
        }
    }
    Err(SendError::Exchange("the upstream closed every connection".into()))
}

/// Why a request got no answer from the upstream.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// No (acceptable) connection: already counted and logged by
    /// [`FrontState::connect_upstream`].
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection failed during the exchange.
    #[error("{0}")]
    Exchange(String),
}

/// Opens an upstream connection (checked: [`FrontState::connect_upstream`]) and drives it on its
/// own task.
async fn connect(front: &FrontState, shared: &Shared) -> Result<SendRequest<Incoming>, SendError> {
    let handshaken = match front.connect_upstream(shared).await? {
        Stream::Tcp(s) => handshake(s).await,
        Stream::Unix(s) => handshake(s).await,
    };
    handshaken.map_err(SendError::Exchange)
}

async fn handshake<T>(io: T) -> Result<SendRequest<Incoming>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

/// Headers a `Connection` token may not remove: the request's target and framing.
const END_TO_END: [HeaderName; 2] = [hyper::header::HOST, hyper::header::CONTENT_LENGTH];

/// Removes hop-by-hop headers and those the `Connection` header names (never `Host` or
/// `Content-Length`); an upgrade request keeps `Connection: upgrade` and `Upgrade`, which the
/// upstream must see.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Read first: `Connection: upgrade` names the Upgrade header among those removed below.
    let upgrade_value = if upgrade {
        headers.get(hyper::header::UPGRADE).cloned()
    } else {
        None
    };
    if headers.contains_key(CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|name| !END_TO_END.contains(name))
            .collect();
        for name in &listed {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        if let Some(v) = upgrade_value {
            headers.insert(hyper::header::UPGRADE, v);
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(format!("{message}\n")))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    deny_framing(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FrontConfig, HttpConfig, SocketFileConfig};
    use crate::endpoint::{Listen, Upstream};
    use crate::policy::Policy;
    use crate::upstream::Owner;
    use proptest::prelude::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `input` as one client connection (the upstream is a closed port) and returns what
    /// the guard answered.
    fn serve_bytes(input: Vec<u8>) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let config = FrontConfig {
                name: "fuzz".into(),
                listen: Listen::Tcp(8080),
                upstream: Upstream::Tcp("127.0.0.1:1".parse().unwrap()),
                allow_users: vec!["0".into()],
                allow_groups: vec![],
                http: Some(HttpConfig {
                    header_timeout: Duration::from_millis(300),
                    ..HttpConfig::default()
                }),
                max_conns: 10,
                upstream_user: None,
                max_conns_per_user: None,
                socket: SocketFileConfig::default(),
            };
            let policy = Policy::resolve(&config).unwrap();
            let endpoints = config.listen.published();
            let front = Arc::new(FrontState::new(config, policy, endpoints, Owner::first_seen()));
            let (_tx, draining) = tokio::sync::watch::channel(false);
            let shared = Arc::new(Shared {
                name: "fuzz".into(),
                accounts: Default::default(),
                refusal_log: Default::default(),
                draining,
            });
            let peer = Peer {
                uid: 0,
                user: Some("root".into()),
                gids: vec![0],
                pid: None,
                process: None,
                from: "test".into(),
                inode: None,
            };
            let (mut client, server) = tokio::io::duplex(1 << 16);
            let task = tokio::spawn(serve(server, peer, front, shared));
            client.write_all(&input).await.unwrap();
            client.shutdown().await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out)).await;
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("connection ends")
                .expect("no panic");
            out
        })
    }

    #[test]
    fn a_foreign_host_is_answered_421_and_an_allowed_one_reaches_for_the_upstream() {
        let out = serve_bytes(b"GET / HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n".to_vec());
        assert!(out.starts_with(b"HTTP/1.1 421"), "{}", String::from_utf8_lossy(&out));
        let out = serve_bytes(b"GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n".to_vec());
        assert!(out.starts_with(b"HTTP/1.1 502"), "{}", String::from_utf8_lossy(&out));
    }

    fn request_like() -> impl Strategy<Value = Vec<u8>> {
        let method = prop_oneof!["GET", "POST", "OPTIONS", "CONNECT", "G\0T", "[A-Z]{1,10}"];
        let target = prop_oneof!["/", "http://evil.example/", "\\*", "[ -~]{0,30}"];
        let header = ("[A-Za-z-]{0,12}", proptest::collection::vec(any::<u8>(), 0..24));
        (
            method,
            target,
            proptest::collection::vec(header, 0..12),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(m, t, headers, tail)| {
                let mut out = format!("{m} {t} HTTP/1.1\r\n").into_bytes();
                for (name, value) in headers {
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(&value);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&tail);
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn no_request_head_makes_the_guard_panic(input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            request_like(),
        ]) {
            let out = serve_bytes(input);
            // Whatever came in, the answer is empty (closed) or an HTTP response.
            prop_assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&out));
        }
    }
}
