//! Writing to stdout and files, and colour decisions.

use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `text` to stdout. A reader that went away (`loopwarden audit | head -1`) is not an
/// error: the rest of the text is dropped and the verb still exits with its own status — the
/// findings' status for `audit`, so that a `set -o pipefail` gate sees it.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Streams what `write` produces to stdout through a buffer, so that a large report is never
/// held as text. A reader that went away is not an error, as for [`print`].
pub fn stream(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Serialises `value` as pretty JSON; a failure is an error, never a document that looks like
/// output.
pub fn to_json<T: serde::Serialize>(value: &T, what: &str) -> anyhow::Result<String> {
    serde_json::to_string_pretty(value).with_context(|| format!("cannot serialise the {what} as JSON"))
}

/// Writes `text` to `path` readable by its owner only (mode 0600 from creation), as
/// [`write_atomic`] does.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    write_atomic(path, text, 0o600)
}

/// Writes `text` to `path` with `mode` from creation: it is written to a new file beside `path`
/// (never one that exists, never through a symlink), then renamed over `path`, so neither a file
/// someone else prepared nor a half-written one is ever left there — a reader (node_exporter's
/// textfile collector, a browser) sees the old file or the new one, nothing in between.
pub fn write_atomic(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(stream) = existing_stream(path)? {
        // A device or a pipe (`--out /dev/null`, `/dev/stdout`, a FIFO) is written into, never
        // replaced: renaming over `/dev/null` would break it for the whole host.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&stream)
            .with_context(|| format!("cannot open {}", path.display()))?;
        return file
            .write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()));
    }
    let name = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let temp = path.with_file_name(format!(
        ".{}.{}-{nanos:x}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .with_context(|| {
            // The temporary name is ours, not the user's: say the path they gave and its folder.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            format!(
                "cannot write {}: cannot create a file in {}",
                path.display(),
                dir.display()
            )
        })?;
    // The umask may have taken bits the reader needs (a 0644 metrics file under umask 077).
    let result = file
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// The path to write into directly when `path` is an existing character device or FIFO, or a
/// root-owned (or our own) symlink to one (`/dev/stdout`); `None` when the file is to be created
/// or replaced: nothing there, a regular file, or any other symlink — which is replaced, never
/// followed, so that a link another user planted cannot redirect root's write.
fn existing_stream(path: &Path) -> anyhow::Result<Option<std::path::PathBuf>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    let is_stream = |t: std::fs::FileType| t.is_char_device() || t.is_fifo();
    if is_stream(meta.file_type()) {
        return Ok(Some(path.to_path_buf()));
    }
    if !meta.file_type().is_symlink() {
        anyhow::ensure!(
            meta.is_file(),
            "{} exists and is neither a regular file, a device nor a pipe: not written",
            path.display()
        );
        return Ok(None);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let trusted = meta.uid() == 0 || meta.uid() == unsafe { libc::geteuid() };
    let to_stream = std::fs::metadata(path).is_ok_and(|t| is_stream(t.file_type()));
    Ok((trusted && to_stream).then(|| path.to_path_buf()))
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// An error and its causes as one line, each cause said once — a message that already ends with
/// its cause (`"cannot read X: {source}"`) is not followed by that cause again — and escaped:
/// errors quote input (a path, a snapshot's text), which must not reach the terminal raw.
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if message.ends_with(&cause) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause);
    }
    loopwarden_core::report::shown::line(&message).into_owned()
}
