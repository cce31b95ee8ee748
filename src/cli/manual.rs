//! The parts of each manual page that the command-line definition does not hold: EXIT STATUS,
//! ENVIRONMENT, FILES and SEE ALSO, per page. `loopwarden man` renders them after clap's
//! SYNOPSIS, DESCRIPTION and OPTIONS; a verb without an entry here has no page (the man verb
//! refuses to render it, and its tests catch a new verb left out).

/// A page's extra sections. Each entry is (term, what it means); SEE ALSO is a list of
/// `name(section)` references.
pub struct Sections {
    /// Exit status values and when each is returned.
    pub exit_status: &'static [(&'static str, &'static str)],
    /// Environment variables the verb reads.
    pub environment: &'static [(&'static str, &'static str)],
    /// Files the verb reads or writes.
    pub files: &'static [(&'static str, &'static str)],
    /// Related pages.
    pub see_also: &'static [&'static str],
}

const ERROR: (&str, &str) = (
    "2",
    "an error: bad arguments, an unreadable input or output, a failed collection",
);

const NO_COLOR: (&str, &str) = (
    "NO_COLOR",
    "when set and not empty, human output is not coloured (it never is outside a terminal)",
);

const MAX_SNAPSHOT: (&str, &str) = (
    "LOOPWARDEN_MAX_SNAPSHOT_MIB",
    "the largest snapshot --facts (and fleet) reads, in MiB: 64 by default, 256 for a snapshot of \
     every namespace; reading one takes up to about ten times its size in memory",
);

const PATH: (&str, &str) = (
    "PATH",
    "not used for the programs loopwarden runs (nft, iptables-save, sshd -T, nginx -T …): \
     they are looked up in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin and /bin \
     only, or are the running daemon's own executable, and get that PATH and nothing else of the \
     caller's environment",
);

/// What the collection reads (audit, facts, prove without --facts or --scenario): the kernel's
/// view,
const PROCFS: (&str, &str) = (
    "/proc/net/, /proc/PID/fd/, /proc/sys/net/",
    "sockets, their owners and the sysctls (with netlink)",
);
/// … name resolution and accounts,
const NAMES: (&str, &str) = (
    "/etc/hosts, /etc/nsswitch.conf, /etc/passwd, /etc/group",
    "how localhost resolves, and the users and groups (through NSS)",
);
/// … and the guards' publications.
const GUARDS: (&str, &str) = (
    "/run/loopwarden/guard/",
    "what running loopwarden guard fronts publish about themselves",
);

