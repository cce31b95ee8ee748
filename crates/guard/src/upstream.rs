//! Connecting a front's upstream — and making sure it is still the service's.
//!
//! When the service stops, any user may bind its port (a firewall `--allow` restricts who
//! connects, not who binds) and would receive the allowed users' requests with their
//! `Authorization`, cookies and the identity header. So every upstream connection is checked
//! before a byte is sent on it: a TCP upstream's receiving end is looked up with one exact
//! `inet_diag` request ([`crate::identity::inet_diag::listener_uid`]: the uid of the listener
//! that really took the connection), a Unix upstream's with `SO_PEERCRED`; a connection held
//! by another uid than the expected [`Owner`] is closed unused.

use crate::endpoint::Upstream;
use crate::identity;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::{TcpStream, UnixStream};

/// Bound on connecting to the upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server's end of a fresh loopback connection may stay a request socket (its
/// uid unknown) before the connection is given up.
const HANDSHAKE_WAIT: Duration = Duration::from_millis(200);

/// A connected, verified upstream stream.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix connection.
    Unix(UnixStream),
}

/// Why no upstream connection is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answered (or too slowly).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Something answered, held by another user than the service's.
    #[error("{0}")]
    WrongOwner(String),
}

/// Who must hold the upstream: named by the operator (`--upstream-user`), or pinned to the uid
/// that held it when the guard first connected.
#[derive(Debug)]
pub struct Owner {
    given: Option<u32>,
    pinned: Mutex<Option<u32>>,
}

impl Owner {
    /// The owner named by the operator.
    pub fn given(uid: u32) -> Owner {
        Owner {
            given: Some(uid),
            pinned: Mutex::new(None),
        }
    }

    /// No owner named: the first uid seen holding the upstream is pinned.
    pub fn first_seen() -> Owner {
        Owner {
            given: None,
            pinned: Mutex::new(None),
        }
    }

    /// The uid expected now (`None`: none seen yet).
    pub fn expected(&self) -> Option<u32> {
        self.given
            .or_else(|| *self.pinned.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Judges the uid holding a fresh upstream connection. `Ok(true)`: it was pinned just now.
    fn judge(&self, found: u32, upstream: &Upstream) -> Result<bool, ConnectError> {
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        let (expected, why) = match (self.given, *pinned) {
            (Some(uid), _) => (uid, "--upstream-user"),
            (None, Some(uid)) => (uid, "the user that held it when the guard first connected"),
            (None, None) => {
                *pinned = Some(found);
                return Ok(true);
            }
        };
        if found == expected {
            return Ok(false);
        }
        Err(ConnectError::WrongOwner(format!(
            "{upstream} is now held by {}, not by {} ({why}): the service stopped and another user took its \
             place — nothing was sent to it (restart the guard, or give --upstream-user, if the service's \
             user really changed)",
            crate::accounts::describe(found),
            crate::accounts::describe(expected)
        )))
    }
}

/// Connects the upstream and checks who holds it. `pinned` is called with the uid when this
/// connection pinned the owner (for a log line).
pub async fn connect(upstream: &Upstream, owner: &Owner, pinned: impl FnOnce(u32)) -> Result<Stream, ConnectError> {
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, open(upstream))
        .await
        .map_err(|_| ConnectError::Unreachable(format!("no connection within {}s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
    let uid = holder(&connected).await?;
    if owner.judge(uid, upstream)? {
        pinned(uid);
    }
    Ok(connected)
}

async fn open(upstream: &Upstream) -> std::io::Result<Stream> {
    Ok(match upstream {
        Upstream::Tcp(addr) => {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Stream::Tcp(s)
        }
        Upstream::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
    })
}

/// The uid of whoever took the connection.
async fn holder(stream: &Stream) -> Result<u32, ConnectError> {
    let unverified = |e: String| ConnectError::WrongOwner(format!("cannot tell who holds the upstream: {e}"));
    match stream {
        Stream::Unix(s) => identity::unix::peer(s)
            .map(|c| c.uid)
            .map_err(|e| unverified(format!("SO_PEERCRED failed: {e}"))),
        Stream::Tcp(s) => {
            let local = s.local_addr().map_err(|e| unverified(e.to_string()))?;
            let server = s.peer_addr().map_err(|e| unverified(e.to_string()))?;
            let deadline = tokio::time::Instant::now() + HANDSHAKE_WAIT;
            loop {
                match identity::inet_diag::listener_uid(local, server) {
                    Ok(Some(uid)) => return Ok(uid),
                    Ok(None) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(1)).await
                    }
                    Ok(None) => return Err(unverified("the server never completed the handshake".into())),
                    Err(e) => return Err(unverified(e.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_uid() -> u32 {
        rustix::process::getuid().as_raw()
    }

    #[tokio::test]
    async fn the_first_holder_is_pinned_and_another_uid_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = Upstream::Tcp(listener.local_addr().unwrap());
        let owner = Owner::first_seen();
        let mut seen = None;
        connect(&upstream, &owner, |uid| seen = Some(uid)).await.unwrap();
        assert_eq!((seen, owner.expected()), (Some(own_uid()), Some(own_uid())));
        let other = Owner::given(own_uid().wrapping_add(4242));
        let err = connect(&upstream, &other, |_| {}).await.unwrap_err();
        assert!(
            matches!(&err, ConnectError::WrongOwner(m) if m.contains("--upstream-user")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_unix_upstream_is_judged_by_its_peer_credentials() {
        let dir = std::env::temp_dir().join(format!("lwg-upstream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let upstream = Upstream::Unix(path.clone());
        assert!(connect(&upstream, &Owner::given(own_uid()), |_| {}).await.is_ok());
        let err = connect(&upstream, &Owner::given(own_uid().wrapping_add(1)), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::WrongOwner(_)), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
