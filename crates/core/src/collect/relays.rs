//! Effective configuration of the relays that run in this namespace: each sshd asked with
//! `sshd -T` (its own `-f`/`-o`/`-h` options; per user with `-C` when the configuration has
//! `Match` blocks), each nginx master asked with `nginx -T` (its own `-c`/`-p`/`-g`), each
//! haproxy's `-f` files, each caddy's configuration through `caddy adapt` (and its Caddyfile), each
//! Apache's files as its own `-t -D DUMP_INCLUDES` lists them.
//!
//! Only processes that own sockets of the snapshot are considered — relays own their listeners —
//! and processes that share a command line are asked once (root's first, so that a worker or a
//! look-alike is the one skipped). Whether a process is asked at all is decided by
//! [`super::trust`]: its own program is run (from the verified descriptor, by the runner in
//! [`super::command`]) only when it is root-owned in root-owned directories, as root for a root
//! daemon and as the daemon's own uid and gid (no supplementary groups) for another user's; its
//! files are read as the daemon ([`super::config_files`]). Running the root-owned program with
//! the daemon's identity gives that user nothing they could not do themselves, and keeps
//! Debian's caddy (user `caddy`) and unprivileged developers' servers in the audit. Every
//! process not asked, every failed or cut capture becomes a [`Limit`] saying whose process, which
//! file and which check.

use super::command::{self, Program, Request};
use super::config_files::{self, FileText, Files};
use super::trust::{Daemon, Refusal, VerifiedExe};
use crate::facts::{Accounts, CommandCapture, Limit, Process, RelayFacts};
use std::time::Duration;

/// How long one configuration dump may take.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);
/// The most output kept from one dump.
const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// The most per-user `sshd -T -C` captures per daemon.
const MAX_MATCH_USERS: usize = 8;
/// How much of a command line a message quotes.
const MAX_TITLE: usize = 120;

/// A relay recognised by its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Relay {
    /// An sshd listener, with the options to repeat.
    Sshd(Vec<String>),
    /// An nginx master process, with the options to repeat.
    Nginx(Vec<String>),
    /// An haproxy process.
    Haproxy,
    /// `caddy run` or `caddy start`.
    Caddy,
    /// An Apache httpd.
    Apache,
}

impl Relay {
    /// What `process` (whose argv is `argv`) is, if it is a relay.
    fn of(process: &Process, argv: &[String]) -> Option<Relay> {
        let base = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)).unwrap_or("");
        if let Some(args) = sshd_args(argv) {
            Some(Relay::Sshd(args))
        } else if let Some(args) = nginx_master_args(argv) {
            Some(Relay::Nginx(args))
        } else if base == "haproxy" {
            Some(Relay::Haproxy)
        } else if base == "caddy" && matches!(argv.get(1).map(String::as_str), Some("run" | "start")) {
            Some(Relay::Caddy)
        } else if matches!(process.name.as_str(), "apache2" | "httpd") {
            Some(Relay::Apache)
        } else {
            None
        }
    }

    /// The file names the daemon's program may have: a process that only *calls* itself nginx or
    /// Apache (a user's python with `comm` set to `apache2`) is not asked to run its program.
    fn programs(&self) -> &'static [&'static str] {
        match self {
            Relay::Sshd(_) => &["sshd"],
            Relay::Nginx(_) => &["nginx", "nginx-debug", "openresty"],
            Relay::Haproxy => &["haproxy"],
            Relay::Caddy => &["caddy"],
            Relay::Apache => &["apache2", "httpd"],
        }
    }

    /// The capture kind, also the limit scope's suffix.
    fn kind(&self) -> &'static str {
        match self {
            Relay::Sshd(_) => "sshd",
            Relay::Nginx(_) => "nginx",
            Relay::Haproxy => "haproxy",
            Relay::Caddy => "caddy",
            Relay::Apache => "apache",
        }
    }
}

