//! The one way collectors run a program: bounded in time and output, without deadlocks.
//!
//! stdout and stderr are read concurrently (one `poll` loop), so a child that fills its stderr
//! pipe while the runner waits on stdout cannot stall. Output past the cap is read and thrown
//! away rather than left in the pipe: the child is never killed by `SIGPIPE` for printing too
//! much, and the caller learns the output was cut ([`Output::truncated`]) instead of seeing a
//! failure. A child still running at the deadline is killed by its own pid — nothing else is
//! signalled — and reaped. The environment is replaced by a fixed `PATH` and `LC_ALL=C` plus what
//! the caller adds, stdin is `/dev/null` and the working directory `/`. Every child runs in a
//! session of its own, with no controlling terminal and no descriptor of ours but its stdio.
//!
//! A program is either looked up on that fixed `PATH` (the listing tools: `nft`,
//! `iptables-save`) or a [`VerifiedExe`]: a daemon's executable opened and checked by
//! [`super::trust`], which is executed from its descriptor (`fexecve`), never by a path name
//! that could be swapped between the check and the exec. It may run as another uid
//! ([`RunAs`]): then with that uid's primary group, no supplementary groups and
//! `no_new_privs`.

use super::trust::VerifiedExe;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `PATH` every program is given (and listing tools are looked up on): system directories
/// only root may write, never the caller's `PATH`.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How many lines of stderr a message quotes.
const STDERR_LINES: usize = 20;
/// How much of stderr is kept: enough for any error message.
const MAX_STDERR: usize = 64 * 1024;
/// How long the pipes are still read after the child exited, for output that a grandchild
/// holding the pipe open would otherwise make the runner wait for until the deadline.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);
/// One read's buffer.
const CHUNK: usize = 64 * 1024;

/// What to execute.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// A system tool by name, looked up on the fixed `PATH`.
    OnPath(&'a str),
    /// A daemon's executable, already opened and checked; executed from its descriptor.
    Verified(&'a VerifiedExe),
}

/// The identity a program runs with when it is not this process's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id (real, effective, saved).
    pub uid: u32,
    /// Group id (real, effective, saved); supplementary groups are dropped.
    pub gid: u32,
}

/// One bounded run.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The program.
    pub program: Program<'a>,
    /// Its arguments (without `argv[0]`).
    pub args: Vec<String>,
    /// Environment added to the fixed `PATH` and `LC_ALL=C`.
    pub env: Vec<(String, String)>,
    /// Run as this identity instead of the caller's.
    pub run_as: Option<RunAs>,
    /// Wall-clock limit; the child is killed when it is reached.
    pub timeout: Duration,
    /// The most stdout kept; the rest is read and discarded.
    pub max_stdout: usize,
    /// Working directory (`/` when `None`).
    pub cwd: Option<String>,
}

impl<'a> Request<'a> {
    /// A run of `program` with `args`, no extra environment, as the caller.
    pub fn new(program: Program<'a>, args: Vec<String>, timeout: Duration, max_stdout: usize) -> Request<'a> {
        Request {
            program,
            args,
            env: Vec::new(),
            run_as: None,
            timeout,
            max_stdout,
            cwd: None,
        }
    }

    /// The command line as a person would type it, for messages.
    pub fn shown(&self) -> String {
        let name = match self.program {
            Program::OnPath(name) => name.to_string(),
            Program::Verified(exe) => exe.path().to_string(),
        };
        std::iter::once(name)
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished child left.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// The first `max_stdout` bytes of stdout.
    pub stdout: Vec<u8>,
    /// How many bytes it wrote to stdout in all.
    pub stdout_len: u64,
    /// The first 64 KiB of stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether stdout was longer than the cap (and [`Output::stdout`] holds only its start).
    pub fn truncated(&self) -> bool {
        self.stdout_len > self.stdout.len() as u64
    }

    /// What the program said on stderr, whole: its non-empty lines joined with ` / ` (at most
    /// twenty, then how many more), or `no message`. The whole of it, because the
    /// first line is often not the error: `nginx -t` says "syntax is ok" before the `[emerg]`
    /// line that says why the test failed.
    pub fn stderr_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            return "no message".to_string();
        }
        let mut out = lines[..lines.len().min(STDERR_LINES)].join(" / ");
        if lines.len() > STDERR_LINES {
            out.push_str(&format!(" / … {} more line(s)", lines.len() - STDERR_LINES));
        }
        out
    }
}

