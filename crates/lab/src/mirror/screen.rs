//! What a snapshot's ruleset may not contain before the lab hands it, as root, to `nft -f -` or
//! `iptables-restore`.
//!
//! A snapshot may come from any host and anyone (`prove --facts FILE`), so its rulesets are
//! hostile input. The tools act on more than rules: `nft` reads the file named by `include`
//! (and quotes its lines in its error messages, which the lab reports), `define` and `$name`
//! feed that machinery, and `socket cgroupv2 … "PATH"` looks a path up (a `..` walks out of the
//! cgroup tree: a file-existence oracle); an `iptables-restore` line may carry `--modprobe
//! PROGRAM`, which the tool runs when a kernel module is missing, or the bpf match's
//! `--object-pinned PATH`, which it opens. None of these appear in what `nft list ruleset` and
//! `iptables-save` print for a real host, so refusing them costs a genuine snapshot nothing.
//!
//! The scan is deliberately coarser than the tools' own parsers: a word is refused wherever the
//! tool might read it (in nft comments too; in iptables quoted arguments too), and every
//! abbreviation `getopt_long` would accept for a refused option is refused as well.

/// The largest ruleset text the lab loads; beyond it, none of it.
pub const MAX_RULESET: usize = 64 * 1024 * 1024;

/// nft keywords that read files or define what `$name` expands to.
const NFT_KEYWORDS: &[&str] = &["include", "define", "redefine", "undefine"];

/// iptables long options that run a program or open a path.
const IPTABLES_OPTIONS: &[(&str, &str)] = &[
    ("modprobe", "runs the program it names when a kernel module is missing"),
    ("object-pinned", "opens the path it names (a pinned BPF object)"),
];

/// Why `text` (a ruleset of `what`) is too large to load, if it is.
pub fn oversize(text: &str) -> Option<String> {
    (text.len() > MAX_RULESET).then(|| {
        format!(
            "refused: {:.1} MiB is more than the {} MiB the lab loads",
            text.len() as f64 / (1024.0 * 1024.0),
            MAX_RULESET / (1024 * 1024)
        )
    })
}

/// Why the nftables text must not be loaded at all, if it must not: an `include`, `define`,
/// `redefine` or `undefine` word or a `$` outside quoted strings, a quoted string that spans
/// lines or never ends (where nft and this scan could disagree on what is quoted), a NUL byte.
pub fn nft_text_refusal(text: &str) -> Option<String> {
    let mut line = 1usize;
    let mut quote_from: Option<usize> = None;
    let mut word = String::new();
    let refuse = |what: String, line: usize| {
        Some(format!(
            "refused: {what} on line {line}; a snapshot may not make the lab read local files or \
             expand definitions, so none of its nftables ruleset was loaded"
        ))
    };
    for c in text.chars().chain(std::iter::once('\n')) {
        let in_word = quote_from.is_none() && (c.is_ascii_alphabetic() || c == '_');
        if in_word {
            word.push(c);
            continue;
        }
        if NFT_KEYWORDS.contains(&word.as_str()) {
            return refuse(format!("`{word}`"), line);
        }
        word.clear();
        match (c, quote_from) {
            ('\0', _) => return refuse("a NUL byte".into(), line),
            ('\n', Some(start)) => {
                return refuse(
                    format!("a quoted string opened on line {start} that does not close on it"),
                    line,
                )
            }
            ('"', Some(_)) => quote_from = None,
            ('"', None) => quote_from = Some(line),
            ('$', None) => return refuse("`$` (a variable)".into(), line),
            _ => {}
        }
        if c == '\n' {
            line += 1;
        }
    }
    None
}

/// Why one line of nftables text must be left out, if it must: a cgroupv2 path with a `..`
/// component (quoted or not). Host names in address positions are found by
/// [`super::host_names`].
pub fn nft_line_refusal(line: &str) -> Option<String> {
    let mut tokens = line
        .split(|c: char| c.is_whitespace() || matches!(c, '"' | '{' | '}' | ','))
        .filter(|t| !t.is_empty());
    (line.contains("cgroupv2") && tokens.any(|t| t.split('/').any(|c| c == "..")))
        .then(|| "refused: a cgroupv2 path with `..` looks up a path outside the cgroup tree".to_string())
}