/// Captures the configuration of every relay among `processes`.
pub fn collect(processes: &[Process], accounts: &Accounts, limits: &mut Vec<Limit>) -> RelayFacts {
    let mut captures = Vec::new();
    let mut seen: Vec<Vec<String>> = Vec::new();
    let mut ordered: Vec<&Process> = processes.iter().collect();
    ordered.sort_by_key(|p| (p.uid != 0, p.pid));
    for process in ordered {
        let argv = effective_argv(process);
        let Some(relay) = Relay::of(process, &argv) else {
            continue;
        };
        if seen.contains(&argv) {
            continue;
        }
        seen.push(argv.clone());
        let mut asker = match Daemon::inspect(process) {
            Ok(daemon) => Asker {
                daemon,
                title: title(process),
                programs: relay.programs(),
                exe: None,
                limits,
            },
            Err(refusal) => {
                limits.push(Limit {
                    scope: format!("relays.{}", relay.kind()),
                    detail: format!(
                        "`{}` (pid {}, uid {}) was not asked for its configuration: {refusal}",
                        title(process),
                        process.pid,
                        process.uid
                    ),
                });
                continue;
            }
        };
        captures.extend(match relay {
            Relay::Sshd(args) => capture_sshd(&mut asker, &args, accounts),
            Relay::Nginx(args) => asker
                .run("nginx", [vec!["-T".to_string()], args].concat(), &[])
                .into_iter()
                .collect(),
            Relay::Haproxy => capture_haproxy(&mut asker, &argv),
            Relay::Caddy => capture_caddy(&mut asker, &argv),
            Relay::Apache => capture_apache(&mut asker, &argv),
        });
    }
    RelayFacts { captures }
}

/// The command line as messages quote it, shortened.
fn title(process: &Process) -> String {
    let full = process.cmdline.join(" ");
    match full.char_indices().nth(MAX_TITLE) {
        Some((cut, _)) => format!("{}…", &full[..cut]),
        None => full,
    }
}

/// Asks one daemon: runs its verified program and reads its files with its identity, turning
/// every refusal and failure into a limit.
struct Asker<'l> {
    daemon: Daemon,
    title: String,
    /// The file names its program may have (see [`Relay::programs`]).
    programs: &'static [&'static str],
    /// The verified executable, once looked at (a refusal is reported once).
    exe: Option<Result<VerifiedExe, Refusal>>,
    limits: &'l mut Vec<Limit>,
}

