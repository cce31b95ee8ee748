//! Effective configuration of the relays that run in this namespace: each sshd asked with
//! `sshd -T` (its own `-f`/`-o`/`-h` options; per user with `-C` when the configuration has
//! `Match` blocks), each nginx master asked with `nginx -T` (its own `-c`/`-p`/`-g`), each
//! haproxy's `-f` files, each caddy's configuration through `caddy adapt` (and its Caddyfile), each
//! Apache's files as its own `-t -D DUMP_INCLUDES` lists them.
//!
//! Only processes that own sockets of the snapshot are considered — relays own their listeners —
//! and workers that share their parent's command line are asked once. A capture that fails
//! becomes a [`Limit`] naming the command and its error.

use crate::facts::{Accounts, CommandCapture, Limit, Process, RelayFacts};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one configuration dump may take.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);
/// The most output kept from one dump.
const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// The most per-user `sshd -T -C` captures per daemon.
const MAX_MATCH_USERS: usize = 8;

/// Captures the configuration of every sshd listener and nginx master among `processes`.
pub fn collect(processes: &[Process], accounts: &Accounts, limits: &mut Vec<Limit>) -> RelayFacts {
    let mut captures = Vec::new();
    let mut seen: Vec<Vec<String>> = Vec::new();
    for process in processes {
        let argv = effective_argv(process);
        if seen.contains(&argv) {
            continue;
        }
        seen.push(argv.clone());
        let base = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)).unwrap_or("");
        if let Some(args) = sshd_args(&argv) {
            captures.extend(capture_sshd(process, &args, accounts, limits));
        } else if let Some(args) = nginx_master_args(&argv) {
            let mut command = vec![program(process, "nginx"), "-T".to_string()];
            command.extend(args);
            captures.extend(capture("nginx", process.pid, command, &[], limits));
        } else if base == "haproxy" {
            for file in haproxy_files(&argv) {
                captures.extend(capture("haproxy", process.pid, vec!["cat".into(), file], &[], limits));
            }
        } else if base == "caddy" && matches!(argv.get(1).map(String::as_str), Some("run" | "start")) {
            captures.extend(capture_caddy(process, &argv, limits));
        } else if matches!(process.name.as_str(), "apache2" | "httpd") {
            captures.extend(capture_apache(process, &argv, limits));
        }
    }
    RelayFacts { captures }
}

/// The argument vector as the daemon shows it: daemons that rewrite their title (`sshd: … [listener]`,
/// `nginx: master process …`) leave one string, split here on whitespace.
fn effective_argv(process: &Process) -> Vec<String> {
    match process.cmdline.as_slice() {
        [single] => single.split_whitespace().map(str::to_string).collect(),
        many => many.iter().filter(|a| !a.is_empty()).cloned().collect(),
    }
}

/// For an sshd listener: the options to repeat for `sshd -T` (`-f`, `-o`, `-h`). Session
/// processes (`sshd: user@pts/0`) are not listeners and give `None`.
fn sshd_args(argv: &[String]) -> Option<Vec<String>> {
    let (first, rest) = argv.split_first()?;
    let rest: &[String] = if first == "sshd:" {
        let (program, after) = rest.split_first()?;
        if !program.ends_with("sshd") || !after.iter().any(|a| a == "[listener]") {
            return None;
        }
        after
    } else if first.rsplit('/').next() == Some("sshd") {
        rest
    } else {
        return None;
    };
    Some(repeat_options(rest, &["-f", "-o", "-h"]))
}

/// For an nginx master process: its `-c`, `-p` and `-g` options.
fn nginx_master_args(argv: &[String]) -> Option<Vec<String>> {
    let pos = argv
        .windows(3)
        .position(|w| w[0] == "nginx:" && w[1] == "master" && w[2] == "process")?;
    let args = argv.get(pos + 4..).unwrap_or(&[]);
    let mut out = repeat_options(args, &["-c", "-p"]);
    // `-g 'daemon on; master_process on;'` was one argument; the title splits it on spaces.
    let mut iter = args.iter();
    while iter.any(|a| a == "-g") {
        let words: Vec<&str> = iter
            .clone()
            .take_while(|a| !a.starts_with('-'))
            .map(String::as_str)
            .collect();
        if !words.is_empty() {
            out.push("-g".to_string());
            out.push(words.join(" "));
        }
    }
    Some(out)
}

/// The options among `args` named in `wanted`, each with its value (separate or attached).
fn repeat_options(args: &[String], wanted: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg.starts_with('[') {
            break;
        }
        if wanted.contains(&arg.as_str()) {
            if let Some(value) = iter.next() {
                out.push(arg.clone());
                out.push(value.clone());
            }
        } else if let Some(flag) = wanted.iter().find(|w| arg.len() > 2 && arg.starts_with(*w)) {
            out.push(flag.to_string());
            out.push(arg[flag.len()..].to_string());
        }
    }
    out
}

