//! Running `nft` with JSON or text on stdin, keeping its error text (the `nftables` crate loses
//! stderr, issue #209, and swaps `<`/`>`, PR #248: it is not used).
//!
//! Only a root-owned binary in a system directory that no one else can write is run, with a
//! fixed environment and a time limit: harden runs as root.

use crate::error::ActError;
use loopwarden_core::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where `nft` is looked for, in order.
const CANDIDATES: &[&str] = &["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"];

/// What nft says when the table does not exist.
const NO_SUCH_TABLE: &str = "No such file or directory";

/// A trusted `nft` binary ([`crate::program::find`]).
#[derive(Debug, Clone)]
pub struct Nft {
    path: PathBuf,
}

impl Nft {
    /// The first of the usual places that holds an `nft` only root can change.
    pub fn find() -> Result<Nft, ActError> {
        crate::program::find(CANDIDATES)
            .map(|path| Nft { path })
            .map_err(|why| ActError::NoNft(format!("{why} (install nftables)")))
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

    /// Runs nft with `input` on stdin, in the C locale (its messages are matched) and a fixed
    /// `PATH`; stdout and stderr are read on threads of their own, and a run past [`TIMEOUT`]
    /// is killed by its pid.
    fn run(&self, args: &[&str], input: &str) -> Result<String, ActError> {
        let command = std::iter::once("nft")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let failed = |status: &str, stderr: String| ActError::Nft {
            command: command.clone(),
            status: status.to_string(),
            stderr,
        };
        let mut child = Command::new(&self.path)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed("not started", e.to_string()))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        if let Some(mut stdin) = child.stdin.take() {
            // A refused batch may end nft before it read everything: its stderr says why.
            let _ = stdin.write_all(input.as_bytes());
        }
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(failed("killed", format!("no answer within {TIMEOUT:?}")));
                }
            }
        };
        let (out, err) = (collect(stdout), collect(stderr));
        if status.success() {
            Ok(out)
        } else {
            Err(failed(&status.to_string(), err.trim().to_string()))
        }
    }
}

/// How long one nft run may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn collect(reader: std::thread::JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}
