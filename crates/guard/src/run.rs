//! Running a guard: bind every front first (fail loudly before serving anything), warn about
//! upstreams reachable around it, then serve until SIGTERM/SIGINT (drain) with SIGHUP reloading
//! the policy.

use crate::config::{self, ConfigError, GuardConfig};
use crate::exposure::{self, GuardUser};
use crate::front::{self, Bound};
use crate::policy::Policy;
use crate::state::{FrontState, Shared};
use crate::status;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How often the status file is rewritten.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Where the configuration comes from: a file (re-read on SIGHUP) or the command line (names
/// resolved again on SIGHUP).
#[derive(Debug, Clone)]
pub enum Source {
    /// A TOML file.
    File(PathBuf),
    /// Built from command-line options.
    Fixed(GuardConfig),
}

impl Source {
    fn load(&self) -> Result<GuardConfig, ConfigError> {
        match self {
            Source::File(path) => config::load(path),
            Source::Fixed(c) => {
                config::validate(c)?;
                Ok(c.clone())
            }
        }
    }
}

/// Why a guard could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A front could not be bound.
    #[error("{0}")]
    Bind(String),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs a guard until SIGTERM or SIGINT, then drains.
pub fn run(source: Source) -> Result<(), RunError> {
    let config = source.load()?;
    let policies = config
        .fronts
        .iter()
        .map(Policy::resolve)
        .collect::<Result<Vec<_>, _>>()?;
    let mut inherited = front::systemd_sockets().map_err(RunError::Bind)?;
    let mut bound: Vec<Vec<Bound>> = Vec::new();
    for f in &config.fronts {
        bound.push(front::bind(f, &mut inherited).map_err(|e| RunError::Bind(format!("front {:?}: {e}", f.name)))?);
    }
    if let Some(extra) = inherited.first() {
        let addr = socket2::SockRef::from(extra).local_addr().ok();
        return Err(RunError::Bind(format!(
            "systemd passed a socket no front listens on ({})",
            addr.and_then(|a| a.as_socket().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown address".into())
        )));
    }
    raise_fd_limit();
    let me = whoami();
    for w in startup_warnings(&config, &me) {
        eprintln!("loopwarden guard {}: {w}", config.name);
    }
    let status_dir = match status::directory(config.status_dir.as_deref(), &config.name) {
        Ok(d) => Some(d),
        Err(why) => {
            eprintln!("loopwarden guard {}: status not published ({why}); `guard --status` and the audit will not see this guard", config.name);
            None
        }
    };
    let fronts: Vec<Arc<FrontState>> = config
        .fronts
        .iter()
        .cloned()
        .zip(policies)
        .map(|(c, p)| Arc::new(FrontState::new(c, p)))
        .collect();
    let (drain_tx, draining) = tokio::sync::watch::channel(false);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        name: config.name.clone(),
        accounts: Default::default(),
        refusal_log: Default::default(),
        draining,
    });
    for (front, sockets) in fronts.iter().zip(&bound) {
        let names: Vec<String> = sockets.iter().map(Bound::describe).collect();
        eprintln!(
            "loopwarden guard {}: front {} listening on {} -> {} ({}), allowing {}",
            config.name,
            front.config.name,
            names.join(" and "),
            front.config.upstream,
            if front.config.http.is_some() {
                "http"
            } else {
                "tcp, spliced"
            },
            allowed(&front.policy())
        );
    }
    let workers = start_workers(config.workers, &fronts, &bound, &shared, &stop)?;
    drop(bound);
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let result = control.block_on(control_loop(
        source,
        &config,
        &fronts,
        &shared,
        drain_tx,
        status_dir.clone(),
        me,
    ));
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.join();
    }
    if let Some(dir) = status_dir {
        status::remove(&dir);
    }
    result
}

/// One worker thread per core, each with a single-threaded runtime accepting on every front
/// (nginx's model): a connection's tasks — accept, identification, both splice directions, or
/// hyper's server and client halves — stay on one thread, with no cross-thread wake-ups.
fn start_workers(
    workers: usize,
    fronts: &[Arc<FrontState>],
    bound: &[Vec<Bound>],
    shared: &Arc<Shared>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<std::thread::JoinHandle<()>>, RunError> {
    let count = match workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let mut sockets = Vec::new();
        for (front, listeners) in fronts.iter().zip(bound) {
            for l in listeners {
                sockets.push((Arc::clone(front), l.try_clone().map_err(RunError::Runtime)?));
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RunError::Runtime)?;
        let (shared, mut stop) = (Arc::clone(shared), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("loopwarden-guard-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    for (front, socket) in sockets {
                        tokio::spawn(crate::serve::accept_loop(socket, front, Arc::clone(&shared)));
                    }
                    let _ = stop.wait_for(|s| *s).await;
                });
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(RunError::Runtime)?;
        handles.push(handle);
    }
    Ok(handles)
}

