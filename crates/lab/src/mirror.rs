//! Loading the host's sysctls and packet filter into the victim namespace.
//!
//! The ruleset comes from a snapshot, which may come from anyone: before any of it reaches `nft`
//! or `iptables-restore` (as root), [`screen`] refuses what would make those tools read local
//! files or run programs, and what is too large, and [`host_names`] refuses host names where an
//! address belongs (the tools would resolve them). The loaders run unable to open a socket that
//! could reach a resolver ([`sockets`]). Then it is loaded as captured. A line the
//! kernel or the tool refuses (a missing module, a cgroup path or socket that does not exist in
//! the lab) is removed and the rest loaded again. Every refused or removed line is reported in
//! [`Mirror::left_out`], and results that such a line could have decided are marked uncertain;
//! so are drops where a rule's verdict depends on runtime state the lab does not share with the
//! host ([`runtime_state`], listed in [`Mirror::state_dependent`]).

mod host_names;
mod runtime_state;
mod screen;
mod sockets;

use crate::netns::{Namespace, NetnsError};
use crate::topology::feed;
use loopwarden_core::facts::{FirewallFacts, IptablesFamily, Sysctls};
use serde::Serialize;

/// How many times a load is retried after removing the lines it refused.
const MAX_RETRIES: usize = 40;

/// Something of the host that the victim does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// `sysctl`, `nftables`, `iptables (ipv4, nft)` …
    pub source: String,
    /// Which address families it could have affected: `ipv4`, `ipv6` or `both`.
    pub family: String,
    /// The line or key left out.
    pub item: String,
    /// Why, as the tool said.
    pub reason: String,
    /// Whether it could touch packets arriving from outside. False only for rules in chains
    /// hooked at `output`/`postrouting` (iptables `OUTPUT`/`POSTROUTING`), which locally sent
    /// packets traverse and the lab's attacks never do.
    pub inbound: bool,
}

/// What was mirrored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mirror {
    /// Sysctls written into the victim.
    pub sysctls_applied: usize,
    /// Whether an nftables ruleset was loaded (possibly in part).
    pub nft_loaded: bool,
    /// iptables dumps restored (possibly in part), as `family/backend`.
    pub iptables_loaded: Vec<String>,
    /// Everything that could not be loaded.
    pub left_out: Vec<LeftOut>,
    /// Rules loaded whose verdict depends on runtime state (the CPU, a random number, the
    /// traffic so far, the clock): the lab's packet may meet another verdict than the host's.
    /// `reason` says which state.
    pub state_dependent: Vec<LeftOut>,
}

