//! Rules the lab can load but not reproduce: their verdict depends on state that differs between
//! the host and the lab at the moment a packet meets them — the CPU that handles it (`meta cpu`,
//! `-m cpu`), a random or rotating number (`numgen`, `-m statistic`), the traffic seen so far
//! (`limit`, `quota`, `ct count`, `-m limit`, `-m hashlimit`, `-m quota`, `-m connlimit`,
//! `-m recent`, sets updated from the packet path), or the clock (`meta time|day|hour`,
//! `-m time`). A packet the lab saw dropped by such a rule may pass on the host, so a drop where
//! one is loaded is not proof. Only rules that decide something count (a limited LOG rule does
//! not), and a random pick among chains is load balancing, not a verdict (kube-proxy's endpoint
//! choice: every endpoint is mirrored and attacked alike).

/// The lines of an nftables text whose verdict depends on runtime state, with why: the per-rule
/// keywords, and rules that match against a set some rule fills or empties from the packet path
/// (`add @s`, `update @s`, `delete @s`, a meter) — in any hook: a set filled by output traffic
/// and read in prerouting opens a path the lab never opens. A set only written (a counter) does
/// not decide a verdict.
pub fn nft_lines(lines: &[String]) -> Vec<(usize, &'static str)> {
    let words: Vec<Vec<String>> = lines.iter().map(|l| words(l)).collect();
    let filled: Vec<&str> = words.iter().flat_map(|w| filled_sets(w)).collect();
    let mut out = Vec::new();
    for (index, w) in words.iter().enumerate() {
        // Only a rule that decides something (a verdict or an address rewrite) can change an
        // outcome: one that logs or counts under a limit does not.
        if !w.iter().any(|x| NFT_DECIDING.contains(&x.as_str())) {
            continue;
        }
        if let Some(why) = nft_keywords(w) {
            out.push((index, why));
        } else if read_sets(w).any(|set| filled.contains(&set)) {
            out.push((
                index,
                "a set the packet path itself fills or empties (add, update, delete, meter)",
            ));
        }
    }
    out
}

/// nftables statements that decide a packet's fate or its destination.
const NFT_DECIDING: &[&str] = &[
    "accept",
    "drop",
    "reject",
    "jump",
    "goto",
    "return",
    "queue",
    "dnat",
    "snat",
    "redirect",
    "masquerade",
    "tproxy",
];

/// iptables targets that only log, mark or count: a rule ending in one decides nothing.
const IPTABLES_NON_DECIDING: &[&str] = &[
    "LOG",
    "NFLOG",
    "ULOG",
    "TRACE",
    "AUDIT",
    "MARK",
    "CONNMARK",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "TCPMSS",
    "SECMARK",
    "CONNSECMARK",
    "NOTRACK",
    "CT",
    "IDLETIMER",
    "LED",
    "RATEEST",
];

/// iptables targets that decide a packet's fate or destination themselves (not a user chain).
const IPTABLES_BUILTIN: &[&str] = &[
    "ACCEPT",
    "DROP",
    "REJECT",
    "DNAT",
    "SNAT",
    "REDIRECT",
    "MASQUERADE",
    "RETURN",
];

/// Why one nftables rule's own expressions depend on runtime state, if they do.
fn nft_keywords(words: &[String]) -> Option<&'static str> {
    let has = |w: &str| words.iter().any(|x| x == w);
    let pair = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    if has("cpu") {
        Some("the CPU that handles the packet (meta cpu)")
    } else if has("numgen") && !has("jump") && !has("goto") {
        // A number that picks one of several chains is load balancing (kube-proxy's
        // `numgen random mod N vmap { … : goto endpoint-… }`): each choice is mirrored and
        // attacked alike. One that decides a packet's fate itself is runtime state.
        Some("a random or rotating number (numgen)")
    } else if has("limit") || has("quota") || pair("ct", "count") {
        Some("the traffic seen so far (limit, quota, ct count)")
    } else if has("time") || has("day") || has("hour") {
        Some("the time of day (meta time, day, hour)")
    } else {
        None
    }
}

/// The sets a rule fills or empties: `add @s`, `update @s`, `delete @s`, `meter s`.
fn filled_sets(words: &[String]) -> Vec<&str> {
    words
        .windows(2)
        .filter_map(|p| match (p[0].as_str(), p[1].strip_prefix('@')) {
            ("add" | "update" | "delete", Some(set)) => Some(set),
            ("meter", None) => Some(p[1].as_str()),
            _ => None,
        })
        .collect()
}

/// The sets a rule matches against: `@s` not written by it.
fn read_sets(words: &[String]) -> impl Iterator<Item = &str> {
    words.iter().enumerate().filter_map(|(i, w)| {
        let set = w.strip_prefix('@')?;
        let written = i > 0 && matches!(words[i - 1].as_str(), "add" | "update" | "delete");
        (!written).then_some(set)
    })
}

