//! What can go wrong while acting on the host; every error names its input.

use std::path::PathBuf;

/// An error of the acting part (apply, rollback, check, remove, persist).
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// Changing the packet filter and sysctls needs root.
    #[error("{0} needs root (nftables and /proc/sys/net are root's)")]
    NotRoot(&'static str),
    /// No trustworthy `nft` binary.
    #[error("no usable nft binary: {0}")]
    NoNft(String),
    /// `nft` refused or failed; its own words are kept.
    #[error("`{command}` failed ({status}): {stderr}")]
    Nft {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What nft printed on stderr.
        stderr: String,
    },
    /// `nft` printed something that is not the JSON it should be.
    #[error("`{command}` printed no usable JSON: {why}")]
    NftOutput {
        /// The command line.
        command: String,
        /// What was wrong.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A state or configuration file is not what loopwarden wrote.
    #[error("{path}: {why}")]
    Untrusted {
        /// The file or directory.
        path: PathBuf,
        /// Why it is not used.
        why: String,
    },
    /// The plan was not verified by the firewall evaluator: applying it would claim what it
    /// does not do.
    #[error(
        "the firewall evaluator does not confirm that the plan closes what it claims, so nothing was applied \
         (the plan above shows each path): {}",
        .0.join("; ")
    )]
    Unverified(Vec<String>),
    /// What was applied does not read back as planned; everything was restored.
    #[error("after applying, {what}; everything was restored to what it was before")]
    ReadBack {
        /// What differed.
        what: String,
    },
    /// Something failed after the first change, and putting back what was there failed too.
    #[error("{cause}; putting back what was there failed too: {restore} (what was replaced is saved in {saved})")]
    RestoreFailed {
        /// The first failure.
        cause: String,
        /// The restore's failure.
        restore: String,
        /// The state directory holding what was saved.
        saved: String,
    },
    /// A confirmation window is open: nothing else may change until it closes.
    #[error("a previous `harden --apply` awaits confirmation until {deadline}: {what_to_do}")]
    Pending {
        /// When it rolls back.
        deadline: String,
        /// What to do: confirm or wait for the rollback, or — its watchdog gone — confirm or remove.
        what_to_do: String,
    },
    /// A `table inet loopwarden` that harden did not make is in the way.
    #[error(
        "table {table} exists and was not made by loopwarden harden ({contents}; none carries harden's mark, the \
         comment \"dropped spoofed packets per input interface\", and this network namespace has no record of an \
         apply): {action}. Move its rules to a table of another name, or pass --force to go ahead"
    )]
    ForeignTable {
        /// `inet loopwarden`.
        table: String,
        /// How many chains and rules it has.
        contents: String,
        /// What the action would do to it.
        action: &'static str,
    },
    /// An apply that died half-way was put back while applying a plan made before: the plan no
    /// longer describes the host (what it found changed was the dead apply's doing).
    #[error("{0}; the plan was made before that, so nothing else was applied: plan and apply again")]
    StalePlan(String),
    /// `--confirm` with nothing to confirm.
    #[error("nothing awaits confirmation in this network namespace{0}")]
    NothingPending(String),
    /// The network namespace to act in cannot be entered.
    #[error("cannot enter network namespace {target}: {why}")]
    Netns {
        /// What was given.
        target: String,
        /// Why.
        why: String,
    },
}

/// Shorthand for I/O errors naming the file.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ActError {
    let path = path.into();
    move |source| ActError::Io { path, source }
}