/// Writes the host's relevant sysctls into the victim: global ones, then `all`, `default`,
/// `lo` and the mirrored interfaces, in that order (a later, more specific write wins).
pub fn apply_sysctls(
    victim: &Namespace,
    sysctls: &Sysctls,
    links: &[String],
    mirror: &mut Mirror,
) -> Result<(), NetnsError> {
    let mut scopes: Vec<&str> = vec!["all", "default", "lo"];
    scopes.extend(links.iter().map(String::as_str));
    let mut args: Vec<String> = Vec::new();
    for key in ["net.ipv4.ip_forward", "net.ipv6.bindv6only"] {
        if let Some(v) = sysctls.get(key) {
            args.push(format!("{}={v}", key.replace('.', "/")));
        }
    }
    for scope in &scopes {
        for family in ["ipv4", "ipv6"] {
            let prefix = format!("net.{family}.conf.{scope}.");
            for (key, value) in sysctls.0.range(prefix.clone()..) {
                let Some(name) = key.strip_prefix(&prefix) else { break };
                // A snapshot's key names a file under /proc/sys: only plain sysctl names.
                let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !plain || name == "accept_dad" {
                    continue;
                }
                args.push(format!("net/{family}/conf/{scope}/{name}={}", value.trim()));
            }
        }
    }
    if args.is_empty() {
        return Ok(());
    }
    let mut argv: Vec<&str> = vec!["sysctl", "-w"];
    argv.extend(args.iter().map(String::as_str));
    let out = victim.command(&argv).output().map_err(|source| NetnsError::Spawn {
        command: "sysctl -w".into(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refused: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in &refused {
        mirror.left_out.push(LeftOut {
            source: "sysctl".into(),
            family: if line.contains("ipv6") {
                "ipv6"
            } else if line.contains("ipv4") {
                "ipv4"
            } else {
                "both"
            }
            .into(),
            item: line
                .split_whitespace()
                .find(|w| w.contains("net/") || w.contains("net."))
                .unwrap_or(line)
                .trim_matches('"')
                .into(),
            reason: line.trim().to_string(),
            inbound: true,
        });
    }
    mirror.sysctls_applied = args.len().saturating_sub(refused.len());
    // Writing rp_filter does not flush cached routes (notes §1): start from an empty cache.
    victim.exec(&["ip", "route", "flush", "cache"])?;
    Ok(())
}

/// Loads the host's packet filter into the victim: iptables dumps with their own restore tool
/// (so `iptables-nft` rules keep their exact meaning), the native nftables tables with `nft -f`.
/// Each text is screened first (see [`screen`]).
pub fn load_firewall(victim: &Namespace, firewall: &FirewallFacts, mirror: &mut Mirror) -> Result<(), NetnsError> {
    let mut owned_by_iptables: Vec<(String, String)> = Vec::new();
    for dump in firewall.iptables.iter().filter(|d| !is_trivial(&d.text)) {
        let family = match dump.family {
            IptablesFamily::Ipv4 => "ip",
            IptablesFamily::Ipv6 => "ip6",
        };
        if dump.backend == "nft" {
            for table in dump.text.lines().filter_map(|l| l.strip_prefix('*')) {
                owned_by_iptables.push((family.to_string(), table.trim().to_string()));
            }
        }
        let tool = match (dump.family, dump.backend.as_str()) {
            (IptablesFamily::Ipv4, "legacy") => "iptables-legacy-restore",
            (IptablesFamily::Ipv6, "legacy") => "ip6tables-legacy-restore",
            (IptablesFamily::Ipv4, _) => "iptables-nft-restore",
            (IptablesFamily::Ipv6, _) => "ip6tables-nft-restore",
        };
        let fam = if family == "ip" { "ipv4" } else { "ipv6" };
        let label = format!("iptables ({fam}, {})", dump.backend);
        // Read before the screen: a refused line still tells what the host's rules depend on.
        note_state_dependent(&dump.text, &label, fam, iptables_state, mirror);
        let Some(text) = screened(&dump.text, &label, fam, iptables_refusals, None, mirror) else {
            continue;
        };
        if load_lines(victim, &[tool], &text, &label, fam, iptables_bad_lines, mirror)? {
            mirror.iptables_loaded.push(format!("{fam}/{}", dump.backend));
        }
    }
    if let Some(text) = &firewall.nft_text {
        let native = without_tables(text, &owned_by_iptables);
        if native.trim().is_empty() {
            return Ok(());
        }
        note_state_dependent(&native, "nftables", "both", runtime_state::nft_lines, mirror);
        let whole = screen::nft_text_refusal;
        let Some(native) = screened(&native, "nftables", "both", nft_refusals, Some(whole), mirror) else {
            return Ok(());
        };
        mirror.nft_loaded = load_lines(
            victim,
            &["nft", "-f", "-"],
            &native,
            "nftables",
            "both",
            nft_bad_lines,
            mirror,
        )?;
    }
    Ok(())
}

/// Records the rule lines of `text` whose verdict depends on runtime state.
fn note_state_dependent(
    text: &str,
    source: &str,
    family: &str,
    depends: fn(&[String]) -> Vec<(usize, &'static str)>,
    mirror: &mut Mirror,
) {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (index, why) in depends(&lines) {
        let line = &lines[index];
        if !is_rule_line(line) {
            continue;
        }
        mirror.state_dependent.push(LeftOut {
            source: source.to_string(),
            family: rule_family(line, family),
            item: line.trim().to_string(),
            reason: format!("its verdict depends on {why}"),
            inbound: !outbound_only(&lines, index),
        });
    }
}

/// The lines of an iptables dump whose verdict depends on runtime state.
fn iptables_state(lines: &[String]) -> Vec<(usize, &'static str)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| runtime_state::iptables_line(l).map(|why| (i, why)))
        .collect()
}

/// Why each line of an iptables dump must be left out, if it must.
fn iptables_refusals(lines: &[String]) -> Vec<Option<String>> {
    lines
        .iter()
        .map(|l| screen::iptables_line_refusal(l).or_else(|| host_names::iptables_host_name(l)))
        .collect()
}

/// Why each line of nftables text must be left out, if it must (a host name in an address
/// position is found across lines: a set's elements may span several).
fn nft_refusals(lines: &[String]) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = lines.iter().map(|l| screen::nft_line_refusal(l)).collect();
    for (line, reason) in host_names::nft_host_names(&lines.join("\n")) {
        if let Some(slot) = out.get_mut(line.wrapping_sub(1)) {
            slot.get_or_insert(reason);
        }
    }
    out
}

/// `text` without the lines `refusals` refuses (each reported as left out), or `None` when
/// none of it may be loaded: too large, refused as a whole by `whole_refusal`, or a refused line
/// that is not a rule (a table or chain line cannot be dropped alone).
fn screened(
    text: &str,
    source: &str,
    family: &str,
    refusals: fn(&[String]) -> Vec<Option<String>>,
    whole_refusal: Option<fn(&str) -> Option<String>>,
    mirror: &mut Mirror,
) -> Option<String> {
    let refuse_all = |reason: String, mirror: &mut Mirror| {
        mirror.left_out.push(LeftOut {
            source: source.to_string(),
            family: family.to_string(),
            item: "the whole ruleset".into(),
            reason,
            inbound: true,
        });
        None
    };
    if let Some(reason) = screen::oversize(text).or_else(|| whole_refusal.and_then(|f| f(text))) {
        return refuse_all(reason, mirror);
    }
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let reasons = refusals(&lines);
    let mut kept = String::with_capacity(text.len());
    for (index, (line, reason)) in lines.iter().zip(reasons).enumerate() {
        let Some(reason) = reason else {
            kept.push_str(line);
            kept.push('\n');
            continue;
        };
        if !removable(&lines, index) {
            return refuse_all(
                format!("{reason} (line {}, not a rule that can be left out alone)", index + 1),
                mirror,
            );
        }
        mirror.left_out.push(LeftOut {
            source: source.to_string(),
            family: rule_family(line, family),
            item: line.trim().to_string(),
            reason,
            inbound: !outbound_only(&lines, index),
        });
    }
    Some(kept)
}

/// A dump without rules whose chains all accept: loading it would change nothing (and, for
/// the legacy backend, only load modules).
fn is_trivial(dump: &str) -> bool {
    dump.lines().all(|l| {
        let l = l.trim();
        !(l.starts_with("-A ")
            || l.starts_with("-I ")
            || (l.starts_with(':') && !l.contains(" ACCEPT ") && !l.contains(" - ")))
    })
}

/// Feeds `text` to `argv`; on failure removes the lines the tool names and tries again. Returns
/// whether anything was loaded.
fn load_lines(
    victim: &Namespace,
    argv: &[&str],
    text: &str,
    source: &str,
    family: &str,
    bad_lines: fn(&str) -> Vec<usize>,
    mirror: &mut Mirror,
) -> Result<bool, NetnsError> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..MAX_RETRIES {
        let mut loader = victim.command(argv);
        sockets::netlink_and_raw_only(&mut loader);
        let shown = format!("{} (in {})", argv.join(" "), victim.name());
        let out = feed(loader, &shown, &(lines.join("\n") + "\n"))?;
        if out.status.success() {
            return Ok(true);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let mut bad: Vec<usize> = bad_lines(&stderr)
            .into_iter()
            .filter(|n| *n >= 1 && *n <= lines.len())
            .collect();
        bad.sort_unstable();
        bad.dedup();
        let droppable: Vec<usize> = bad.into_iter().filter(|n| removable(&lines, n - 1)).collect();
        if droppable.is_empty() {
            mirror.left_out.push(LeftOut {
                source: source.to_string(),
                family: family.to_string(),
                item: "the whole ruleset".into(),
                reason: stderr.trim().to_string(),
                inbound: true,
            });
            return Ok(false);
        }
        for n in droppable.iter().rev() {
            let inbound = !outbound_only(&lines, n - 1);
            let line = lines.remove(n - 1);
            mirror.left_out.push(LeftOut {
                source: source.to_string(),
                family: rule_family(&line, family),
                item: line.trim().to_string(),
                reason: reason_for(&stderr, *n),
                inbound,
            });
        }
    }
    mirror.left_out.push(LeftOut {
        source: source.to_string(),
        family: family.to_string(),
        item: "the rest of the ruleset".into(),
        reason: format!("still refused after {MAX_RETRIES} attempts"),
        inbound: true,
    });
    Ok(false)
}

/// Whether line `index` of a ruleset text is a rule that can be dropped alone: an iptables rule,
/// or an nft rule line directly in a chain's body (not a line of a set or map, whose element
/// list may span lines and whose other rules would read an emptied set).
fn removable(lines: &[String], index: usize) -> bool {
    let line = &lines[index];
    is_rule_line(line) && (line.trim_start().starts_with('-') || in_chain_body(lines, index))
}

/// Whether the block that encloses line `index` of nft text is a chain (`chain NAME {`).
fn in_chain_body(lines: &[String], index: usize) -> bool {
    let mut depth = 0usize;
    for line in lines[..index].iter().rev() {
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if opens > closes + depth {
            return line.trim_start().starts_with("chain ");
        }
        depth = depth + closes - opens;
    }
    false
}

/// A rule (not a table, chain, policy or block structure line) that can be dropped alone.
fn is_rule_line(line: &str) -> bool {
    let t = line.trim();
    if t.starts_with("-A ") || t.starts_with("-I ") {
        return true;
    }
    !(t.is_empty()
        || t.starts_with('*')
        || t.starts_with(':')
        || t == "COMMIT"
        || t.starts_with('#')
        || t.ends_with('{')
        || t == "}"
        || t.starts_with("type ")
        || t.starts_with("policy "))
}

/// Whether the rule at `index` sits in a chain only locally sent packets traverse: an iptables
/// `-A OUTPUT`/`-A POSTROUTING` rule, or an nft rule whose enclosing base chain hooks `output`
/// or `postrouting`. Rules in regular (jump target) chains count as inbound: any chain may jump
/// to them.
fn outbound_only(lines: &[String], index: usize) -> bool {
    let rule = lines[index].trim();
    if let Some(rest) = rule.strip_prefix("-A ").or_else(|| rule.strip_prefix("-I ")) {
        return matches!(rest.split_whitespace().next(), Some("OUTPUT" | "POSTROUTING"));
    }
    for line in lines[..index].iter().rev() {
        let t = line.trim();
        if t.starts_with("type ") {
            let words: Vec<&str> = t.split_whitespace().collect();
            return words
                .windows(2)
                .any(|w| w[0] == "hook" && matches!(w[1], "output" | "postrouting"));
        }
        if t.starts_with("chain ") {
            return false;
        }
    }
    false
}

/// For an inet-table rule, narrow the family when the rule says which one it matches.
fn rule_family(line: &str, default: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.contains(&"ip6") || words.iter().any(|w| w.contains("icmpv6")) {
        "ipv6".into()
    } else if words.contains(&"ip") {
        "ipv4".into()
    } else {
        default.into()
    }
}

/// Line numbers in nft errors: `/dev/stdin:4:26-37: Error: …`.
fn nft_bad_lines(stderr: &str) -> Vec<usize> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("/dev/stdin:"))
        .filter_map(|rest| rest.split(':').next()?.parse().ok())
        .collect()
}

/// Line numbers in iptables-restore errors: `line 4: RULE_APPEND failed …`,
/// `Error occurred at line: 3`.
fn iptables_bad_lines(stderr: &str) -> Vec<usize> {
    stderr
        .lines()
        .filter_map(|l| {
            if let Some(rest) = l.trim().strip_prefix("line ") {
                return rest.split(':').next()?.trim().parse().ok();
            }
            l.split_once("Error occurred at line:")
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .collect()
}

/// The tool's words about line `n`, or its whole message.
fn reason_for(stderr: &str, n: usize) -> String {
    let tags = [format!("/dev/stdin:{n}:"), format!("line {n}:"), format!("line: {n}")];
    stderr
        .lines()
        .find(|l| tags.iter().any(|t| l.contains(t.as_str())))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty() && !l.contains(" v1.")))
        .unwrap_or("refused")
        .trim()
        .to_string()
}

/// `nft list ruleset` text without the tables iptables-nft manages (restored from their dumps).
fn without_tables(text: &str, owned: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if depth == 0 {
            let words: Vec<&str> = t.split_whitespace().collect();
            skipping =
                words.len() >= 3 && words[0] == "table" && owned.iter().any(|(f, n)| f == words[1] && n == words[2]);
        }
        depth += t.matches('{').count();
        depth = depth.saturating_sub(t.matches('}').count());
        if !skipping && !t.starts_with("# Warning: table") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_refused_lines_in_real_tool_messages() {
        // Captured from iptables-nft-restore v1.8.9 and nft 1.0.6 in a namespace.
        let ipt = "iptables-nft-restore v1.8.9 (nf_tables): \nline 4: RULE_APPEND failed (Invalid argument): rule in chain INPUT\nline 5: RULE_APPEND failed (Invalid argument): rule in chain INPUT\n";
        assert_eq!(iptables_bad_lines(ipt), vec![4, 5]);
        let parse = "iptables-nft-restore v1.8.9 (nf_tables): Couldn't load match `bogusmatch':No such file or directory\n\nError occurred at line: 3\n";
        assert_eq!(iptables_bad_lines(parse), vec![3]);
        let nft = "/dev/stdin:4:26-37: Error: cgroupv2 path fails: No such file or directory\n socket cgroupv2 level 1 \"user.slice\" drop\n";
        assert_eq!(nft_bad_lines(nft), vec![4]);
        assert_eq!(
            reason_for(nft, 4),
            "/dev/stdin:4:26-37: Error: cgroupv2 path fails: No such file or directory"
        );
    }

    #[test]
    fn drops_iptables_nft_tables_from_the_native_text() {
        let text = "# Warning: table ip nat is managed by iptables-nft, do not touch!\ntable ip nat {\n\tchain PREROUTING {\n\t\tdnat to 1.2.3.4\n\t}\n}\ntable inet t {\n\tchain c {\n\t}\n}\n";
        let out = without_tables(text, &[("ip".into(), "nat".into())]);
        assert_eq!(out, "table inet t {\n\tchain c {\n\t}\n}\n");
    }

    #[test]
    fn empty_accepting_dumps_are_trivial_but_a_drop_policy_is_not() {
        let empty = "# Generated by iptables-save\n*filter\n:INPUT ACCEPT [0:0]\n:DOCKER - [0:0]\nCOMMIT\n";
        assert!(is_trivial(empty));
        assert!(!is_trivial("*filter\n:INPUT DROP [0:0]\nCOMMIT\n"));
        assert!(!is_trivial(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n"
        ));
    }

    #[test]
    fn rules_in_output_chains_do_not_touch_inbound_packets() {
        let nft: Vec<String> = "table inet t {\n chain out {\n  type filter hook output priority 0;\n  socket cgroupv2 level 1 \"x\" drop\n }\n chain in {\n  type filter hook input priority 0;\n  socket cgroupv2 level 1 \"x\" drop\n }\n chain helper {\n  meta skuid 0 drop\n }\n}"
            .lines()
            .map(str::to_string)
            .collect();
        assert!(outbound_only(&nft, 3));
        assert!(!outbound_only(&nft, 7));
        assert!(!outbound_only(&nft, 10));
        let ipt: Vec<String> = [
            "-A OUTPUT -m owner --uid-owner 0 -j ACCEPT",
            "-A INPUT -m cgroup --path x -j DROP",
        ]
        .iter()
        .map(|l| l.to_string())
        .collect();
        assert!(outbound_only(&ipt, 0));
        assert!(!outbound_only(&ipt, 1));
    }

    #[test]
    fn only_rules_are_removable() {
        assert!(is_rule_line("\t\tiifname != \"lo\" ip saddr 127.0.0.0/8 drop"));
        assert!(is_rule_line("-A INPUT -m owner --uid-owner 0 -j ACCEPT"));
        assert!(!is_rule_line("\tchain input {"));
        assert!(!is_rule_line(
            "\t\ttype filter hook input priority filter; policy drop;"
        ));
        assert!(!is_rule_line("COMMIT"));
        let nft: Vec<String> = "table ip t {\n\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 192.0.2.1,\n\t\t\t     192.0.2.2 }\n\t}\n\tchain c {\n\t\tip saddr { 192.0.2.1, 192.0.2.3 } drop\n\t\tip saddr @s drop\n\t}\n}"
            .lines()
            .map(str::to_string)
            .collect();
        assert!(!removable(&nft, 3) && !removable(&nft, 4), "a set's element lines");
        assert!(removable(&nft, 7) && removable(&nft, 8), "a chain's rules");
        assert_eq!(rule_family("ip6 saddr ::1 drop", "both"), "ipv6");
    }
}