/// The daemon's executable: `/proc/PID/exe` as the snapshot saw it, else the name on `PATH`.
fn program(process: &Process, fallback: &str) -> String {
    process
        .exe
        .clone()
        .map(|e| e.trim_end_matches(" (deleted)").to_string())
        .unwrap_or_else(|| fallback.to_string())
}

/// `sshd -T` for the daemon; when its configuration has `Match` blocks, also `sshd -T -C` for
/// root and each login user (uid ≥ 1000) connecting from a documentation address, because
/// `Match` is only evaluated for a given connection.
fn capture_sshd(
    process: &Process,
    args: &[String],
    accounts: &Accounts,
    limits: &mut Vec<Limit>,
) -> Vec<CommandCapture> {
    let mut base = vec![program(process, "sshd"), "-T".to_string()];
    base.extend(args.iter().cloned());
    let Some(global) = capture("sshd", process.pid, base.clone(), &[], limits) else {
        return Vec::new();
    };
    let mut out = vec![global];
    if has_match_blocks(args) {
        let users = accounts
            .users
            .iter()
            .filter(|u| u.uid == 0 || u.uid >= 1000)
            .take(MAX_MATCH_USERS);
        for user in users {
            let mut command = base.clone();
            command.push("-C".to_string());
            command.push(format!("user={},host=remote.example,addr=203.0.113.7", user.name));
            out.extend(capture("sshd", process.pid, command, &[], limits));
        }
    }
    out
}

/// Whether the daemon's configuration file (or a file it includes from `sshd_config.d`) has a
/// `Match` line.
fn has_match_blocks(args: &[String]) -> bool {
    let file = args
        .windows(2)
        .find(|w| w[0] == "-f")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| "/etc/ssh/sshd_config".to_string());
    let mut texts: Vec<String> = std::fs::read_to_string(&file).into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/etc/ssh/sshd_config.d") {
        texts.extend(
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path()).ok()),
        );
    }
    texts.iter().flat_map(|t| t.lines()).any(|l| {
        l.trim_start()
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("match "))
    })
}

/// The files of haproxy's `-f` options (a directory stands for its `*.cfg` files, in order).
fn haproxy_files(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for path in argv.windows(2).filter(|w| w[0] == "-f").map(|w| w[1].clone()) {
        match std::fs::read_dir(&path) {
            Ok(entries) => {
                let mut files: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path().to_string_lossy().into_owned())
                    .filter(|p| p.ends_with(".cfg"))
                    .collect();
                files.sort();
                out.extend(files);
            }
            Err(_) => out.push(path),
        }
    }
    out
}

/// The value of `--name VALUE` or `--name=VALUE`.
fn long_option(argv: &[String], name: &str) -> Option<String> {
    let eq = format!("{name}=");
    argv.iter().enumerate().find_map(|(i, a)| match a.strip_prefix(&eq) {
        Some(v) => Some(v.to_string()),
        None if a == name => argv.get(i + 1).cloned(),
        None => None,
    })
}

/// `caddy adapt` of the running caddy's `--config` (or the Caddyfile in its working directory),
/// and the file itself for line numbers. JSON configurations are read as they are.
fn capture_caddy(process: &Process, argv: &[String], limits: &mut Vec<Limit>) -> Vec<CommandCapture> {
    let config = long_option(argv, "--config").or_else(|| {
        let cwd = std::fs::read_link(format!("/proc/{}/cwd", process.pid)).ok()?;
        let file = cwd.join("Caddyfile");
        file.exists().then(|| file.to_string_lossy().into_owned())
    });
    let Some(config) = config else {
        limits.push(Limit {
            scope: "relays.caddy".into(),
            detail: format!(
                "caddy pid {} runs without --config and no Caddyfile in its directory: a configuration \
                 loaded through its admin API was not read",
                process.pid
            ),
        });
        return Vec::new();
    };
    let adapter = long_option(argv, "--adapter");
    let mut out = Vec::new();
    let file = capture(
        "caddyfile",
        process.pid,
        vec!["cat".into(), config.clone()],
        &[],
        limits,
    );
    if adapter.as_deref() == Some("json") || (adapter.is_none() && config.ends_with(".json")) {
        out.extend(file.map(|f| CommandCapture {
            kind: "caddy".into(),
            ..f
        }));
        return out;
    }
    let mut command = vec![program(process, "caddy"), "adapt".into(), "--config".into(), config];
    if let Some(adapter) = adapter {
        command.extend(["--adapter".into(), adapter]);
    }
    out.extend(capture("caddy", process.pid, command, &[], limits));
    out.extend(file);
    out
}