/// Why the verdict of one `iptables-restore` rule line depends on runtime state, if it does.
pub fn iptables_line(line: &str) -> Option<&'static str> {
    let words = words(line);
    let target = words
        .windows(2)
        .find(|p| matches!(p[0].as_str(), "-j" | "--jump" | "-g" | "--goto"))
        .map(|p| p[1].as_str());
    // Only a rule with a target that decides something can change an outcome (ufw's
    // `-m limit ... -j LOG` rules only log).
    if target.is_none_or(|t| IPTABLES_NON_DECIDING.contains(&t)) {
        return None;
    }
    let matches = |module: &str| {
        words
            .windows(2)
            .any(|p| (p[0] == "-m" || p[0] == "--match") && p[1] == module)
    };
    if matches("cpu") {
        Some("the CPU that handles the packet (-m cpu)")
    } else if (matches("statistic") || matches("nth")) && target.is_some_and(|t| IPTABLES_BUILTIN.contains(&t)) {
        // As for numgen: kube-proxy's `-m statistic … -j KUBE-SEP-…` picks an endpoint's chain.
        Some("a random or rotating number (-m statistic)")
    } else if ["limit", "hashlimit", "quota", "connlimit", "recent"]
        .iter()
        .any(|m| matches(m))
    {
        Some("the traffic seen so far (-m limit, hashlimit, quota, connlimit, recent)")
    } else if matches("time") {
        Some("the time of day (-m time)")
    } else {
        None
    }
}

/// The words of a rule line outside quoted strings (a comment or a name may say anything).
fn words(line: &str) -> Vec<String> {
    let mut unquoted = String::with_capacity(line.len());
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if !quoted => unquoted.push(c),
            _ => {}
        }
    }
    unquoted
        .split(|c: char| c.is_whitespace() || matches!(c, '{' | '}' | ',' | ';'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(usize, &'static str)> {
        nft_lines(&text.lines().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn state_dependent_nft_rules_are_named() {
        for (line, why) in [
            ("iifname \"v0\" ip daddr 127.0.0.0/8 meta cpu 0 drop", "CPU"),
            ("ip daddr 127.0.0.0/8 cpu { 0, 1 } drop", "CPU"),
            ("numgen random mod 2 0 drop", "random"),
            ("tcp dport 22 limit rate over 10/second drop", "traffic"),
            ("quota over 10 mbytes drop", "traffic"),
            ("ct count over 3 drop", "traffic"),
            ("meta hour \"08:00\"-\"17:00\" drop", "time"),
        ] {
            let got = found(line);
            assert!(got.len() == 1 && got[0].1.contains(why), "{line}: {got:?}");
        }
        for line in [
            "iifname != \"lo\" ip daddr 127.0.0.0/8 counter drop",
            "ip saddr @trusted accept",
            "tcp dport 22 comment \"cpu limit quota numgen\" accept",
            "limit rate 3/minute log prefix \"[blocked] \"",
            "numgen random mod 2 vmap { 0 : goto endpoint-a, 1 : goto endpoint-b }",
            "ct state established,related accept",
        ] {
            assert_eq!(found(line), vec![], "{line}");
        }
    }

    #[test]
    fn a_set_filled_in_one_hook_and_read_in_another_is_runtime_state_and_a_counter_is_not() {
        let text = "table inet f {\n\
            chain out {\n\
            tcp dport 9 add @allow { ip daddr timeout 1m }\n\
            }\n\
            chain pre {\n\
            iifname != \"lo\" ip daddr 127.0.0.0/8 ip saddr @allow accept\n\
            iifname != \"lo\" ip daddr 127.0.0.0/8 add @spoofed { iifname } drop\n\
            }\n}\n";
        let got = found(text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 5, "the rule that reads @allow: {got:?}");
    }

    #[test]
    fn state_dependent_iptables_rules_are_named() {
        assert!(iptables_line("-A INPUT -m cpu --cpu 0 -j DROP").is_some());
        assert!(iptables_line("-A INPUT -m statistic --mode random --probability 0.5 -j DROP").is_some());
        // kube-proxy's load balancing picks an endpoint chain: not runtime state of a verdict.
        assert_eq!(
            iptables_line("-A KUBE-SVC-X -m statistic --mode random --probability 0.5 -j KUBE-SEP-A"),
            None
        );
        assert!(iptables_line("-A INPUT -p tcp -m hashlimit --hashlimit-above 5/sec -j DROP").is_some());
        assert!(iptables_line("-A INPUT -m time --timestart 08:00 -j DROP").is_some());
        assert_eq!(
            iptables_line("-A INPUT -s 127.0.0.0/8 ! -i lo -m comment --comment \"limit\" -j DROP"),
            None
        );
        // ufw's logging rules: limited, but they only log.
        assert_eq!(
            iptables_line("-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix \"[UFW BLOCK] \""),
            None
        );
        assert!(iptables_line(
            "-A ufw-user-input -p tcp --dport 22 -m recent --update --seconds 30 --hitcount 6 -j ufw-user-limit"
        )
        .is_some());
    }
}
