//! Running a guard: bind every front first (fail loudly before serving anything), warn about
//! upstreams reachable around it, then serve until SIGTERM/SIGINT (drain) with SIGHUP reloading
//! the policy.

use crate::config::FrontConfig;
use crate::config::{self, ConfigError, GuardConfig};
use crate::exposure::{self, GuardUser, Reach};
use crate::front::{self, Bound, BoundFront};
use crate::policy::Policy;
use crate::state::{FrontState, Shared};
use crate::status::{self, StatusDir, StatusDirError};
use crate::upstream::Owner;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
    let mut inherited = front::systemd::sockets().map_err(RunError::Bind)?;
    let mut bound: Vec<BoundFront> = Vec::new();
    for (f, policy) in config.fronts.iter().zip(&policies) {
        bound.push(
            front::bind(f, policy, &mut inherited).map_err(|e| RunError::Bind(format!("front {:?}: {e}", f.name)))?,
        );
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
    let status_dir = match status::directory(config.status_dir.as_deref(), &config.name) {
        Ok(d) => Some(d),
        Err(StatusDirError::InUse(why)) => return Err(RunError::Bind(why)),
        Err(StatusDirError::Unusable(why)) => {
            crate::logln!("loopwarden guard {}: status not published ({why}); `guard --status` and the audit will not see this guard", config.name);
            None
        }
    };
    let status_path = status_dir.as_ref().map(|d| d.path.clone());
    let notes = bound.iter().flat_map(|b| b.notes.iter().cloned());
    for line in notes.chain(startup_warnings(&config, &me, status_dir.as_ref())) {
        crate::logln!("loopwarden guard {}: {line}", config.name);
    }
    let fronts: Vec<Arc<FrontState>> = config
        .fronts
        .iter()
        .cloned()
        .zip(policies)
        .zip(&bound)
        .map(|((c, p), b)| {
            let endpoints = b.sockets.iter().filter_map(Bound::endpoint).collect();
            let owner = upstream_owner(&c)?;
            Ok(Arc::new(FrontState::new(c, p, endpoints, owner)))
        })
        .collect::<Result<_, RunError>>()?;
    let (drain_tx, draining) = tokio::sync::watch::channel(false);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        name: config.name.clone(),
        accounts: Default::default(),
        refusal_log: Default::default(),
        draining,
    });
    for (front, b) in fronts.iter().zip(&bound) {
        let names: Vec<String> = b.sockets.iter().map(Bound::describe).collect();
        crate::logln!(
            "loopwarden guard {}: front {} listening on {} -> {} ({}), allowing {}",
            config.name,
            front.config.name,
            names.join(" and "),
            front.config.upstream,
            if front.config.http.is_some() {
                "http"
            } else {
                "tcp, spliced: no Host/Origin checks, browser pages of allowed users pass"
            },
            allowed(&front.policy())
        );
    }
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    control.block_on(check_upstream_owners(&fronts, &shared));
    let sockets: Vec<Vec<Bound>> = bound.into_iter().map(|b| b.sockets).collect();
    let workers = start_workers(config.workers, &fronts, &sockets, &shared, &stop)?;
    drop(sockets);
    let result = control.block_on(control_loop(
        source,
        &config,
        &fronts,
        &shared,
        drain_tx,
        status_path.clone(),
        me,
    ));
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.join();
    }
    if let Some(dir) = status_path {
        status::remove(&dir);
    }
    drop(status_dir);
    result
}

/// Who must hold a front's upstream: its `upstream_user`, else whoever holds it first.
fn upstream_owner(front: &FrontConfig) -> Result<Owner, RunError> {
    let Some(user) = &front.upstream_user else {
        return Ok(Owner::first_seen());
    };
    let named = crate::accounts::user(user)
        .map_err(|why| ConfigError::invalid(format!("front {:?} upstream user {user:?}", front.name), why))?;
    Ok(Owner::given(named.id))
}