/// Signals, status publication and reloads, on the main thread; returns after the drain.
async fn control_loop(
    source: Source,
    config: &GuardConfig,
    fronts: &[Arc<FrontState>],
    shared: &Shared,
    drain_tx: tokio::sync::watch::Sender<bool>,
    status_dir: Option<PathBuf>,
    me: GuardUser,
) -> Result<(), RunError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Runtime)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(RunError::Runtime)?;
    let publisher = status::Publisher::this_process(&config.name);
    let mut ticker = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => publish(&status_dir, &publisher, fronts).await,
            _ = sighup.recv() => reload(&source, fronts, shared, &me).await,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    eprintln!(
        "loopwarden guard {}: draining (no new connections; up to {}s for open ones)",
        config.name,
        config.drain_timeout.as_secs()
    );
    let _ = drain_tx.send(true);
    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    while fronts.iter().any(|f| f.occupancy.open() > 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(&status_dir, &publisher, fronts).await;
    let left: usize = fronts.iter().map(|f| f.occupancy.open()).sum();
    eprintln!(
        "loopwarden guard {}: stopped ({left} connections cut at the drain deadline)",
        config.name
    );
    Ok(())
}

async fn publish(dir: &Option<PathBuf>, me: &status::Publisher, fronts: &[Arc<FrontState>]) {
    let Some(dir) = dir.clone() else { return };
    let snapshot = status::snapshot(me, fronts);
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = status::write(&dir, &snapshot) {
            eprintln!(
                "loopwarden guard {}: cannot write status in {}: {e}",
                snapshot.name,
                dir.display()
            );
        }
    })
    .await;
}

/// SIGHUP: read the configuration again and swap each front's policy. Listen addresses,
/// upstreams and the mode cannot change while running (a restart does that); open connections
/// stay, and HTTP requests on them are judged by the new policy.
async fn reload(source: &Source, fronts: &[Arc<FrontState>], shared: &Shared, me: &GuardUser) {
    let name = shared.name.clone();
    let source = source.clone();
    let loaded = tokio::task::spawn_blocking(move || -> Result<(GuardConfig, Vec<Policy>), String> {
        let config = source.load().map_err(|e| e.to_string())?;
        let policies = config
            .fronts
            .iter()
            .map(Policy::resolve)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok((config, policies))
    })
    .await;
    let (config, policies) = match loaded {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return eprintln!("loopwarden guard {name}: reload refused, old policy kept: {e}"),
        Err(e) => return eprintln!("loopwarden guard {name}: reload failed, old policy kept: {e}"),
    };
    let same_shape = config.fronts.len() == fronts.len()
        && config.fronts.iter().zip(fronts).all(|(new, old)| {
            new.listen == old.config.listen
                && new.upstream == old.config.upstream
                && new.http.is_some() == old.config.http.is_some()
        });
    if !same_shape {
        return eprintln!(
            "loopwarden guard {name}: reload refused, old policy kept: fronts, listen addresses, upstreams or modes changed (restart the guard for that)"
        );
    }
    shared.accounts.clear();
    for (front, policy) in fronts.iter().zip(policies) {
        front.set_policy(policy);
    }
    eprintln!(
        "loopwarden guard {name}: reloaded the policy of {} front(s)",
        fronts.len()
    );
    let me = me.clone();
    let fronts_config = config.fronts.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for w in exposure_warnings(&fronts_config, &me) {
            eprintln!("loopwarden guard {name}: {w}");
        }
    })
    .await;
}

fn allowed(policy: &Policy) -> String {
    policy
        .users
        .iter()
        .map(|u| u.name.clone())
        .chain(policy.groups.iter().map(|g| format!("@{}", g.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn whoami() -> GuardUser {
    let uid = rustix::process::geteuid().as_raw();
    GuardUser {
        uid,
        name: crate::accounts::user_name(uid).unwrap_or_else(|| uid.to_string()),
    }
}

/// The warnings printed at start: who can reach each upstream around the guard.
fn startup_warnings(config: &GuardConfig, me: &GuardUser) -> Vec<String> {
    let mut out = exposure_warnings(&config.fronts, me);
    if me.uid == 0 {
        out.push(
            "warning: running as root: create a user for the guard (e.g. `useradd --system loopwarden-guard`) and restrict the upstream to it"
                .into(),
        );
    }
    out
}

/// Collects this namespace's facts on a thread of its own and asks about every upstream.
fn exposure_warnings(fronts: &[crate::config::FrontConfig], me: &GuardUser) -> Vec<String> {
    let fronts = fronts.to_vec();
    let me = me.clone();
    std::thread::Builder::new()
        .name("loopwarden-exposure".into())
        .spawn(move || {
            let facts = loopwarden_core::collect::collect();
            exposure::warnings(&fronts, &facts, &me)
        })
        .ok()
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| vec!["warning: could not check who else reaches the upstreams".into()])
}

/// Many connections need many descriptors (two per TCP-mode connection, plus pipes in flight):
/// the soft limit is raised to the hard one.
fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}