/// Why a run gave no [`Output`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program does not exist on the fixed `PATH`.
    #[error("not installed")]
    NotFound,
    /// It could not be started.
    #[error("cannot run: {0}")]
    Spawn(#[source] std::io::Error),
    /// It was still running at the deadline and was killed.
    #[error("no result within {} s (killed)", .0.as_secs_f32())]
    TimedOut(Duration),
    /// Reading its output or waiting for it failed.
    #[error("cannot collect its result: {0}")]
    Io(#[source] std::io::Error),
}

/// Runs the request to completion (or the deadline).
pub fn run(request: &Request<'_>) -> Result<Output, RunError> {
    let deadline = Instant::now() + request.timeout;
    let mut command = build(request).map_err(RunError::Spawn)?;
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if matches!(request.program, Program::OnPath(_)) => RunError::NotFound,
        _ => RunError::Spawn(e),
    })?;
    let pipes = (child.stdout.take(), child.stderr.take());
    let result = collect(&mut child, pipes, request.max_stdout, deadline);
    if result.is_err() {
        // Killed by its own pid only: the runner never signals anything it did not start.
        let _ = child.kill();
        let _ = child.wait();
    }
    result.map_err(|e| match e {
        Stop::Deadline => RunError::TimedOut(request.timeout),
        Stop::Io(e) => RunError::Io(e),
    })
}

