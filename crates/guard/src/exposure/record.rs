//! Root's verdict on the upstreams, recorded for a guard that runs as its own user and cannot
//! read the firewall itself.
//!
//! `loopwarden guard --check-upstreams-for USER` (run by root just before the guard starts: the
//! systemd unit's `ExecStartPre=+`, and again before a reload) collects the namespace's facts
//! with the firewall, judges every upstream as the guard would for USER, prints the verdicts and
//! writes them to [`RECORD_FILE`] in the guard's status directory. The guard reads the record
//! only when it is root's (owned by uid 0, writable by nobody else, not a link), made for its
//! uid, and at most [`MAX_AGE`] old.

use super::Verdict;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The record's file name in the status directory.
pub const RECORD_FILE: &str = "upstream-check.json";
/// The record's schema tag.
pub const RECORD_SCHEMA: &str = "loopwarden.guard-upstream-check/v1";
/// How old a record may be to be believed: a check made just before the start or the reload.
pub const MAX_AGE_SECS: u64 = 600;
/// The largest record read.
const MAX_BYTES: u64 = 1 << 20;

/// Root's verdicts for a guard running as `guard_uid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Always [`RECORD_SCHEMA`].
    pub schema: String,
    /// Seconds since the epoch when root checked.
    pub checked_at: u64,
    /// The uid the verdicts were made for.
    pub guard_uid: u32,
    /// One per front.
    pub verdicts: Vec<Verdict>,
}

/// Writes the record into `dir` (as root), replacing an earlier one atomically. `dir` may be
/// the guard user's: the temporary file is created anew (never through a link) and its mode set
/// on the open descriptor, never by path.
pub fn write(dir: &Path, record: &Record) -> Result<(), String> {
    let tmp = dir.join(format!(".{RECORD_FILE}.tmp"));
    let path = dir.join(RECORD_FILE);
    let text = serde_json::to_string_pretty(record).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    // The umask may have narrowed the mode given at creation.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| format!("cannot set the mode of {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))
}

/// Reads the record in `dir` when it is root's, for `uid`, and fresh; `Err` says why not
/// (`Ok(None)`: there is none).
pub fn read(dir: &Path, uid: u32, now: u64) -> Result<Option<Record>, String> {
    let path = dir.join(RECORD_FILE);
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", path.display())),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 || meta.len() > MAX_BYTES {
        return Err(format!(
            "{} is not root's (a regular file owned by root that nobody else may write): ignored",
            path.display()
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let record: Record =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a check record: {e}", path.display()))?;
    if record.schema != RECORD_SCHEMA {
        return Err(format!("{}: unsupported schema {:?}", path.display(), record.schema));
    }
    if record.guard_uid != uid {
        return Err(format!(
            "{}: root checked for uid {}, but this guard runs as uid {uid}: ignored",
            path.display(),
            record.guard_uid
        ));
    }
    if now.saturating_sub(record.checked_at) > MAX_AGE_SECS {
        return Err(format!(
            "{}: root's check is {} s old (at most {MAX_AGE_SECS} s is believed): ignored",
            path.display(),
            now.saturating_sub(record.checked_at)
        ));
    }
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposure::Reach;

    fn record(uid: u32, at: u64) -> Record {
        Record {
            schema: RECORD_SCHEMA.into(),
            checked_at: at,
            guard_uid: uid,
            verdicts: vec![Verdict {
                front: "localhost:8080".into(),
                upstream: "127.0.0.1:18080".into(),
                reach: Reach::OnlyGuard,
                message: "only uid 987".into(),
            }],
        }
    }

    #[test]
    fn roots_fresh_record_for_this_uid_is_read_and_others_are_not() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED roots_fresh_record…: the record must be root's");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lw-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, &record(987, 1000)).unwrap();
        assert_eq!(read(&dir, 987, 1100).unwrap(), Some(record(987, 1000)));
        assert!(read(&dir, 988, 1100).unwrap_err().contains("root checked for uid 987"));
        assert!(read(&dir, 987, 1000 + MAX_AGE_SECS + 1).unwrap_err().contains("s old"));
        std::os::unix::fs::chown(dir.join(RECORD_FILE), Some(987), None).unwrap();
        assert!(read(&dir, 987, 1100).unwrap_err().contains("is not root's"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read(&dir, 987, 1100).unwrap(), None);
    }
}