/// Apache's own list of its configuration files (`-t -D DUMP_INCLUDES`, with the daemon's
/// `-f`/`-d`/`-C`/`-c`/`-D` options and `APACHE_*` environment), then each file.
fn capture_apache(process: &Process, argv: &[String], limits: &mut Vec<Limit>) -> Vec<CommandCapture> {
    let mut command = vec![program(process, "apache2")];
    command.extend(repeat_options(
        argv.get(1..).unwrap_or(&[]),
        &["-f", "-d", "-C", "-c", "-D"],
    ));
    command.extend(["-t".into(), "-D".into(), "DUMP_INCLUDES".into()]);
    let env: Vec<(String, String)> = std::fs::read(format!("/proc/{}/environ", process.pid))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
                .filter(|(k, _)| k.starts_with("APACHE_"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let Some(includes) = capture("apache-includes", process.pid, command, &env, limits) else {
        return Vec::new();
    };
    let files: Vec<String> = includes
        .output
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('(')
                .and_then(|r| r.split_once(") "))
                .map(|(_, p)| p.trim().to_string())
        })
        .collect();
    let mut out = vec![includes];
    for file in files {
        out.extend(capture("apache", process.pid, vec!["cat".into(), file], &[], limits));
    }
    out
}

/// Runs `command` (bounded in time and output) and keeps its stdout; a failure becomes a limit.
fn capture(
    kind: &str,
    pid: u32,
    command: Vec<String>,
    env: &[(String, String)],
    limits: &mut Vec<Limit>,
) -> Option<CommandCapture> {
    let shown = command.join(" ");
    match run_bounded(&command, env) {
        Ok(output) => Some(CommandCapture {
            kind: kind.to_string(),
            pid,
            command,
            output,
        }),
        Err(detail) => {
            limits.push(Limit {
                scope: format!("relays.{kind}"),
                detail: format!("`{shown}` for pid {pid}: {detail}"),
            });
            None
        }
    }
}

/// Runs a command with stdin closed and `env` added; returns stdout, or the error with stderr's
/// first line.
fn run_bounded(command: &[String], env: &[(String, String)]) -> Result<String, String> {
    let (program, args) = command.split_first().ok_or("empty command")?;
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(MAX_OUTPUT as u64).read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + DUMP_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no result within {} s", DUMP_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait: {e}")),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(String::from_utf8_lossy(&stdout).into_owned());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = (&mut pipe).take(64 * 1024).read_to_string(&mut stderr);
    }
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    Err(format!("{status}: {first}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn sshd_listener_title_gives_its_options() {
        let title = argv("sshd: /usr/sbin/sshd -D -f /tmp/x/sshd_config -o Port=22 [listener] 0 of 10-100 startups");
        assert_eq!(sshd_args(&title), Some(argv("-f /tmp/x/sshd_config -o Port=22")));
        assert_eq!(sshd_args(&argv("sshd: alice@pts/0")), None);
        assert_eq!(
            sshd_args(&argv("/usr/sbin/sshd -D -f/etc/ssh/alt")),
            Some(argv("-f /etc/ssh/alt"))
        );
    }

    #[test]
    fn nginx_master_title_gives_its_options_and_workers_none() {
        let title = argv("nginx: master process nginx -c /tmp/lwngx/nginx.conf -p /tmp/lwngx/");
        assert_eq!(
            nginx_master_args(&title),
            Some(argv("-c /tmp/lwngx/nginx.conf -p /tmp/lwngx/"))
        );
        assert_eq!(nginx_master_args(&argv("nginx: worker process")), None);
        let debian = argv("nginx: master process /usr/sbin/nginx -g daemon on; master_process on;");
        assert_eq!(
            nginx_master_args(&debian),
            Some(vec!["-g".into(), "daemon on; master_process on;".into()])
        );
    }

    #[test]
    fn caddy_and_haproxy_options() {
        let caddy = argv("caddy run --config=/etc/caddy/Caddyfile --adapter caddyfile");
        assert_eq!(long_option(&caddy, "--config").as_deref(), Some("/etc/caddy/Caddyfile"));
        assert_eq!(long_option(&caddy, "--adapter").as_deref(), Some("caddyfile"));
        assert_eq!(
            haproxy_files(&argv("haproxy -Ws -f /nonexistent/h.cfg -p /run/h.pid")),
            vec!["/nonexistent/h.cfg"]
        );
    }

    #[test]
    fn failing_dump_is_a_limit_naming_the_command() {
        let mut limits = Vec::new();
        let got = capture(
            "nginx",
            7,
            vec!["/nonexistent/nginx".into(), "-T".into()],
            &[],
            &mut limits,
        );
        assert!(got.is_none());
        assert!(limits[0].detail.contains("/nonexistent/nginx -T") && limits[0].detail.contains("pid 7"));
    }
}
