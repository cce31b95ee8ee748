//! Load and timing tools for `bench/guard.sh` (loopback only, bounded in count and time):
//!
//! - `echo ADDR`                 an echo server that holds any number of connections
//! - `latency ADDR N`            N × (connect, write 1 byte, read it back, close): median/p99 in µs
//! - `lookup N`                  N exact inet_diag lookups of one connection: median in µs
//! - `relay ADDR UPSTREAM`      a bare relay (one thread, no identity check, plain copies): the
//!   floor any user-space proxy pays on this machine, to compare the guard's added latency with
//! - `hold ADDR N SECS`          opens N connections (each echoes one byte to prove it is
//!   through), holds them SECS seconds, then closes them
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str { args.get(i).map(String::as_str).unwrap_or_else(|| usage()) };
    match arg(0) {
        "echo" => echo(parse(arg(1))),
        "latency" => latency(parse(arg(1)), count(arg(2))),
        "lookup" => lookup(count(arg(1))),
        "relay" => relay(parse(arg(1)), parse(arg(2))),
        "hold" => hold(parse(arg(1)), count(arg(2)), count(arg(3)) as u64),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: guard_bench echo ADDR | relay ADDR UPSTREAM | latency ADDR N | lookup N | hold ADDR N SECS");
    std::process::exit(2)
}

fn parse(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|_| usage())
}

fn count(text: &str) -> usize {
    text.parse().unwrap_or_else(|_| usage())
}

fn echo(addr: SocketAddr) {
    serve(addr, |mut s| async move {
        let _ = s.set_nodelay(true);
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
}

fn relay(addr: SocketAddr, upstream: SocketAddr) {
    serve(addr, move |mut client| async move {
        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    })
}

/// Accepts on `addr` on one tokio thread, each connection handled by its own task.
fn serve<F, Fut>(addr: SocketAddr, handle: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(e));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| die(e));
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream));
            }
        }
    })
}

fn die(e: impl std::fmt::Display) -> ! {
    eprintln!("guard_bench: {e}");
    std::process::exit(1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn latency(addr: SocketAddr, n: usize) {
    let mut samples = Vec::with_capacity(n);
    let mut byte = [0u8; 1];
    for _ in 0..n {
        let start = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| die(e));
        s.set_nodelay(true).unwrap_or_else(|e| die(e));
        s.write_all(b"x").unwrap_or_else(|e| die(e));
        s.read_exact(&mut byte).unwrap_or_else(|e| die(e));
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "median_us={:.1} p99_us={:.1}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}

fn lookup(n: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die(e));
    let _client = TcpStream::connect(listener.local_addr().unwrap_or_else(|e| die(e))).unwrap_or_else(|e| die(e));
    let (accepted, peer) = listener.accept().unwrap_or_else(|e| die(e));
    let front = accepted.local_addr().unwrap_or_else(|e| die(e));
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        loopwarden_guard::identity::inet_diag::lookup(front, peer).unwrap_or_else(|e| die(e));
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "median_us={:.2} p99_us={:.2}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
}

fn hold(addr: SocketAddr, n: usize, secs: u64) {
    let mut held = Vec::with_capacity(n);
    let mut byte = [0u8; 1];
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| die(format!("connection {i}: {e}")));
        s.write_all(b"x")
            .unwrap_or_else(|e| die(format!("connection {i}: {e}")));
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| die(e));
        s.read_exact(&mut byte)
            .unwrap_or_else(|e| die(format!("connection {i} not served: {e}")));
        held.push(s);
    }
    println!("held={}", held.len());
    std::thread::sleep(Duration::from_secs(secs));
}
