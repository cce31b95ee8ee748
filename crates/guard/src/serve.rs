//! Accepting on a front: each connection is counted, its peer identified and judged before a
//! byte reaches the upstream, then forwarded — spliced (TCP mode) or served request by request
//! (HTTP mode).

use crate::front::Bound;
use crate::identity::{self, Peer};
use crate::policy::{Refusal, Slot};
use crate::splice;
use crate::state::{FrontState, Shared};
use crate::upstream::Stream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Pause after the process ran out of descriptors, before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A client connection of either kind; a TCP one with the front address it came to and its
/// own address (known from the listener and `accept`, so no system call asks again).
enum Client {
    Tcp(TcpStream, SocketAddr, SocketAddr),
    Unix(UnixStream),
}

/// Accepts on one socket of a front until the guard drains; then keeps the socket bound, without
/// accepting, until the guard exits: the port (or path) is never free for another user to take
/// while open connections finish, and connections made meanwhile wait in the backlog (for the
/// next instance, when a systemd `.socket` unit holds the sockets across restarts).
pub async fn accept_loop(bound: Bound, front: Arc<FrontState>, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut draining = shared.draining.clone();
    match bound {
        Bound::Tcp(l) => {
            let listener = TcpListener::from_std(l)?;
            // Bound to one loopback address (never a wildcard): every accepted socket has it.
            let local = listener.local_addr()?;
            loop {
                let accepted = tokio::select! {
                    r = listener.accept() => r,
                    _ = crate::state::drained(&mut draining) => break,
                };
                match accepted {
                    Ok((stream, peer)) => spawn(Client::Tcp(stream, local, peer), &front, &shared),
                    Err(e) => backoff(&shared, &front, e).await,
                }
            }
            hold(listener).await
        }
        Bound::Unix(l) => {
            let listener = UnixListener::from_std(l)?;
            loop {
                let accepted = tokio::select! {
                    r = listener.accept() => r,
                    _ = crate::state::drained(&mut draining) => break,
                };
                match accepted {
                    Ok((stream, _)) => spawn(Client::Unix(stream), &front, &shared),
                    Err(e) => backoff(&shared, &front, e).await,
                }
            }
            hold(listener).await
        }
    }
}

/// Keeps a listening socket open until the worker's runtime ends (at the guard's exit).
async fn hold<L>(listener: L) -> std::io::Result<()> {
    let _held = listener;
    std::future::pending().await
}

/// Out of descriptors or memory: the connection stays in the backlog; wait a little rather
/// than spin.
async fn backoff(shared: &Shared, front: &FrontState, e: std::io::Error) {
    if shared.refusal_log.permit(&shared.name) {
        crate::logln!(
            "loopwarden guard {} front {}: accept failed: {e}",
            shared.name,
            front.config.name
        );
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

fn spawn(client: Client, front: &Arc<FrontState>, shared: &Arc<Shared>) {
    let (front, shared) = (Arc::clone(front), Arc::clone(shared));
    tokio::spawn(async move { handle(client, front, shared).await });
}

async fn handle(client: Client, front: Arc<FrontState>, shared: Arc<Shared>) {
    front.counters.accepted();
    let policy = front.policy();
    let mut slot = match front.occupancy.enter(policy.max_conns) {
        Ok(slot) => slot,
        // Overloaded: closed at once, without reading (answering would hold more).
        Err(refusal) => return shared.refuse(&front, None, &refusal).await,
    };
    // A refused connection gives its slot back before it is answered: refused users cannot
    // hold --max-conns.
    let peer = match identify(&client, &shared) {
        Ok(peer) => peer,
        Err(why) => {
            drop(slot);
            return refuse(client, &front, &shared, None, Refusal::Unidentified(why)).await;
        }
    };
    if !policy.admits(&peer) {
        drop(slot);
        return refuse(client, &front, &shared, Some(peer), Refusal::NotAllowed).await;
    }
    if let Err(refusal) = front.occupancy.admit_user(&mut slot, peer.uid, policy.max_per_user) {
        drop(slot);
        return refuse(client, &front, &shared, Some(peer), refusal).await;
    }
    front.counters.allowed();
    if policy.http.is_some() {
        match client {
            Client::Tcp(s, ..) => {
                let _ = s.set_nodelay(true);
                crate::http::serve(s, peer, front, shared).await
            }
            Client::Unix(s) => crate::http::serve(s, peer, front, shared).await,
        }
    } else {
        forward(client, &front, &shared, slot).await
    }
}

/// Refuses a connection: logged and counted; in HTTP mode answered with a status and the
/// one-line reason (the request head is read first, so the answer is not lost to a reset) —
/// at most [`crate::policy::REFUSED_ANSWERED_PER_USER`] at once per uid, the others closed at
/// once; in TCP mode closed (the client sees a reset or an end of stream).
async fn refuse(client: Client, front: &Arc<FrontState>, shared: &Arc<Shared>, peer: Option<Peer>, refusal: Refusal) {
    let uid = peer.as_ref().map(|p| p.uid);
    shared.refuse(front, peer, &refusal).await;
    let policy = front.policy();
    let Some(http) = policy.http.as_ref() else {
        return;
    };
    let Some(_answering) = front.occupancy.answering(uid) else {
        return;
    };
    match client {
        Client::Tcp(s, ..) => crate::http::refused::answer(s, &refusal, http.limits).await,
        Client::Unix(s) => crate::http::refused::answer(s, &refusal, http.limits).await,
    }
}

fn identify(client: &Client, shared: &Shared) -> Result<Peer, String> {
    match client {
        Client::Tcp(_, local, remote) => identity::tcp_peer(*local, *remote, &shared.accounts),
        Client::Unix(s) => identity::unix_peer(s),
    }
}

/// TCP mode: connect the upstream and splice both ways; the slot is held until the end. An
/// upstream held by another user than the service's is never sent a byte: the client is
/// closed.
async fn forward(client: Client, front: &Arc<FrontState>, shared: &Arc<Shared>, _slot: Slot) {
    let Ok(upstream) = front.connect_upstream(shared).await else {
        return;
    };
    let result = match (client, upstream) {
        (Client::Tcp(c, ..), Stream::Tcp(u)) => {
            let _ = c.set_nodelay(true);
            splice::forward(c, u).await
        }
        (Client::Tcp(c, ..), Stream::Unix(u)) => {
            let _ = c.set_nodelay(true);
            splice::forward(c, u).await
        }
        (Client::Unix(c), Stream::Tcp(u)) => splice::forward(c, u).await,
        (Client::Unix(c), Stream::Unix(u)) => splice::forward(c, u).await,
    };
    let _ = result; // a reset mid-stream is the peers' business; both sides are closed now
}