/// The page for `name` (`loopwarden` or `loopwarden-VERB`), or `None` for a name without one.
pub fn sections(name: &str) -> Option<Sections> {
    Some(match name {
        "loopwarden" => Sections {
            exit_status: &[
                ("0", "nothing at or above the verb's threshold"),
                ("1", "findings (audit, fleet), an attack that got through (prove), a drifted table (harden --check)"),
                ERROR,
            ],
            environment: &[NO_COLOR, MAX_SNAPSHOT, PATH],
            files: &[
                ("/usr/lib/systemd/system/loopwarden-metrics.service, loopwarden-metrics.timer", "the audit as node_exporter metrics every five minutes"),
                ("/usr/lib/systemd/system/loopwarden-guard@.service, loopwarden-guard@.socket", "a guard front per instance"),
                ("/usr/share/doc/loopwarden/examples/", "the Ansible role for fleets and a guard configuration"),
            ],
            see_also: &[
                "loopwarden-audit(1)",
                "loopwarden-facts(1)",
                "loopwarden-checks(1)",
                "loopwarden-prove(1)",
                "loopwarden-harden(1)",
                "loopwarden-guard(1)",
                "loopwarden-fleet(1)",
                "loopwarden-man(1)",
                "loopwarden-completions(1)",
            ],
        },
        "loopwarden-audit" => Sections {
            exit_status: &[
                ("0", "no open or unknown finding at or above --fail-on (always, with --fail-on never)"),
                ("1", "at least one open or unknown finding at or above --fail-on"),
                ERROR,
            ],
            environment: &[NO_COLOR, MAX_SNAPSHOT, PATH],
            files: &[
                PROCFS,
                NAMES,
                GUARDS,
                (
                    "/var/lib/prometheus/node-exporter/loopwarden.prom",
                    "where loopwarden-metrics.service writes --format prometheus for node_exporter's textfile collector",
                ),
            ],
            see_also: &["loopwarden(1)", "loopwarden-facts(1)", "loopwarden-checks(1)", "loopwarden-prove(1)", "loopwarden-harden(1)", "nft(8)"],
        },
        "loopwarden-facts" => Sections {
            exit_status: &[("0", "the snapshot was written (what could not be seen is in its limits)"), ERROR],
            environment: &[PATH],
            files: &[PROCFS, NAMES, GUARDS],
            see_also: &["loopwarden(1)", "loopwarden-audit(1)", "loopwarden-fleet(1)"],
        },
        "loopwarden-checks" => Sections {
            exit_status: &[("0", "the catalogue was printed"), ERROR],
            environment: &[],
            files: &[],
            see_also: &["loopwarden(1)", "loopwarden-audit(1)"],
        },
        "loopwarden-prove" => Sections {
            exit_status: &[
                ("0", "no attack got through, and every outcome is certain"),
                ("1", "at least one attack got through, or an outcome is uncertain (a rule left out of the mirror, routes not captured): unknown is not safe"),
                ("2", "an error, or the lab's control attacks did not behave as they must (the answers cannot be trusted)"),
            ],
            environment: &[NO_COLOR, MAX_SNAPSHOT, PATH],
            files: &[
                PROCFS,
                (
                    "/run/netns/lw-*",
                    "the lab's throwaway network namespaces, removed when it ends (also on error and Ctrl-C)",
                ),
            ],
            see_also: &["loopwarden(1)", "loopwarden-audit(1)", "ip-netns(8)"],
        },
        "loopwarden-harden" => Sections {
            exit_status: &[
                ("0", "the plan was printed, or the table and sysctls were applied, confirmed or removed; with --check, they are in place"),
                ("1", "with --check: missing or drifted, an interrupted apply, or one pending whose rollback watchdog is gone"),
                ERROR,
            ],
            environment: &[MAX_SNAPSHOT, PATH],
            files: &[
                ("/run/loopwarden/harden/", "what was applied in each network namespace and the values it replaced, for --confirm, --check and --remove"),
                ("/etc/loopwarden/harden.json", "with --persist: the nft batch that re-creates table inet loopwarden"),
                ("/etc/sysctl.d/99-zz-loopwarden.conf", "with --persist: the sysctls"),
                ("/etc/systemd/system/loopwarden-harden.service", "with --persist: loads the table at boot and after every nftables reload; enabled by links in sysinit.target.wants/ and nftables.service.wants/"),
                ("/etc/loopwarden/harden.netns", "with --persist under another --root: the network namespace that installed the copy, the only one that updates or removes it"),
            ],
            see_also: &["loopwarden(1)", "loopwarden-audit(1)", "nft(8)", "sysctl.d(5)"],
        },
        "loopwarden-guard" => Sections {
            exit_status: &[("0", "stopped by SIGTERM after draining its connections, or --status printed"), ERROR],
            environment: &[
                ("LISTEN_PID, LISTEN_FDS", "sockets passed by systemd socket activation (loopwarden-guard@.socket)"),
                ("RUNTIME_DIRECTORY", "where the front publishes its status, instead of /run/loopwarden/guard/NAME/"),
            ],
            files: &[
                (
                    "/etc/loopwarden/guard/NAME.toml",
                    "the --config file loopwarden-guard@NAME.service reads (an example: /usr/share/doc/loopwarden/examples/guard.toml)",
                ),
                ("/run/loopwarden/guard/", "each running front's status and counters, read by --status and by audit"),
                ("/usr/lib/systemd/system/loopwarden-guard@.service, loopwarden-guard@.socket", "a front per instance"),
            ],
            see_also: &["loopwarden(1)", "loopwarden-harden(1)", "systemd.socket(5)"],
        },
        "loopwarden-fleet" => Sections {
            exit_status: &[
                ("0", "no host has an open or unknown finding at or above --fail-on, and every snapshot was usable and fresh"),
                ("1", "a host has such a finding, or a snapshot is unusable or stale"),
                ERROR,
            ],
            environment: &[NO_COLOR, MAX_SNAPSHOT],
            files: &[(
                "/usr/share/doc/loopwarden/examples/ansible/",
                "the playbook that collects each host's snapshot with loopwarden facts",
            )],
            see_also: &["loopwarden(1)", "loopwarden-facts(1)", "loopwarden-audit(1)", "ansible-playbook(1)"],
        },
        "loopwarden-man" => Sections {
            exit_status: &[("0", "the page was printed or every page written"), ERROR],
            environment: &[],
            files: &[("/usr/share/man/man1/loopwarden*.1.gz", "the pages the Debian package installs")],
            see_also: &["loopwarden(1)", "man(1)"],
        },
        "loopwarden-completions" => Sections {
            exit_status: &[("0", "the script was printed"), ERROR],
            environment: &[],
            files: &[
                ("/usr/share/bash-completion/completions/loopwarden", "bash's, as the Debian package installs it"),
                ("/usr/share/zsh/vendor-completions/_loopwarden", "zsh's"),
                ("/usr/share/fish/vendor_completions.d/loopwarden.fish", "fish's"),
            ],
            see_also: &["loopwarden(1)", "bash(1)"],
        },
        _ => return None,
    })
}