impl Asker<'_> {
    fn limit(&mut self, kind: &str, detail: String) {
        self.limits.push(Limit {
            scope: format!("relays.{kind}"),
            detail,
        });
    }

    /// Runs the daemon's own program with `args` (and `env`) and keeps its stdout — only for a
    /// daemon that runs as root, or as the user loopwarden runs as: a program that another user
    /// configured runs that user's code (an nginx `load_module`, a Caddy plugin), and loopwarden
    /// runs nobody else's code.
    fn run(&mut self, kind: &str, args: Vec<String>, env: &[(String, String)]) -> Option<CommandCapture> {
        if let Some(other) = self.daemon.run_as() {
            if self.exe.is_none() {
                let detail = format!(
                    "`{}` (pid {}) runs as uid {}: its program was not run to ask for its configuration \
                     (loopwarden runs no program another user configured; run loopwarden as that \
                     user to include it)",
                    self.title,
                    self.daemon.pid(),
                    other.uid
                );
                self.limit(kind, detail);
                self.exe = Some(Err(Refusal("runs as another user".into())));
            }
            return None;
        }
        self.verify(kind);
        let Some(Ok(exe)) = &self.exe else {
            return None;
        };
        let request = Request {
            env: env.to_vec(),
            run_as: None,
            cwd: self.daemon.cwd_path(),
            ..Request::new(Program::Verified(exe), args, DUMP_TIMEOUT, MAX_OUTPUT)
        };
        let mut line: Vec<String> = vec![exe.path().to_string()];
        line.extend(request.args.iter().cloned());
        let what = format!("`{}` for pid {}", request.shown(), self.daemon.pid());
        let outcome = command::run(&request);
        self.record(kind, &what, line, outcome)
    }

    /// Verifies the daemon's executable once — root's, in root's directories, and named as the
    /// daemon it claims to be; a refusal becomes one limit.
    fn verify(&mut self, kind: &str) {
        if self.exe.is_none() {
            let programs = self.programs;
            let verified = self.daemon.executable().and_then(|exe| {
                let name = exe.path().rsplit('/').next().unwrap_or_default().to_string();
                if programs.contains(&name.as_str()) {
                    Ok(exe)
                } else {
                    Err(Refusal(format!(
                        "its executable {} is not {} (a process can take any name)",
                        exe.path(),
                        programs.join(" or ")
                    )))
                }
            });
            if let Err(refusal) = &verified {
                let detail = format!(
                    "`{}` (pid {}, {}) was not asked for its configuration: {refusal}. loopwarden \
                     runs a daemon's program only when it and every directory above it are owned by \
                     root and not writable by group or others",
                    self.title,
                    self.daemon.pid(),
                    self.daemon.who()
                );
                self.limit(kind, detail);
            }
            self.exe = Some(verified);
        }
    }

    /// A capture of a successful run (with a limit when its output was cut), or a limit naming
    /// the run (`what`) and why it gave nothing.
    fn record(
        &mut self,
        kind: &str,
        what: &str,
        command: Vec<String>,
        outcome: Result<command::Output, command::RunError>,
    ) -> Option<CommandCapture> {
        let out = match outcome {
            Ok(out) if out.status.success() => out,
            Ok(out) => {
                self.limit(kind, format!("{what}: {}: {}", out.status, out.stderr_text()));
                return None;
            }
            Err(e) => {
                self.limit(kind, format!("{what}: {e}"));
                return None;
            }
        };
        if out.truncated() {
            let detail = format!(
                "{what}: output cut at {} MiB ({} bytes printed); the configuration read is incomplete",
                MAX_OUTPUT / (1024 * 1024),
                out.stdout_len
            );
            self.limit(kind, detail);
        }
        Some(CommandCapture {
            kind: kind.to_string(),
            pid: self.daemon.pid(),
            command,
            output: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }

    /// Reads `paths` as the daemon; each failure is a limit.
    fn read_all(&mut self, kind: &str, paths: &[String]) -> Vec<CommandCapture> {
        self.read_each(kind, paths)
            .into_iter()
            .filter_map(|r| r.map_err(|detail| self.limit(kind, detail)).ok())
            .collect()
    }

    /// Reads `paths` as the daemon; failures are returned for the caller to word.
    fn read_each(&mut self, kind: &str, paths: &[String]) -> Vec<Result<CommandCapture, String>> {
        let pid = self.daemon.pid();
        let results = self.as_daemon(kind, |files| {
            paths
                .iter()
                .map(|p| {
                    files
                        .absolute(p)
                        .and_then(|abs| files.read(&abs).map(|text| (abs, text)))
                })
                .collect::<Vec<_>>()
        });
        let Some(results) = results else { return Vec::new() };
        results
            .into_iter()
            .map(|r| {
                let (path, FileText { text, truncated }) =
                    r.map_err(|e| format!("pid {pid} ({}): {e}", self.daemon.who()))?;
                if truncated {
                    self.limit(
                        kind,
                        format!(
                            "{path} of pid {pid}: read cut at {} MiB; the configuration read is incomplete",
                            config_files::MAX_FILE / (1024 * 1024)
                        ),
                    );
                }
                Ok(CommandCapture {
                    kind: kind.to_string(),
                    pid,
                    command: vec!["read".into(), path],
                    output: text,
                })
            })
            .collect()
    }

    /// Runs `work` with the daemon's file identity; a refusal is a limit and gives `None`.
    fn as_daemon<T: Send>(&mut self, kind: &str, work: impl FnOnce(&Files) -> T + Send) -> Option<T> {
        match config_files::as_daemon(&self.daemon, work) {
            Ok(value) => Some(value),
            Err(refusal) => {
                let detail = format!("`{}`: its files were not read: {refusal}", self.title);
                self.limit(kind, detail);
                None
            }
        }
    }
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

/// `sshd -T` for the daemon; when its configuration has `Match` blocks, also `sshd -T -C` for
/// root and each login user (uid ≥ 1000) connecting from a documentation address, because
/// `Match` is only evaluated for a given connection.
fn capture_sshd(asker: &mut Asker<'_>, args: &[String], accounts: &Accounts) -> Vec<CommandCapture> {
    let base: Vec<String> = [vec!["-T".to_string()], args.to_vec()].concat();
    let Some(global) = asker.run("sshd", base.clone(), &[]) else {
        return Vec::new();
    };
    let mut out = vec![global];
    if asker
        .as_daemon("sshd", |files| has_match_blocks(files, args))
        .unwrap_or(false)
    {
        let users: Vec<String> = accounts
            .users
            .iter()
            .filter(|u| u.uid == 0 || u.uid >= 1000)
            .take(MAX_MATCH_USERS)
            .map(|u| u.name.clone())
            .collect();
        for user in users {
            let mut command = base.clone();
            command.push("-C".to_string());
            command.push(format!("user={user},host=remote.example,addr=203.0.113.7"));
            out.extend(asker.run("sshd", command, &[]));
        }
    }
    out
}

/// Whether the daemon's configuration file (or a file it includes from `sshd_config.d`) has a
/// `Match` line.
fn has_match_blocks(files: &Files, args: &[String]) -> bool {
    let file = args
        .windows(2)
        .find(|w| w[0] == "-f")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| "/etc/ssh/sshd_config".to_string());
    let mut paths = vec![file];
    paths.extend(
        files
            .list("/etc/ssh/sshd_config.d", ".conf")
            .ok()
            .flatten()
            .unwrap_or_default(),
    );
    paths
        .iter()
        .filter_map(|p| files.read(p).ok())
        .flat_map(|f| f.text.lines().map(str::to_string).collect::<Vec<_>>())
        .any(|l| {
            l.trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("match "))
        })
}