/// Connects every upstream once at start: pins (and logs) who holds it, or says that the
/// owner is not known yet.
async fn check_upstream_owners(fronts: &[Arc<FrontState>], shared: &Shared) {
    for front in fronts {
        match front.connect_upstream(shared).await {
            Ok(_) => {
                if front.config.upstream_user.is_some() {
                    crate::logln!(
                        "loopwarden guard {}: front {}: upstream {} is held by {} (--upstream-user)",
                        shared.name,
                        front.config.name,
                        front.config.upstream,
                        front
                            .upstream_owner
                            .expected()
                            .map_or_else(|| "?".into(), crate::accounts::describe)
                    );
                }
            }
            Err(crate::upstream::ConnectError::Unreachable(_)) if front.config.upstream_user.is_none() => {
                crate::logln!(
                    "loopwarden guard {}: warning: front {}: upstream {} is not reachable now: the first user \
                     found holding it will be trusted with the requests — give --upstream-user (upstream_user \
                     in a config file) to name the service's user",
                    shared.name,
                    front.config.name,
                    front.config.upstream
                );
            }
            Err(_) => {} // logged by connect_upstream
        }
    }
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
            _ = sighup.recv() => reload(&source, fronts, shared, &me, &status_dir).await,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    crate::logln!(
        "loopwarden guard {}: draining: no new connections are accepted (they wait in the backlog; the port stays held until the guard exits), up to {}s for open ones",
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
    crate::logln!(
        "loopwarden guard {}: stopped ({left} {} cut at the drain deadline)",
        config.name,
        if left == 1 { "connection" } else { "connections" }
    );
    Ok(())
}

async fn publish(dir: &Option<PathBuf>, me: &status::Publisher, fronts: &[Arc<FrontState>]) {
    let Some(dir) = dir.clone() else { return };
    let snapshot = status::snapshot(me, fronts);
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = status::write(&dir, &snapshot) {
            crate::logln!(
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
async fn reload(
    source: &Source,
    fronts: &[Arc<FrontState>],
    shared: &Shared,
    me: &GuardUser,
    status_dir: &Option<PathBuf>,
) {
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
        Ok(Err(e)) => return crate::logln!("loopwarden guard {name}: reload refused, old policy kept: {e}"),
        Err(e) => return crate::logln!("loopwarden guard {name}: reload failed, old policy kept: {e}"),
    };
    let same_shape = config.fronts.len() == fronts.len()
        && config.fronts.iter().zip(fronts).all(|(new, old)| {
            new.listen == old.config.listen
                && new.upstream == old.config.upstream
                && new.upstream_user == old.config.upstream_user
                && new.http.is_some() == old.config.http.is_some()
        });
    if !same_shape {
        return crate::logln!(
            "loopwarden guard {name}: reload refused, old policy kept: fronts, listen addresses, upstreams, upstream users or modes changed (restart the guard for that)"
        );
    }
    shared.accounts.clear();
    for (front, policy) in fronts.iter().zip(policies) {
        front.set_policy(policy);
    }
    crate::logln!(
        "loopwarden guard {name}: reloaded the policy of {} front(s)",
        fronts.len()
    );
    let me = me.clone();
    let fronts_config = config.fronts.clone();
    let status_dir = status_dir.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for w in exposure_lines(&fronts_config, &me, status_dir.as_deref()) {
            crate::logln!("loopwarden guard {name}: {w}");
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

/// The warnings printed at start: who can reach each upstream around the guard, and what keeps
/// the audit from seeing the guard.
fn startup_warnings(config: &GuardConfig, me: &GuardUser, status_dir: Option<&StatusDir>) -> Vec<String> {
    let mut out = exposure_lines(&config.fronts, me, status_dir.map(|d| d.path.as_path()));
    if me.uid == 0 {
        out.push(
            "warning: running as root: create a user for the guard (e.g. `useradd --system loopwarden-guard`) and restrict the upstream to it"
                .into(),
        );
    }
    if let Some(dir) = status_dir.filter(|d| !d.audited) {
        out.push(format!(
            "warning: the status is published in {}, where `loopwarden audit` does not look (it reads {}/NAME/): \
             the audit will not credit this guard — use the default status directory or the systemd unit",
            dir.path.display(),
            loopwarden_core::facts::GUARD_STATUS_DIR
        ));
    }
    out
}

/// Who reaches each upstream around the guard: the guard's own verdict, or — where it cannot
/// read the firewall — root's recorded one ([`exposure::record`]).
fn exposure_lines(fronts: &[FrontConfig], me: &GuardUser, status_dir: Option<&Path>) -> Vec<String> {
    let Some(verdicts) = assess_here(fronts, me) else {
        return vec!["warning: could not check who else reaches the upstreams".into()];
    };
    let now = status::now();
    let record = match status_dir.map(|d| exposure::record::read(d, me.uid, now)) {
        Some(Ok(r)) => r,
        Some(Err(why)) => {
            let mut out = vec![format!("warning: root's upstream check not used: {why}")];
            out.extend(
                verdicts
                    .into_iter()
                    .filter(|v| v.reach != Reach::OnlyGuard)
                    .map(|v| v.message),
            );
            return out;
        }
        None => None,
    };
    verdicts
        .into_iter()
        .filter_map(|v| {
            if v.reach != Reach::Unknown {
                return (v.reach == Reach::Others).then_some(v.message);
            }
            let recorded = record.as_ref().and_then(|r| {
                r.verdicts
                    .iter()
                    .find(|rv| rv.front == v.front && rv.upstream == v.upstream && rv.reach != Reach::Unknown)
                    .map(|rv| (rv, now.saturating_sub(r.checked_at)))
            });
            Some(match recorded {
                Some((rv, age)) if rv.reach == Reach::OnlyGuard => {
                    format!("info: {} (root's check {age} s ago)", rv.message)
                }
                Some((rv, age)) => format!("{} (root's check {age} s ago)", rv.message),
                None => v.message,
            })
        })
        .collect()
}

/// Collects this namespace's facts on a thread of its own and judges every upstream.
fn assess_here(fronts: &[FrontConfig], me: &GuardUser) -> Option<Vec<exposure::Verdict>> {
    let fronts = fronts.to_vec();
    let me = me.clone();
    std::thread::Builder::new()
        .name("loopwarden-exposure".into())
        .spawn(move || {
            let facts = loopwarden_core::collect::collect();
            exposure::assess(&fronts, &facts, &me)
        })
        .ok()
        .and_then(|h| h.join().ok())
}

/// `--check-upstreams-for USER`, as root: judges every upstream for a guard running as `user`,
/// prints the verdicts and records them in the guard's status directory (when it exists) for
/// the guard to read. Returns the lines printed.
pub fn check_upstreams(source: &Source, user: &str) -> Result<Vec<String>, RunError> {
    let named = crate::accounts::user(user)
        .map_err(|why| ConfigError::invalid(format!("--check-upstreams-for {user:?}"), why))?;
    let as_root = rustix::process::geteuid().is_root();
    if let (true, Source::File(path)) = (as_root, source) {
        owned_by(path, &[0], "the guard config")?;
    }
    let config = source.load()?;
    for front in &config.fronts {
        Policy::resolve(front)?; // names every allowed account that does not exist
    }
    let me = GuardUser {
        uid: named.id,
        name: named.name,
    };
    let verdicts = assess_here(&config.fronts, &me)
        .ok_or_else(|| RunError::Bind("could not collect this namespace's facts".into()))?;
    let mut out: Vec<String> = verdicts.iter().map(|v| v.message.clone()).collect();
    let record = exposure::record::Record {
        schema: exposure::record::RECORD_SCHEMA.into(),
        checked_at: status::now(),
        guard_uid: me.uid,
        verdicts,
    };
    let dir = status::existing_directory(config.status_dir.as_deref(), &config.name);
    if let (true, Some(dir)) = (as_root, &dir) {
        owned_by(dir, &[0, me.uid], "the status directory")?;
    }
    match dir {
        Some(dir) => match exposure::record::write(&dir, &record) {
            Ok(()) => out.push(format!(
                "recorded in {} for the guard (read at its start or reload within {} s)",
                dir.join(exposure::record::RECORD_FILE).display(),
                exposure::record::MAX_AGE_SECS
            )),
            Err(why) => out.push(format!("not recorded: {why}")),
        },
        None => out.push(
            "not recorded: the guard's status directory does not exist yet (the systemd unit creates it; \
             else give --status-dir)"
                .into(),
        ),
    }
    Ok(out)
}

/// As root, refuses to act on `path` (read a config, write a record) unless one of `owners`
/// owns it: another user could make root judge a config of theirs or write where they choose.
fn owned_by(path: &Path, owners: &[u32], what: &str) -> Result<(), RunError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ConfigError::invalid(format!("{what} {}", path.display()), e.to_string()))?;
    if owners.contains(&meta.uid()) {
        return Ok(());
    }
    let allowed: Vec<String> = owners.iter().map(|&u| crate::accounts::describe(u)).collect();
    Err(ConfigError::invalid(
        format!("{what} {}", path.display()),
        format!(
            "owned by {}, not by {}: root does not act on another user's file (chown it)",
            crate::accounts::describe(meta.uid()),
            allowed.join(" or ")
        ),
    )
    .into())
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
