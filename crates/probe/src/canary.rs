//! The canary: a loopback listener loopwarden opens itself, answering every connection with a
//! random token. A relay is proven only by carrying that token back — so relay probes never send
//! anything through to the host's own services.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// A running canary; stops listening when dropped.
pub struct Canary {
    /// Where it listens first: `127.0.0.1:<ephemeral port>`.
    pub addr: SocketAddr,
    /// The token it answers with, unique to this run.
    pub token: String,
    /// Every spelling of a loopback destination that reaches the canary, for relay probes: a
    /// proxy that denies `127.0.0.1` and `localhost` by pattern may still relay `127.0.0.2`,
    /// `[::1]` or the decimal `2130706433`.
    pub hosts: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Canary {
    /// Opens the canary on an ephemeral loopback port with a fresh random token.
    /// The same port is also opened on `127.0.0.2` and `[::1]` where the host allows it (only
    /// loopback addresses, never a wildcard).
    pub async fn open() -> io::Result<Canary> {
        let token = format!("loopwarden-canary-{}", random_hex(16)?);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
            token.len()
        );
        let mut hosts = vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "2130706433".to_string(),
        ];
        let mut listeners = vec![listener];
        for (host, ip) in [
            ("127.0.0.2", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
            ("[::1]", IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ] {
            if let Ok(extra) = TcpListener::bind(SocketAddr::new(ip, addr.port())).await {
                hosts.push(host.to_string());
                listeners.push(extra);
            }
        }
        let tasks = listeners
            .into_iter()
            .map(|listener| {
                let reply = reply.clone();
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(answer(stream, reply.clone()));
                    }
                })
            })
            .collect();
        Ok(Canary {
            addr,
            token,
            hosts,
            tasks,
        })
    }

    /// Whether `bytes` carry this canary's token.
    pub fn seen_in(&self, bytes: &[u8]) -> bool {
        let token = self.token.as_bytes();
        bytes.windows(token.len()).any(|w| w == token)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Reads the relayed request (bounded: 4 KiB, 2 s, up to the end of its head) and answers with
/// the token as an HTTP response, which also serves a raw tunnel.
async fn answer(mut stream: TcpStream, reply: String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let _ = timeout(Duration::from_secs(2), async {
        while buf.len() < 4096 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
    })
    .await;
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// `n` random bytes from the kernel, as hex.
fn random_hex(n: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
