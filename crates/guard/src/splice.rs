//! Zero-copy forwarding of an admitted connection: both directions move through a pipe with
//! `splice(2)`, so the bytes never enter user space — the kernel moves page references from one
//! socket's receive queue to the other's send queue. Half-close is kept (a FIN one way shuts
//! down writing the other way, and the other direction goes on); an error either way resets the
//! other side.
//!
//! Pipes are taken from a per-thread pool only while bytes are in flight and given back empty,
//! so an idle connection holds no pipe (10,000 idle connections hold none at all).

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::Interest;

/// Pipe capacity asked for (`F_SETPIPE_SZ`; the default `pipe-max-size` allows it). Larger pipes
/// move more per system call.
const PIPE_SIZE: usize = 1 << 20;
/// Idle pipes kept per thread.
const POOL_MAX: usize = 32;

/// A stream tokio drives whose descriptor can be spliced: TCP and Unix stream sockets.
pub trait SpliceStream: AsRawFd {
    /// Waits until the socket may be readable.
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Waits until the socket may be writable.
    fn writable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// Runs a non-blocking operation, clearing readiness when it would block.
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

macro_rules! splice_stream {
    ($t:ty) => {
        impl SpliceStream for $t {
            fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
                <$t>::readable(self)
            }
            fn writable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
                <$t>::writable(self)
            }
            fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
                <$t>::try_io(self, interest, f)
            }
        }
    };
}
splice_stream!(tokio::net::TcpStream);
splice_stream!(tokio::net::UnixStream);

/// Bytes moved each way by [`forward`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Client to upstream.
    pub up: u64,
    /// Upstream to client.
    pub down: u64,
}

/// Forwards between `client` and `upstream` until both directions have ended.
pub async fn forward<A: SpliceStream + Sync, B: SpliceStream + Sync>(client: A, upstream: B) -> io::Result<Moved> {
    let (up, down) = tokio::join!(pump(&client, &upstream), pump(&upstream, &client));
    match (up, down) {
        (Ok(up), Ok(down)) => Ok(Moved { up, down }),
        (Err(e), _) | (_, Err(e)) => {
            reset(client.as_raw_fd());
            reset(upstream.as_raw_fd());
            Err(e)
        }
    }
}

/// One direction: splice `src` into a pipe and the pipe into `dst` until `src` ends, then shut
/// down writing on `dst`.
async fn pump<S: SpliceStream, D: SpliceStream>(src: &S, dst: &D) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        src.readable().await?;
        let pipe = take_pipe()?;
        let read = src.try_io(Interest::READABLE, || {
            splice(src.as_raw_fd(), pipe.write.as_raw_fd(), PIPE_SIZE)
        });
        let mut in_pipe = match read {
            Ok(0) => {
                give_pipe(pipe);
                shutdown_write(dst.as_raw_fd());
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                give_pipe(pipe);
                continue;
            }
            Err(e) => return Err(e),
        };
        total += in_pipe as u64;
        while in_pipe > 0 {
            match dst.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), dst.as_raw_fd(), in_pipe)
            }) {
                Ok(n) => in_pipe -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e), // the pipe still holds bytes: dropped, not pooled
            }
        }
        give_pipe(pipe);
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain descriptors, no offsets; the kernel validates both.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn shutdown_write(fd: RawFd) {
    // SAFETY: shutdown on a descriptor we hold; errors (already closed) do not matter.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// Makes the close of `fd` send a reset, so the other side learns the connection failed.
fn reset(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid linger struct of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// A pipe: the kernel buffer bytes pass through.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are new and ours.
        let pipe = unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        // A smaller pipe still works (the user's pipe budget may be spent): ignore failure.
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int) };
        Ok(pipe)
    }
}

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

fn take_pipe() -> io::Result<Pipe> {
    match POOL.with(|p| p.borrow_mut().pop()) {
        Some(pipe) => Ok(pipe),
        None => Pipe::new(),
    }
}

/// Returns an empty pipe to this thread's pool.
fn give_pipe(pipe: Pipe) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(pipe);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_pass_both_ways_and_half_close_is_kept() {
        let (mut client, guard_client) = pair().await;
        let (guard_up, mut server) = pair().await;
        let relay = tokio::spawn(forward(guard_client, guard_up));
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&payload).await.unwrap();
        client.shutdown().await.unwrap(); // half-close: the server sees EOF, may still answer
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, payload);
        server.write_all(b"answer after the client's FIN").await.unwrap();
        drop(server);
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer after the client's FIN");
        let moved = relay.await.unwrap().unwrap();
        assert_eq!(
            moved,
            Moved {
                up: 3_000_000,
                down: 29
            }
        );
    }
}
