//! Putting back what an apply replaced: at once when an apply fails, or at the end of a
//! confirmation window that nobody confirmed.
//!
//! The window is watched by a separate process in its own session (`setsid`, SIGHUP ignored,
//! no terminal): closing the terminal or the SSH session that ran `--apply` does not stop it.
//! It polls the state directory; `--confirm` (from any shell) removes the pending record, which
//! ends it. Nothing signals it by pid.

use crate::clock;
use crate::error::ActError;
use crate::nft::Nft;
use crate::persist;
use crate::recover;
use crate::render::nft_json;
use crate::state::{files, Before, Pending, RollbackCause, RolledBack, StateDir};
use crate::sysctl;
use loopwarden_core::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde::Serialize;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How often the watchdog looks at the window.
const POLL: Duration = Duration::from_millis(100);

/// Puts back the table and sysctls of `before`; returns what was done, line by line. Goes on
/// after a failure (so that as much as possible is restored) and then reports it.
pub fn restore(nft: &Nft, before: &Before) -> Result<Vec<String>, ActError> {
    let mut done = Vec::new();
    let mut failed: Option<ActError> = None;
    let table = match &before.table_text {
        Some(text) => nft
            .load_text(&format!(
                "table {TABLE_FAMILY} {TABLE_NAME} {{}}\ndelete table {TABLE_FAMILY} {TABLE_NAME}\n{text}"
            ))
            .map(|()| format!("table {TABLE_FAMILY} {TABLE_NAME} restored as it was")),
        None => nft
            .load(&nft_json::removal())
            .map(|()| format!("table {TABLE_FAMILY} {TABLE_NAME} removed (there was none before)")),
    };
    match table {
        Ok(line) => done.push(line),
        Err(e) => failed = Some(e),
    }
    for saved in before.sysctls.iter().rev() {
        match sysctl::write(&saved.key, &saved.value) {
            Ok(()) => done.push(format!("{} = {} restored", saved.key, saved.value)),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if !before.sysctls.is_empty() {
        match sysctl::flush_route_cache() {
            Ok(()) => done.push("route cache flushed".into()),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// Starts the watchdog: `command` plus the window's token, in a new session with no terminal.
pub fn spawn_watchdog(command: &[OsString], token: u64) -> Result<u32, ActError> {
    let (program, args) = command.split_first().ok_or_else(|| ActError::Io {
        path: PathBuf::from("<watchdog>"),
        source: std::io::Error::other("no watchdog command"),
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg(token.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec: setsid(2) and signal(2).
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            crate::signals::reset_for_child();
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| ActError::Io {
        path: PathBuf::from(program),
        source,
    })?;
    Ok(child.id())
}

/// Whether the watchdog of `pending` still runs: its pid is a live process (not a zombie)
/// running `… --rollback-watch TOKEN` with this window's token. A watchdog killed, or lost with
/// a crash, never rolls back: `--check` and `--confirm` must say so.
pub fn watchdog_alive(pending: &Pending) -> bool {
    let Some(pid) = pending.watchdog else {
        return false;
    };
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let token = pending.token.to_string();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let watching = args
        .windows(2)
        .any(|w| w[0] == b"--rollback-watch" && w[1] == token.as_bytes());
    // `pid (comm) S …`: the state follows the last parenthesis (comm may hold any byte).
    let running = std::fs::read_to_string(dir.join("stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'));
    watching && running
}

/// What to do about a window whose watchdog is gone, for people.
pub fn unwatched_advice(pending: &Pending) -> String {
    format!(
        "the rollback watchdog of the confirmation window ending {} ({}) is gone, so nothing will roll back: \
         what was applied stays as it is until you act — `loopwarden harden --confirm` keeps it, \
         `loopwarden harden --remove` takes it all away",
        pending.deadline,
        pending
            .watchdog
            .map_or_else(|| "its pid was never recorded".to_string(), |pid| format!("pid {pid}"))
    )
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchEnd {
    /// Confirmed in time (or removed by `--remove`).
    Confirmed,
    /// Another apply opened another window.
    Superseded,
    /// Not confirmed: everything was restored.
    RolledBack(Vec<String>),
}

/// The watchdog's body: waits for the window of `token` to be confirmed, or rolls back at its
/// deadline.
pub fn watch(state_root: &Path, token: u64) -> Result<WatchEnd, ActError> {
    loop {
        {
            let state = StateDir::open(state_root)?;
            match state.read::<Pending>(files::PENDING)? {
                None => return Ok(WatchEnd::Confirmed),
                Some(p) if p.token != token => return Ok(WatchEnd::Superseded),
                Some(p) if clock::now_ms() >= p.deadline_ms => {
                    let restored = roll_back(&state, &p)?;
                    return Ok(WatchEnd::RolledBack(restored));
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Restores what the window's apply replaced and records it.
fn roll_back(state: &StateDir, pending: &Pending) -> Result<Vec<String>, ActError> {
    let nft = Nft::find()?;
    let restored = match restore(&nft, &pending.before) {
        Ok(lines) => lines,
        Err(e) => {
            state.log(&format!(
                "rollback of the window ending {} failed: {e}",
                pending.deadline
            ));
            return Err(e);
        }
    };
    match &pending.before.applied {
        Some(a) => state.write(files::APPLIED, a)?,
        None => {
            state.remove(files::APPLIED)?;
            state.remove(files::ORIGINAL)?;
        }
    }
    state.remove(files::PENDING)?;
    state.remove(files::APPLYING)?;
    state.write(
        files::ROLLED_BACK,
        &RolledBack {
            at: clock::now_rfc3339(),
            deadline: pending.deadline.clone(),
            cause: RollbackCause::Unconfirmed,
            restored: restored.clone(),
        },
    )?;
    state.log(&format!(
        "not confirmed by {}: rolled back ({})",
        pending.deadline,
        restored.join("; ")
    ));
    Ok(restored)
}

/// What `--confirm` did.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmed {
    /// The deadline that no longer applies.
    pub deadline: String,
    /// Files of the persistent copy installed now (`--persist`).
    pub persisted: Vec<PathBuf>,
    /// Set when the window's watchdog was already gone: without this confirmation nothing would
    /// have rolled back. Its pid, if one was recorded.
    pub watchdog_was_gone: Option<Option<u32>>,
}

/// `--confirm`: keeps the pending apply and installs its persistent copy if one was asked for.
/// Too late — past the deadline — it rolls back instead (what the watchdog would have done) and
/// says so.
pub fn confirm(state_root: &Path) -> Result<Confirmed, ActError> {
    let state = StateDir::open(state_root)?;
    // An apply that died half-way is never confirmed: what it replaced goes back.
    if recover::interrupted(&state)?.is_some() {
        let recovered = recover::recover(&state, &Nft::find()?)?;
        return Err(ActError::NothingPending(format!(
            ": {}",
            recovered.map(|r| r.describe()).unwrap_or_default()
        )));
    }
    let Some(pending) = state.read::<Pending>(files::PENDING)? else {
        let last: Option<RolledBack> = state.read(files::ROLLED_BACK)?;
        return Err(ActError::NothingPending(match last {
            Some(r) => format!(": {}", r.describe()),
            None => String::new(),
        }));
    };
    if clock::now_ms() >= pending.deadline_ms {
        let restored = roll_back(&state, &pending)?;
        return Err(ActError::NothingPending(format!(
            ": the window closed at {}, so the apply was rolled back now ({})",
            pending.deadline,
            restored.join("; ")
        )));
    }
    let persisted = match &pending.persist {
        Some(request) => persist::install(request)?,
        None => Vec::new(),
    };
    let watchdog_was_gone = (!watchdog_alive(&pending)).then_some(pending.watchdog);
    state.remove(files::PENDING)?;
    Ok(Confirmed {
        deadline: pending.deadline,
        persisted,
        watchdog_was_gone,
    })
}