/// The `std` command for a request: environment, stdio, identity and, for a verified
/// executable, the `fexecve` that replaces the path-based exec.
fn build(request: &Request<'_>) -> std::io::Result<std::process::Command> {
    let mut env: Vec<(String, String)> = vec![("PATH".into(), SAFE_PATH.into()), ("LC_ALL".into(), "C".into())];
    env.extend(request.env.iter().cloned());
    let mut command = match request.program {
        Program::OnPath(name) => std::process::Command::new(name),
        Program::Verified(exe) => std::process::Command::new(exe.path()),
    };
    command
        .args(&request.args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(request.cwd.as_deref().unwrap_or("/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Every child starts its own session, without a controlling terminal, and inherits no
    // descriptor but its stdio: a program asked for a configuration must not reach the terminal
    // or the files of whoever runs loopwarden (TIOCSTI, an fd 9 opened by the caller's shell).
    // CLOSE_RANGE_CLOEXEC keeps a verified executable's descriptor usable for fexecve.
    // SAFETY: setsid and close_range are async-signal-safe system calls on the child only.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if let Some(identity) = request.run_as {
        // std drops the supplementary groups itself when root changes uid.
        command.uid(identity.uid).gid(identity.gid);
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    if let Program::Verified(exe) = request.program {
        let argv = c_strings(std::iter::once(exe.path()).chain(request.args.iter().map(String::as_str)))?;
        let envp = c_strings(
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        )?;
        let fd = exe.as_fd().as_raw_fd();
        // SAFETY: runs in the forked child: it only reads the vectors prepared above (no
        // allocation) and calls fexecve, which does not return on success. On failure the error
        // goes back to the parent as the spawn error, and the path name is never executed.
        unsafe {
            command.pre_exec(move || {
                libc::fexecve(fd, argv.as_ptr(), envp.as_ptr());
                Err(std::io::Error::last_os_error())
            });
        }
    }
    Ok(command)
}

/// NUL-terminated strings with the null-terminated pointer array `exec` takes, built before
/// `fork` so that the child does not allocate.
struct CStrings {
    _owned: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_owned`, which moves together with them and is never mutated.
unsafe impl Send for CStrings {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for CStrings {}

impl CStrings {
    /// The null-terminated pointer array.
    fn as_ptr(&self) -> *const *const libc::c_char {
        self.pointers.as_ptr()
    }
}

fn c_strings<'s>(items: impl Iterator<Item = &'s str>) -> std::io::Result<CStrings> {
    let owned: Vec<CString> = items
        .map(|s| CString::new(s).map_err(|_| std::io::Error::other(format!("argument {s:?} contains a NUL byte"))))
        .collect::<Result<_, _>>()?;
    let mut pointers: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    pointers.push(std::ptr::null());
    Ok(CStrings {
        _owned: owned,
        pointers,
    })
}

/// Why reading stopped early.
enum Stop {
    Deadline,
    Io(std::io::Error),
}

/// One pipe being read: what is kept of it and how much went through.
struct Stream<R> {
    pipe: Option<R>,
    kept: Vec<u8>,
    total: u64,
    cap: usize,
}

impl<R: Read + AsFd> Stream<R> {
    fn new(pipe: Option<R>, cap: usize) -> Stream<R> {
        Stream {
            pipe,
            kept: Vec::new(),
            total: 0,
            cap,
        }
    }

    /// Reads what is available (the pipe is readable); keeps up to the cap and discards the
    /// rest. Closes the stream at end of file.
    fn read_some(&mut self, buffer: &mut [u8]) -> Result<(), Stop> {
        let Some(pipe) = self.pipe.as_mut() else { return Ok(()) };
        match pipe.read(buffer) {
            Ok(0) => self.pipe = None,
            Ok(n) => {
                self.total += n as u64;
                let room = self.cap.saturating_sub(self.kept.len()).min(n);
                self.kept.extend_from_slice(&buffer[..room]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Stop::Io(e)),
        }
        Ok(())
    }
}

/// Reads both pipes until they close (or, once the child has exited, for a short grace period),
/// then reaps the child; gives up at the deadline.
fn collect(
    child: &mut Child,
    (stdout, stderr): (Option<ChildStdout>, Option<ChildStderr>),
    max_stdout: usize,
    deadline: Instant,
) -> Result<Output, Stop> {
    let mut out = Stream::new(stdout, max_stdout);
    let mut err = Stream::new(stderr, MAX_STDERR);
    let mut buffer = vec![0u8; CHUNK];
    let mut exited: Option<(ExitStatus, Instant)> = None;
    while out.pipe.is_some() || err.pipe.is_some() {
        let now = Instant::now();
        if now >= deadline {
            return Err(Stop::Deadline);
        }
        if exited.is_none() {
            exited = child.try_wait().map_err(Stop::Io)?.map(|s| (s, now + DRAIN_AFTER_EXIT));
        }
        let mut until = deadline;
        if let Some((_, drain_end)) = exited {
            if now >= drain_end {
                break;
            }
            until = until.min(drain_end);
        }
        // Wake up now and then to notice the child's exit while a grandchild holds the pipes.
        let wait = until.saturating_duration_since(now).min(Duration::from_millis(50));
        let (out_ready, err_ready) = wait_readable(out.pipe.as_ref(), err.pipe.as_ref(), wait)?;
        if out_ready {
            out.read_some(&mut buffer)?;
        }
        if err_ready {
            err.read_some(&mut buffer)?;
        }
    }
    let status = match exited {
        Some((status, _)) => status,
        None => wait_until(child, deadline)?,
    };
    Ok(Output {
        status,
        stdout: out.kept,
        stdout_len: out.total,
        stderr: err.kept,
    })
}

/// Polls the open pipes for up to `wait`; says which are readable (or closed).
fn wait_readable(out: Option<&ChildStdout>, err: Option<&ChildStderr>, wait: Duration) -> Result<(bool, bool), Stop> {
    let events = PollFlags::IN;
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
    if let Some(pipe) = out {
        fds.push(PollFd::new(pipe, events));
    }
    if let Some(pipe) = err {
        fds.push(PollFd::new(pipe, events));
    }
    let timeout = Timespec {
        tv_sec: wait.as_secs() as i64,
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(Stop::Io(e.into())),
    }
    let ready = |fd: &PollFd<'_>| !fd.revents().is_empty();
    let mut flags = fds.iter();
    let out_ready = out.is_some() && flags.next().is_some_and(ready);
    let err_ready = err.is_some() && flags.next().is_some_and(ready);
    Ok((out_ready, err_ready))
}

/// Waits for the child's exit until the deadline.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<ExitStatus, Stop> {
    loop {
        if let Some(status) = child.try_wait().map_err(Stop::Io)? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(Stop::Deadline);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration, cap: usize) -> Result<Output, RunError> {
        run(&Request::new(
            Program::OnPath("sh"),
            vec!["-c".into(), script.into()],
            timeout,
            cap,
        ))
    }

    /// A descriptor the caller left open without close-on-exec (as a shell's `9</etc/shadow`
    /// does) is not inherited, and the child leads a session of its own with no controlling
    /// terminal (no TIOCSTI into the caller's terminal).
    #[test]
    fn a_child_gets_no_descriptor_and_no_terminal_of_ours() {
        // SAFETY: plain open/dup2/close on descriptors this test owns.
        let leaked = unsafe {
            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            assert!(fd >= 0);
            let high = libc::dup2(fd, 77);
            libc::close(fd);
            high
        };
        assert_eq!(leaked, 77);
        let out = sh(
            "ls /proc/$$/fd; read -r pid comm state ppid pgrp session tty rest < /proc/$$/stat; \
             echo \"session=$session pid=$$ tty=$tty\"",
            Duration::from_secs(5),
            4096,
        )
        .expect("sh runs");
        // SAFETY: closes the descriptor opened above.
        unsafe { libc::close(leaked) };
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let fds: Vec<&str> = text.lines().take_while(|l| !l.starts_with("session=")).collect();
        assert!(!fds.contains(&"77"), "the caller's descriptor leaked: {text}");
        let status = text.lines().last().unwrap_or_default();
        let field = |name: &str| {
            status
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(field("session"), field("pid"), "a session of its own: {status}");
        assert_eq!(field("tty"), "0", "no controlling terminal: {status}");
    }

    #[test]
    fn a_chatty_stderr_does_not_stall_the_runner() {
        // 1 MiB on stderr before the one stdout line: a runner that reads stdout to the end
        // before touching stderr waits forever on a child blocked on its full stderr pipe.
        let started = Instant::now();
        let out = sh(
            "head -c 1048576 /dev/zero >&2; echo done",
            Duration::from_secs(10),
            1024,
        )
        .expect("runs");
        assert!(out.status.success());
        assert_eq!(out.stdout, b"done\n");
        assert_eq!(out.stderr.len(), MAX_STDERR);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn output_past_the_cap_is_cut_not_a_failure() {
        let cap = 4 * 1024 * 1024;
        let out = sh("head -c 10485760 /dev/zero", Duration::from_secs(20), cap).expect("runs");
        // `head` finished normally: it was never killed by SIGPIPE.
        assert!(out.status.success(), "{:?}", out.status);
        assert_eq!(out.stdout.len(), cap);
        assert_eq!(out.stdout_len, 10 * 1024 * 1024);
        assert!(out.truncated());
    }

    #[test]
    fn a_child_past_its_deadline_is_killed_and_reaped() {
        let pid_file = std::env::temp_dir().join(format!("lw-runner-deadline-{}", std::process::id()));
        let started = Instant::now();
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let err = sh(&script, Duration::from_millis(300), 1024).expect_err("times out");
        assert!(matches!(err, RunError::TimedOut(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let pid = std::fs::read_to_string(&pid_file).expect("pid file");
        let _ = std::fs::remove_file(&pid_file);
        // Killed and reaped: no process, not even a zombie, is left under that pid.
        assert!(!std::path::Path::new(&format!("/proc/{}", pid.trim())).exists());
    }

    #[test]
    fn a_grandchild_holding_the_pipe_does_not_hold_the_runner() {
        let started = Instant::now();
        // The background sleep inherits stdout and outlives the shell; it is not ours to kill.
        let out = sh("sleep 3 & echo hi", Duration::from_secs(10), 1024).expect("runs");
        assert_eq!(out.stdout, b"hi\n");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn a_missing_tool_and_a_failing_one_are_told_apart() {
        let missing = run(&Request::new(
            Program::OnPath("loopwarden-no-such-tool"),
            vec![],
            Duration::from_secs(5),
            1024,
        ));
        assert!(matches!(missing, Err(RunError::NotFound)), "{missing:?}");
        let failed = sh("echo oops >&2; exit 3", Duration::from_secs(5), 1024).expect("runs");
        assert_eq!(failed.status.code(), Some(3));
        assert_eq!(failed.stderr_text(), "oops");
    }

    #[test]
    fn the_whole_stderr_is_quoted_not_its_first_line() {
        // What Debian 12's nginx 1.22.1 printed for `nginx -T` with / remounted read-only
        // (ProtectSystem=strict): the first line says the syntax is ok, the error comes second.
        let captured = [
            "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok",
            "2026/11/29 18:26:44 [emerg] 5893#5893: open() \"/run/nginx.pid\" failed (30: Read-only file system)",
            "",
            "nginx: configuration file /etc/nginx/nginx.conf test failed",
        ];
        let script: Vec<String> = captured.iter().map(|l| format!("echo '{l}' >&2")).collect();
        let failed = sh(&format!("{}; exit 1", script.join("; ")), Duration::from_secs(5), 1024).expect("runs");
        assert_eq!(
            failed.stderr_text(),
            "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok / \
             2026/11/29 18:26:44 [emerg] 5893#5893: open() \"/run/nginx.pid\" failed (30: Read-only file system) / \
             nginx: configuration file /etc/nginx/nginx.conf test failed"
        );
        let chatty = sh(
            "for i in $(seq 30); do echo line $i >&2; done; exit 1",
            Duration::from_secs(5),
            1024,
        )
        .expect("runs");
        assert!(
            chatty.stderr_text().ends_with("line 20 / … 10 more line(s)"),
            "{}",
            chatty.stderr_text()
        );
        let silent = sh("exit 1", Duration::from_secs(5), 1024).expect("runs");
        assert_eq!(silent.stderr_text(), "no message");
    }

    #[test]
    fn the_environment_is_replaced() {
        std::env::set_var("LOOPWARDEN_RUNNER_TEST_LEAK", "leaked");
        let out = sh("env", Duration::from_secs(5), 64 * 1024).expect("runs");
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(!env.contains("LOOPWARDEN_RUNNER_TEST_LEAK"), "{env}");
        assert!(env.contains(&format!("PATH={SAFE_PATH}")), "{env}");
    }

    #[test]
    fn another_identity_gets_its_uid_and_gid_no_groups_and_no_new_privileges() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return; // Only root can run a program as another uid; nothing to check unprivileged.
        }
        let request = Request {
            run_as: Some(RunAs { uid: 65534, gid: 65534 }),
            ..Request::new(
                Program::OnPath("sh"),
                vec!["-c".into(), "id -u; id -G; grep NoNewPrivs /proc/self/status".into()],
                Duration::from_secs(5),
                1024,
            )
        };
        let out = run(&request).expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            ["65534", "65534", "NoNewPrivs:", "1"],
            "{text}"
        );
    }
}
