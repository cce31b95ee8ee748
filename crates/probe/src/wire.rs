//! Connections and bounded exchanges: every read has a deadline and a byte cap.

use crate::http::{chunked_complete, parse_head, BodyFraming, Head, Request, Response};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// The most body bytes a probe keeps from one response.
pub const MAX_BODY: usize = 8 * 1024;

/// A byte stream to a service: plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Plain HTTP or HTTP over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`.
    Http,
    /// `https://` (certificate not verified).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Time and size bounds of every exchange, and the `--verbose` switch.
#[derive(Clone)]
pub struct Wire {
    /// Bound on connecting (and on the TLS handshake).
    pub connect_timeout: Duration,
    /// Bound on one whole exchange after connecting.
    pub io_timeout: Duration,
    /// Log a line per request on stderr.
    pub verbose: bool,
    /// TLS without certificate verification.
    pub tls: TlsConnector,
    /// Bounds the connections open at once, across all probes.
    pub permits: Arc<Semaphore>,
}

/// An open connection, holding one of the [`Wire::permits`] until dropped.
pub struct Conn {
    /// The byte stream.
    pub io: Box<dyn Io>,
    _permit: OwnedSemaphorePermit,
}

/// What a service answered to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP response.
    Http(Response),
    /// Bytes that are not HTTP (a banner, a TLS alert, a binary protocol), first bytes only.
    Other(Vec<u8>),
    /// The connection closed before any byte came back.
    Closed,
    /// Nothing came back within the deadline.
    Silent,
    /// The connection (or TLS handshake) failed.
    Failed(String),
}

impl Answer {
    /// The response, when the answer was HTTP.
    pub fn response(&self) -> Option<&Response> {
        match self {
            Answer::Http(r) => Some(r),
            _ => None,
        }
    }

    /// A short description for logs and evidence.
    pub fn describe(&self) -> String {
        match self {
            Answer::Http(r) => format!("HTTP {}", r.status_line()),
            Answer::Other(bytes) => format!("non-HTTP bytes {}", printable(bytes)),
            Answer::Closed => "closed without answering".to_string(),
            Answer::Silent => "no answer before the deadline".to_string(),
            Answer::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// The first bytes of a non-HTTP answer, printable ASCII kept, others as `\xNN`.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes.iter().take(24) {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

impl Wire {
    /// Opens a connection to `addr`, with TLS when `scheme` says so.
    pub async fn connect(&self, addr: SocketAddr, scheme: Scheme) -> io::Result<Conn> {
        self.connect_from(addr, None, scheme).await
    }

    /// As [`Wire::connect`], from `source` when given (a loopback address other than the one a
    /// server would take for the client's own).
    pub async fn connect_from(&self, addr: SocketAddr, source: Option<IpAddr>, scheme: Scheme) -> io::Result<Conn> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("probe concurrency limiter closed"))?;
        let deadline = Instant::now() + self.connect_timeout;
        let connecting = async {
            match source {
                None => TcpStream::connect(addr).await,
                Some(ip) => {
                    let socket = if ip.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()?
                    } else {
                        tokio::net::TcpSocket::new_v6()?
                    };
                    socket.bind(SocketAddr::new(ip, 0))?;
                    socket.connect(addr).await
                }
            }
        };
        let tcp = timeout_at(deadline, connecting)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = tcp.set_nodelay(true);
        match scheme {
            Scheme::Http => Ok(Conn {
                io: Box::new(tcp),
                _permit: permit,
            }),
            Scheme::Https => {
                let name = ServerName::IpAddress(addr.ip().into());
                let tls = timeout_at(deadline, self.tls.connect(name, tcp))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
                Ok(Conn {
                    io: Box::new(tls),
                    _permit: permit,
                })
            }
        }
    }

    /// Sends one request on a fresh connection and reads the answer (head and a bounded body).
    pub async fn exchange(&self, addr: SocketAddr, scheme: Scheme, request: &Request) -> Answer {
        let answer = match self.connect(addr, scheme).await {
            Ok(mut conn) => {
                self.send_and_read(&mut conn, &request.to_bytes(), request.method)
                    .await
                    .0
            }
            Err(e) => Answer::Failed(e.to_string()),
        };
        self.log(addr, scheme.as_str(), &request.summary(), &answer.describe());
        answer
    }

    /// Writes `bytes` on `io` and reads an HTTP answer to a request with `method`. Returns the
    /// answer and, for a response without a body (an accepted CONNECT), bytes already read past
    /// its head.
    pub async fn send_and_read(&self, conn: &mut Conn, bytes: &[u8], method: &str) -> (Answer, Vec<u8>) {
        let deadline = Instant::now() + self.io_timeout;
        match timeout_at(deadline, conn.io.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return (Answer::Failed(e.to_string()), Vec::new()),
            Err(_) => return (Answer::Silent, Vec::new()),
        }
        read_response(&mut conn.io, deadline, method).await
    }

    /// Writes `bytes` and reads exactly `n` bytes back (a SOCKS exchange), within the deadline.
    pub async fn send_and_read_exact(&self, conn: &mut Conn, bytes: &[u8], n: usize) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + self.io_timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "no answer before the deadline");
        if !bytes.is_empty() {
            timeout_at(deadline, conn.io.write_all(bytes))
                .await
                .map_err(|_| timed_out())??;
        }
        let mut buf = vec![0u8; n];
        timeout_at(deadline, conn.io.read_exact(&mut buf))
            .await
            .map_err(|_| timed_out())??;
        Ok(buf)
    }

    /// Logs one request and its outcome when verbose, escaped: the outcome quotes what the
    /// listener answered, which is not to reach the terminal raw.
    pub fn log(&self, addr: SocketAddr, what: &str, request: &str, outcome: &str) {
        if self.verbose {
            let line = format!("loopwarden probe: {addr} {what} {request} -> {outcome}");
            eprintln!("{}", loopwarden_core::report::shown::line(&line));
        }
    }
}

/// Reads one response: the head (at most [`crate::http::MAX_HEAD`] bytes) and up to
/// [`MAX_BODY`] body bytes, all before `deadline`.
async fn read_response(io: &mut Box<dyn Io>, deadline: Instant, method: &str) -> (Answer, Vec<u8>) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (mut response, head_len) = loop {
        match timeout_at(deadline, io.read(&mut chunk)).await {
            Err(_) if buf.is_empty() => return (Answer::Silent, Vec::new()),
            Err(_) => return (Answer::Other(buf), Vec::new()),
            Ok(Err(e)) if buf.is_empty() => return (Answer::Failed(e.to_string()), Vec::new()),
            Ok(Err(_)) | Ok(Ok(0)) if !buf.is_empty() => return (Answer::Other(buf), Vec::new()),
            Ok(Ok(0)) => return (Answer::Closed, Vec::new()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return (Answer::Failed(e.to_string()), Vec::new()),
        }
        match parse_head(&buf) {
            Head::Complete(resp, len) => break (resp, len),
            Head::Partial => continue,
            Head::NotHttp => return (Answer::Other(buf), Vec::new()),
        }
    };
    let rest = buf.split_off(head_len);
    let framing = response.body_framing(method);
    if framing == BodyFraming::None {
        return (Answer::Http(response), rest);
    }
    let mut body = rest;
    loop {
        let done = match framing {
            BodyFraming::Length(len) => body.len() >= len.min(MAX_BODY),
            BodyFraming::Chunked => chunked_complete(&body),
            _ => false,
        };
        if done || body.len() >= MAX_BODY {
            break;
        }
        match timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    body.truncate(MAX_BODY);
    response.body = body;
    (Answer::Http(response), Vec::new())
}