/// haproxy's `-f` files, read as the daemon: a directory stands for its `*.cfg` files, in order.
fn capture_haproxy(asker: &mut Asker<'_>, argv: &[String]) -> Vec<CommandCapture> {
    let named: Vec<String> = argv.windows(2).filter(|w| w[0] == "-f").map(|w| w[1].clone()).collect();
    let listed = asker.as_daemon("haproxy", |files| {
        named
            .iter()
            .map(|path| match files.list(path, ".cfg") {
                Ok(Some(entries)) => entries,
                Ok(None) | Err(_) => vec![path.clone()],
            })
            .collect::<Vec<_>>()
    });
    let paths: Vec<String> = listed.into_iter().flatten().flatten().collect();
    asker.read_all("haproxy", &paths)
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
fn capture_caddy(asker: &mut Asker<'_>, argv: &[String]) -> Vec<CommandCapture> {
    let explicit = long_option(argv, "--config");
    let named = explicit.clone().unwrap_or_else(|| "Caddyfile".to_string());
    let file = match asker.read_each("caddyfile", &[named]).pop() {
        Some(Ok(file)) => file,
        Some(Err(detail)) => {
            let detail = match explicit {
                Some(_) => detail,
                None => format!(
                    "caddy pid {} runs without --config and its working directory has no readable \
                     Caddyfile ({detail}): a configuration loaded through its admin API was not read",
                    asker.daemon.pid()
                ),
            };
            asker.limit("caddy", detail);
            return Vec::new();
        }
        None => return Vec::new(),
    };
    let config = file.command.last().cloned().unwrap_or_default();
    let adapter = long_option(argv, "--adapter");
    if adapter.as_deref() == Some("json") || (adapter.is_none() && config.ends_with(".json")) {
        return vec![CommandCapture {
            kind: "caddy".into(),
            ..file
        }];
    }
    let mut args = vec!["adapt".to_string(), "--config".into(), config];
    if let Some(adapter) = adapter {
        args.extend(["--adapter".into(), adapter]);
    }
    let mut out: Vec<CommandCapture> = asker.run("caddy", args, &[]).into_iter().collect();
    out.push(file);
    out
}

/// Apache's own list of its configuration files (`-t -D DUMP_INCLUDES`, with the daemon's
/// `-f`/`-d`/`-C`/`-c`/`-D` options and `APACHE_*` environment), then each file.
fn capture_apache(asker: &mut Asker<'_>, argv: &[String]) -> Vec<CommandCapture> {
    let mut args = repeat_options(argv.get(1..).unwrap_or(&[]), &["-f", "-d", "-C", "-c", "-D"]);
    args.extend(["-t".into(), "-D".into(), "DUMP_INCLUDES".into()]);
    let env: Vec<(String, String)> = asker
        .daemon
        .proc_file("environ")
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
                .filter(|(k, _)| k.starts_with("APACHE_"))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let Some(includes) = asker.run("apache-includes", args, &env) else {
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
    out.extend(asker.read_all("apache", &files));
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_process::{sleep_binary, Scratch, Sleeper};
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
    fn relays_are_recognised_by_their_command_line() {
        let caddy = argv("caddy run --config=/etc/caddy/Caddyfile --adapter caddyfile");
        assert_eq!(long_option(&caddy, "--config").as_deref(), Some("/etc/caddy/Caddyfile"));
        assert_eq!(long_option(&caddy, "--adapter").as_deref(), Some("caddyfile"));
        let process = |name: &str| Process {
            pid: 1,
            ppid: 0,
            name: name.into(),
            exe: None,
            cmdline: Vec::new(),
            uid: 0,
        };
        assert_eq!(Relay::of(&process("caddy"), &caddy), Some(Relay::Caddy));
        assert_eq!(Relay::of(&process("caddy"), &argv("caddy version")), None);
        let haproxy = argv("/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg");
        assert_eq!(Relay::of(&process("haproxy"), &haproxy), Some(Relay::Haproxy));
        assert_eq!(
            Relay::of(&process("apache2"), &argv("/usr/sbin/apache2 -k start")),
            Some(Relay::Apache)
        );
        assert_eq!(Relay::of(&process("python3"), &argv("python3 -m http.server")), None);
    }

    fn asker<'l>(process: &Process, limits: &'l mut Vec<Limit>) -> Asker<'l> {
        Asker {
            daemon: Daemon::inspect(process).expect("inspect our own child"),
            title: title(process),
            // The stand-in daemons are coreutils' sleep and tail.
            programs: &["sleep", "tail"],
            exe: None,
            limits,
        }
    }

    #[test]
    fn a_process_named_like_a_daemon_whose_program_is_another_is_not_run() {
        let sleeper = Sleeper::start(&sleep_binary());
        let process = sleeper.process();
        let mut limits = Vec::new();
        let mut asker = asker(&process, &mut limits);
        asker.programs = &["apache2", "httpd"];
        assert!(asker.run("apache-includes", vec!["--version".into()], &[]).is_none());
        assert!(
            limits[0]
                .detail
                .contains("is not apache2 or httpd (a process can take any name)"),
            "{limits:?}"
        );
    }

    #[test]
    fn the_daemons_own_program_answers_through_its_descriptor() {
        let sleeper = Sleeper::start(&sleep_binary());
        let process = sleeper.process();
        let mut limits = Vec::new();
        let mut asker = asker(&process, &mut limits);
        let got = asker
            .run("nginx", vec!["--version".into()], &[])
            .expect("sleep --version");
        assert!(got.output.contains("sleep (GNU coreutils)"), "{}", got.output);
        assert_eq!(
            got.command,
            vec![sleep_binary().to_string_lossy().into_owned(), "--version".into()]
        );
        assert!(asker.run("nginx", vec!["--no-such-option".into()], &[]).is_none());
        assert!(
            limits[0].detail.contains("--no-such-option` for pid") && limits[0].detail.contains("exit status: 1"),
            "{limits:?}"
        );
    }

    #[test]
    fn a_program_others_could_have_written_is_not_run_and_the_limit_says_why() {
        let scratch = Scratch::new("relays-open", 0o777);
        let copy = scratch.path().join("sleep");
        std::fs::copy(sleep_binary(), &copy).expect("copy sleep");
        let sleeper = Sleeper::start(&copy);
        let process = sleeper.process();
        let mut limits = Vec::new();
        let mut asker = asker(&process, &mut limits);
        assert!(asker.run("nginx", vec!["--version".into()], &[]).is_none());
        assert!(asker.run("nginx", vec!["--help".into()], &[]).is_none());
        assert_eq!(limits.len(), 1, "one refusal per daemon: {limits:?}");
        let detail = &limits[0].detail;
        assert!(
            detail.contains(&format!("(pid {}, uid ", process.pid))
                && detail.contains(&format!(
                    "directory {} (mode 0777) is writable by group and others",
                    scratch.path().display()
                )),
            "{detail}"
        );
    }

    #[test]
    fn a_dump_past_the_cap_is_kept_cut_and_the_cut_is_a_limit() {
        let scratch = Scratch::new("relays-big", 0o755);
        let big = scratch.path().join("big.conf");
        std::fs::write(&big, vec![b'#'; 10 * 1024 * 1024]).expect("write 10 MiB");
        let tail = ["/usr/bin/tail", "/bin/tail"]
            .iter()
            .map(std::path::Path::new)
            .find(|p| p.exists())
            .expect("coreutils tail");
        let daemon = Sleeper::spawn(tail, &["-f", "/dev/null"]);
        let process = daemon.process();
        let mut limits = Vec::new();
        let got = asker(&process, &mut limits)
            .run(
                "nginx",
                vec!["-c".into(), "+1".into(), big.to_string_lossy().into_owned()],
                &[],
            )
            .expect("a cut dump is still a capture");
        assert_eq!(got.output.len(), MAX_OUTPUT);
        assert_eq!(limits.len(), 1, "{limits:?}");
        assert!(
            limits[0]
                .detail
                .contains("output cut at 4 MiB (10485760 bytes printed)"),
            "{}",
            limits[0].detail
        );
    }
}
