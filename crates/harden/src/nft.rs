//! Running `nft` with JSON or text on stdin, keeping its error text (the `nftables` crate loses
//! stderr, issue #209, and swaps `<`/`>`, PR #248: it is not used).
//!
//! Only a root-owned binary in a system directory that no one else can write is run: harden runs
//! as root.

use crate::error::ActError;
use loopwarden_core::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `nft` is looked for, in order.
const CANDIDATES: &[&str] = &["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"];

/// What nft says when the table does not exist.
const NO_SUCH_TABLE: &str = "No such file or directory";

/// A trusted `nft` binary.
#[derive(Debug, Clone)]
pub struct Nft {
    path: PathBuf,
}

impl Nft {
    /// The first candidate that exists and that only root can change (the file and its
    /// directory owned by root, not writable by group or others).
    pub fn find() -> Result<Nft, ActError> {
        let mut seen = Vec::new();
        for candidate in CANDIDATES {
            let path = Path::new(candidate);
            match trusted(path) {
                Ok(()) => {
                    return Ok(Nft {
                        path: path.to_path_buf(),
                    })
                }
                Err(Some(why)) => seen.push(format!("{candidate}: {why}")),
                Err(None) => {}
            }
        }
        Err(ActError::NoNft(if seen.is_empty() {
            format!("none of {} exists (install nftables)", CANDIDATES.join(", "))
        } else {
            seen.join("; ")
        }))
    }

    /// The binary's path (the persisted unit runs it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `nft -c -j -f -`: whether the kernel would take the batch, changing nothing.
    pub fn check(&self, batch: &Value) -> Result<(), ActError> {
        self.run(&["-c", "-j", "-f", "-"], &batch.to_string()).map(drop)
    }

    /// `nft -j -f -`: applies a JSON batch in one transaction.
    pub fn load(&self, batch: &Value) -> Result<(), ActError> {
        self.run(&["-j", "-f", "-"], &batch.to_string()).map(drop)
    }

    /// `nft -f -`: applies a text batch in one transaction.
    pub fn load_text(&self, text: &str) -> Result<(), ActError> {
        self.run(&["-f", "-"], text).map(drop)
    }

    /// The objects of `table inet loopwarden` as nft lists them; `None` when it does not exist.
    pub fn list_table(&self) -> Result<Option<Vec<Value>>, ActError> {
        let Some(text) = self.list(&["-j", "list", "table", TABLE_FAMILY, TABLE_NAME])? else {
            return Ok(None);
        };
        let command = format!("nft -j list table {TABLE_FAMILY} {TABLE_NAME}");
        let json: Value = serde_json::from_str(&text).map_err(|e| ActError::NftOutput {
            command: command.clone(),
            why: e.to_string(),
        })?;
        match json.get("nftables").and_then(Value::as_array) {
            Some(objects) => Ok(Some(objects.clone())),
            None => Err(ActError::NftOutput {
                command,
                why: "no \"nftables\" array".into(),
            }),
        }
    }

    /// `nft list table inet loopwarden` text (which `nft -f` takes back exactly, counters and set
    /// elements included); `None` when it does not exist.
    pub fn list_table_text(&self) -> Result<Option<String>, ActError> {
        self.list(&["list", "table", TABLE_FAMILY, TABLE_NAME])
    }

    fn list(&self, args: &[&str]) -> Result<Option<String>, ActError> {
        match self.run(args, "") {
            Ok(out) => Ok(Some(out)),
            Err(ActError::Nft { stderr, .. }) if stderr.contains(NO_SUCH_TABLE) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn run(&self, args: &[&str], input: &str) -> Result<String, ActError> {
        let command = std::iter::once("nft")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let spawn_error = |e: std::io::Error| ActError::Nft {
            command: command.clone(),
            status: "not started".into(),
            stderr: e.to_string(),
        };
        let mut child = Command::new(&self.path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).map_err(spawn_error)?;
        }
        let out = child.wait_with_output().map_err(spawn_error)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(ActError::Nft {
                command,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// `Ok` when root alone controls `path`; `Err(None)` when it does not exist.
fn trusted(path: &Path) -> Result<(), Option<String>> {
    let meta = std::fs::metadata(path).map_err(|_| None)?;
    let real = std::fs::canonicalize(path).map_err(|e| Some(e.to_string()))?;
    for (what, p) in [
        ("binary", real.as_path()),
        ("directory", real.parent().unwrap_or(Path::new("/"))),
    ] {
        let m = std::fs::metadata(p).map_err(|e| Some(format!("{}: {e}", p.display())))?;
        if m.uid() != 0 || m.mode() & 0o022 != 0 {
            return Err(Some(format!(
                "the {what} {} is not root's alone (uid {}, mode {:o})",
                p.display(),
                m.uid(),
                m.mode() & 0o7777
            )));
        }
    }
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(Some("not an executable file".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::trusted;
    use std::path::Path;

    #[test]
    fn only_root_owned_files_in_root_owned_directories_are_trusted() {
        assert_eq!(trusted(Path::new("/nonexistent/nft")), Err(None));
        let dir = std::env::temp_dir();
        // The temporary directory is world-writable: nothing in it is trusted.
        let file = dir.join(format!("lw-nft-trust-{}", std::process::id()));
        std::fs::write(&file, "#!/bin/sh\n").expect("write");
        let verdict = trusted(&file);
        let _ = std::fs::remove_file(&file);
        assert!(verdict.is_err_and(|e| e.is_some()));
    }
}
