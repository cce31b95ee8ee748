//! The answer an HTTP front gives a connection it refuses before serving any request (a peer
//! that is not admitted, or not identified): `403` (`429` over the per-user limit) with the
//! one-line reason, then close.
//!
//! The request head is read first, bounded in time and size, and the connection is closed
//! gently (write side first, then a short bounded read of whatever else the client sent): a
//! socket closed with unread bytes sends a reset, and a reset can make the client drop the answer
//! before reading it.

use super::check::HeadLimits;
use crate::policy::Refusal;
use hyper::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest wait for a refused client's request head (shorter than the header timeout: a
/// refused peer gets no more of the guard's time than needed to answer it).
const READ_HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a refused client to close after the answer.
const LINGER: Duration = Duration::from_millis(500);
/// Most bytes read from a refused client after the answer.
const LINGER_BYTES: usize = 64 * 1024;

/// The status a refused connection is answered with.
pub fn status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::PerUserLimit(_) => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Http(h) => h.status(),
        _ => StatusCode::FORBIDDEN,
    }
}

/// The whole response, as bytes.
pub fn response(refusal: &Refusal) -> Vec<u8> {
    let status = status(refusal);
    let body = format!("loopwarden guard: refused: {refusal}\n");
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'none'\r\nConnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Refused"),
        body.len()
    )
    .into_bytes()
}

/// Reads the request head, answers, and closes.
pub async fn answer<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, refusal: &Refusal, limits: HeadLimits) {
    let wait = limits.timeout.min(READ_HEAD_TIMEOUT);
    if tokio::time::timeout(wait, read_head(&mut io, limits.max_bytes))
        .await
        .is_err()
    {
        return; // nothing that looks like a request: closed unanswered
    }
    if io.write_all(&response(refusal)).await.is_err() {
        return;
    }
    let _ = io.shutdown().await;
    let _ = tokio::time::timeout(LINGER, drain(&mut io)).await;
}

/// Reads until the end of a request head (`\r\n\r\n`), the end of the stream, or `max` bytes.
async fn read_head<IO: AsyncRead + Unpin>(io: &mut IO, max: usize) {
    let mut seen = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while seen.len() < max {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let from = seen.len().saturating_sub(3);
                seen.extend_from_slice(&buf[..n]);
                if seen[from..].windows(4).any(|w| w == b"\r\n\r\n") {
                    return;
                }
            }
        }
    }
}

async fn drain<IO: AsyncRead + Unpin>(io: &mut IO) {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < LINGER_BYTES {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HeadLimits {
        HeadLimits {
            timeout: Duration::from_secs(1),
            max_bytes: 16 * 1024,
            max_headers: 100,
        }
    }

    #[test]
    fn a_refused_peer_gets_403_with_the_reason_after_its_head_is_read() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = runtime.block_on(async {
            let (mut client, server) = tokio::io::duplex(1 << 16);
            let task = tokio::spawn(async move { answer(server, &Refusal::NotAllowed, limits()).await });
            client
                .write_all(b"POST / HTTP/1.1\r\nHost: localhost:1\r\nContent-Length: 4\r\n\r\nbody")
                .await
                .unwrap();
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.unwrap();
            drop(client);
            task.await.unwrap();
            String::from_utf8(out).unwrap()
        });
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(
            out.ends_with("\r\n\r\nloopwarden guard: refused: not an allowed user or group\n"),
            "{out}"
        );
    }

    #[test]
    fn the_per_user_limit_is_429() {
        assert_eq!(status(&Refusal::PerUserLimit(2)), StatusCode::TOO_MANY_REQUESTS);
        assert!(String::from_utf8(response(&Refusal::PerUserLimit(2)))
            .unwrap()
            .starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
    }
}
