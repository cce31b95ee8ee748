//! The ruleset loaders run unable to open any socket but netlink and raw IP.
//!
//! `nft` and `iptables-restore` resolve a host name wherever they expect an address (through
//! nscd's Unix socket, then DNS; nft 1.0.6 does so for its JSON input too). The screen in
//! [`super::host_names`] refuses the names it finds, with a clear message; this filter makes
//! sure that a name it missed still cannot be resolved: the loader (and `ip netns exec`, which
//! starts it) may open netlink sockets (nft, iptables-nft) and raw IPv4/IPv6 sockets (the legacy
//! iptables tools talk to the kernel through one), and every other `socket(2)` — a Unix socket
//! to nscd or systemd-resolved, a UDP or TCP socket to a DNS server — fails with `EACCES`. The
//! filter is a seccomp program set with `no_new_privs` just before the exec, inherited by
//! everything the loader starts.

use std::os::unix::process::CommandExt;
use std::process::Command;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Offsets in `struct seccomp_data` (little-endian: the low half of an argument comes first).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0: u32 = 16;
const ARG1: u32 = 24;
/// System call numbers at or above this are the x32 ABI on x86_64: refused outright.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// The socket type without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
const SOCK_TYPE_MASK: u32 = 0xf;

fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The seccomp program: another architecture or ABI kills the process; `socket(2)` is allowed
/// for `AF_NETLINK`, and for `AF_INET`/`AF_INET6` with `SOCK_RAW` only; anything else is allowed.
fn program() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let load = BPF_LD | BPF_W | BPF_ABS;
    let eq = BPF_JMP | BPF_JEQ | BPF_K;
    let ret = BPF_RET | BPF_K;
    let allow = libc::SECCOMP_RET_ALLOW;
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    let deny = libc::SECCOMP_RET_ERRNO | (libc::EACCES as u32);
    vec![
        /* 0 */ statement(load, ARCH),
        /* 1 */ jump(eq, AUDIT_ARCH, 1, 0),
        /* 2 */ statement(ret, kill),
        /* 3 */ statement(load, NR),
        /* 4 */ jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
        /* 5 */ statement(ret, kill),
        /* 6 */ jump(eq, libc::SYS_socket as u32, 1, 0),
        /* 7 */ statement(ret, allow),
        /* 8 */ statement(load, ARG0),
        /* 9 */ jump(eq, libc::AF_NETLINK as u32, 6, 0),
        /* 10 */ jump(eq, libc::AF_INET as u32, 1, 0),
        /* 11 */ jump(eq, libc::AF_INET6 as u32, 0, 3),
        /* 12 */ statement(load, ARG1),
        /* 13 */ statement(BPF_ALU | BPF_AND | BPF_K, SOCK_TYPE_MASK),
        /* 14 */ jump(eq, libc::SOCK_RAW as u32, 1, 0),
        /* 15 */ statement(ret, deny),
        /* 16 */ statement(ret, allow),
    ]
}

/// Makes `command` run with sockets limited to netlink and raw IP (see the module
/// documentation).
pub fn netlink_and_raw_only(command: &mut Command) {
    let filter = program();
    // SAFETY: runs in the forked child before exec: two prctl calls on a program built before
    // the fork (no allocation); a failure is returned as the spawn error, so a loader never runs
    // unfiltered.
    unsafe {
        command.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a Python snippet under the filter and returns what it printed.
    fn under_filter(code: &str) -> String {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-c", code]);
        netlink_and_raw_only(&mut cmd);
        let out = cmd.output().expect("python3 under the filter");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    #[test]
    fn only_netlink_and_raw_ip_sockets_can_be_opened() {
        if !std::path::Path::new("/usr/bin/python3").exists() {
            assert!(
                std::env::var_os("LOOPWARDEN_E2E").is_none_or(|v| v != "1"),
                "python3 is missing (LOOPWARDEN_E2E=1)"
            );
            eprintln!("SKIPPED only_netlink_and_raw_ip_sockets_can_be_opened: python3 is missing");
            return;
        }
        let code = "import socket\n\
            def t(name, *a):\n\
            \ttry:\n\t\tsocket.socket(*a).close(); print(name, 'ok')\n\
            \texcept OSError as e:\n\t\tprint(name, 'refused', e.errno)\n\
            t('unix', socket.AF_UNIX, socket.SOCK_STREAM)\n\
            t('udp', socket.AF_INET, socket.SOCK_DGRAM)\n\
            t('tcp6', socket.AF_INET6, socket.SOCK_STREAM)\n\
            t('netlink', socket.AF_NETLINK, socket.SOCK_RAW, 12)\n\
            t('getaddrinfo', socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)\n";
        let printed = under_filter(code);
        let eacces = format!("refused {}", libc::EACCES);
        for line in ["unix", "udp", "tcp6", "getaddrinfo"] {
            assert!(printed.contains(&format!("{line} {eacces}")), "{line}: {printed}");
        }
        assert!(printed.contains("netlink ok"), "{printed}");
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            let raw = under_filter(
                "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()\nprint('raw ok')",
            );
            assert!(raw.contains("raw ok"), "{raw}");
        }
        // A name cannot be resolved: no socket reaches nscd or a DNS server.
        let resolve = under_filter(
            "import socket\ntry:\n\tsocket.getaddrinfo('lw-canary.example', None)\n\tprint('resolved')\nexcept OSError as e:\n\tprint('failed', e)",
        );
        assert!(resolve.contains("failed"), "{resolve}");
    }
}