/// Why one `iptables-restore` line must be left out, if it must: `--modprobe`/`-M` or
/// `--object-pinned`, spelt in full or abbreviated, quoted or not.
pub fn iptables_line_refusal(line: &str) -> Option<String> {
    let fragments = line.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
    for fragment in fragments.filter(|f| !f.is_empty()) {
        if let Some(long) = fragment.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            if let Some((option, why)) = IPTABLES_OPTIONS
                .iter()
                .find(|(option, _)| !name.is_empty() && option.starts_with(name))
            {
                return Some(format!(
                    "refused: `--{name}` (--{option}) {why}; a snapshot may not make the lab run or open local files"
                ));
            }
        } else if let Some(short) = fragment.strip_prefix('-') {
            let cluster = short.starts_with(|c: char| c.is_ascii_alphabetic());
            if cluster && short.contains('M') {
                return Some(format!(
                    "refused: `{fragment}` (-M, --modprobe) runs the program it names when a kernel module is \
                     missing; a snapshot may not make the lab run local programs"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_file_and_definition_machinery_is_refused_wherever_nft_would_see_it() {
        for (text, what) in [
            ("include \"/etc/shadow\"\n", "`include` on line 1"),
            ("table inet t {\n include \"/etc/shadow\"\n}\n", "`include` on line 2"),
            (
                "table inet t {\n chain c {\n  tcp dport $p drop\n }\n}\n",
                "`$` (a variable) on line 3",
            ),
            ("define p = 22\n", "`define` on line 1"),
            ("1include \"/etc/shadow\"\n", "`include` on line 1"),
            (
                "# a comment \"\ninclude \"/etc/shadow\"\n# \"\n",
                "does not close on it",
            ),
            ("table inet t { comment \"x\0\" }", "NUL"),
            ("table inet t { comment \"never closed", "does not close"),
        ] {
            let refusal = nft_text_refusal(text).unwrap_or_else(|| panic!("not refused: {text:?}"));
            assert!(refusal.contains(what), "{text:?}: {refusal}");
        }
    }

    /// Every ruleset captured from real software (Docker, kube-proxy, ufw, firewalld-style …)
    /// passes untouched.
    #[test]
    fn no_captured_ruleset_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/firewall");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures").flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("ruleset.nft")) else {
                continue;
            };
            seen += 1;
            assert_eq!(nft_text_refusal(&text), None, "{}", entry.path().display());
            for line in text.lines() {
                assert_eq!(nft_line_refusal(line), None, "{}: {line}", entry.path().display());
            }
        }
        assert!(seen >= 10, "only {seen} captured rulesets found");
    }

    #[test]
    fn a_real_ruleset_is_not_refused() {
        // As `nft list ruleset` prints them: quoted names, comments, sets, words that merely
        // contain a refused one.
        let real = "table inet filter {\n\tset undefined_hosts {\n\t\ttype ipv4_addr\n\t}\n\tchain input {\n\t\t\
                    type filter hook input priority filter; policy drop;\n\t\tiifname \"lo\" accept comment \"include $x here\"\n\t\t\
                    socket cgroupv2 level 1 \"user.slice\" drop\n\t\tip saddr @undefined_hosts drop\n\t}\n}\n";
        assert_eq!(nft_text_refusal(real), None);
        assert_eq!(nft_line_refusal("socket cgroupv2 level 1 \"user.slice\" drop"), None);
        assert!(nft_line_refusal("socket cgroupv2 level 2 \"user.slice/../../../../etc\" drop").is_some());
        assert!(nft_line_refusal("socket cgroupv2 level 1 ../../../root/.cargo drop").is_some());
        for fine in [
            "iifname \"eth0.100\" ip saddr 192.0.2.0/24 accept",
            "ip daddr 10.0.0.1-10.0.0.9 tcp dport 80 accept",
            "ip6 saddr ::ffff:127.0.0.0/104 drop",
            "ip daddr @cluster-ips reject",
            "ip daddr . meta l4proto . th dport vmap @service-ips",
            "meta mark & 0x00004000 == 0x00000000 return",
        ] {
            assert_eq!(nft_line_refusal(fine), None, "{fine}");
        }
    }

    #[test]
    fn iptables_options_that_run_or_open_things_are_refused_in_every_spelling() {
        for line in [
            "-A INPUT -m bpf --object-pinned /sys/fs/bpf/x -j DROP",
            "-A INPUT -m bpf --object-pin=/etc/shadow -j DROP",
            "-A INPUT --modprobe /tmp/evil -m foo -j DROP",
            "-A INPUT --modp=/tmp/evil -j DROP",
            "-A INPUT \"--modprobe\" /tmp/evil -j DROP",
            "-A INPUT -M /tmp/evil -j DROP",
            "-A INPUT -vM/tmp/evil -j DROP",
        ] {
            assert!(iptables_line_refusal(line).is_some(), "not refused: {line}");
        }
        for line in [
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
            "-A INPUT -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule\" -j ACCEPT",
            "-A INPUT -m bpf --bytecode \"4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0\" -j DROP",
            ":KUBE-MARK-MASQ - [0:0]",
            "-A INPUT -m hashlimit --hashlimit-mode srcip --hashlimit-name x -j ACCEPT",
        ] {
            assert_eq!(iptables_line_refusal(line), None, "{line}");
        }
    }

    #[test]
    fn oversized_rulesets_are_named_with_their_size() {
        assert_eq!(oversize("table inet t {}"), None);
        let big = "#".repeat(MAX_RULESET + 1);
        assert!(oversize(&big).is_some_and(|r| r.contains("64.0 MiB") && r.contains("64 MiB")));
    }
}
