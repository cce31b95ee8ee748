//! Finding a system program root may run: at a fixed place, and only if root alone controls
//! it — the file it resolves to and every directory from `/` down to it owned by root and
//! writable by no one else.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The first of `candidates` that exists and that root alone controls; else why none is usable.
pub fn find(candidates: &[&str]) -> Result<PathBuf, String> {
    let mut seen = Vec::new();
    for candidate in candidates {
        let path = Path::new(candidate);
        match trusted(path) {
            Ok(()) => return Ok(path.to_path_buf()),
            Err(Some(why)) => seen.push(format!("{candidate}: {why}")),
            Err(None) => {}
        }
    }
    Err(if seen.is_empty() {
        format!("none of {} exists", candidates.join(", "))
    } else {
        seen.join("; ")
    })
}

/// `Ok` when root alone controls `path`: the file it resolves to and every directory from `/`
/// down to it are owned by root and writable by no one else; `Err(None)` when it does not
/// exist.
fn trusted(path: &Path) -> Result<(), Option<String>> {
    let meta = std::fs::metadata(path).map_err(|_| None)?;
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(Some("not an executable file".into()));
    }
    let real = std::fs::canonicalize(path).map_err(|e| Some(e.to_string()))?;
    for p in real.ancestors() {
        let m = std::fs::metadata(p).map_err(|e| Some(format!("{}: {e}", p.display())))?;
        if m.uid() != 0 || m.mode() & 0o022 != 0 {
            return Err(Some(format!(
                "{} is not root's alone (uid {}, mode {:o})",
                p.display(),
                m.uid(),
                m.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_owned_files_in_root_owned_directories_are_trusted() {
        assert_eq!(trusted(Path::new("/nonexistent/nft")), Err(None));
        // The temporary directory is world-writable: nothing in it is trusted.
        let file = std::env::temp_dir().join(format!("lw-program-trust-{}", std::process::id()));
        std::fs::write(&file, "#!/bin/sh\n").expect("write");
        let verdict = trusted(&file);
        let _ = std::fs::remove_file(&file);
        assert!(verdict.is_err_and(|e| e.is_some()));
        assert!(find(&["/nonexistent/a", "/nonexistent/b"]).is_err_and(|e| e.contains("none of")));
    }
}
