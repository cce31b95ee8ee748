//! Rules the lab can load but not reproduce: their verdict depends on state that differs between
//! the host and the lab at the moment a packet meets them — the CPU that handles it (`meta cpu`,
//! `-m cpu`), a random or rotating number (`numgen`, `-m statistic`), the traffic seen so far
//! (`limit`, `quota`, `ct count`, `-m limit`, `-m hashlimit`, `-m quota`, `-m connlimit`,
//! `-m recent`, sets updated from the packet path), or the clock (`meta time|day|hour`,
//! `-m time`). A packet the lab saw dropped by such a rule may pass on the host, so a drop where
//! one is loaded is not proof.

/// Why the verdict of one nftables rule line depends on runtime state, if it does.
pub fn nft_line(line: &str) -> Option<&'static str> {
    let words = words(line);
    let has = |w: &str| words.iter().any(|x| x == w);
    let pair = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    if has("cpu") {
        Some("the CPU that handles the packet (meta cpu)")
    } else if has("numgen") {
        Some("a random or rotating number (numgen)")
    } else if has("limit") || has("quota") || pair("ct", "count") {
        Some("the traffic seen so far (limit, quota, ct count)")
    } else if words.iter().any(|w| w.starts_with('@')) && (has("update") || has("add") || has("meter") || has("delete"))
    {
        Some("a set the packet path itself fills or empties (update, add, delete, meter)")
    } else if has("time") || has("day") || has("hour") {
        Some("the time of day (meta time, day, hour)")
    } else {
        None
    }
}

/// Why the verdict of one `iptables-restore` rule line depends on runtime state, if it does.
pub fn iptables_line(line: &str) -> Option<&'static str> {
    let words = words(line);
    let matches = |module: &str| {
        words
            .windows(2)
            .any(|p| (p[0] == "-m" || p[0] == "--match") && p[1] == module)
    };
    if matches("cpu") {
        Some("the CPU that handles the packet (-m cpu)")
    } else if matches("statistic") || matches("nth") {
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

    #[test]
    fn state_dependent_nft_rules_are_named() {
        for (line, why) in [
            ("iifname \"v0\" ip daddr 127.0.0.0/8 meta cpu 0 drop", "CPU"),
            ("ip daddr 127.0.0.0/8 cpu { 0, 1 } drop", "CPU"),
            ("numgen random mod 2 0 drop", "random"),
            ("tcp dport 22 limit rate over 10/second drop", "traffic"),
            ("quota over 10 mbytes drop", "traffic"),
            ("ct count over 3 drop", "traffic"),
            ("update @seen { ip saddr } drop", "set"),
            ("meta hour \"08:00\"-\"17:00\" drop", "time"),
        ] {
            assert!(nft_line(line).is_some_and(|w| w.contains(why)), "{line}");
        }
        for line in [
            "iifname != \"lo\" ip daddr 127.0.0.0/8 counter drop",
            "ip saddr @trusted accept",
            "tcp dport 22 comment \"cpu limit quota numgen\" accept",
            "ct state established,related accept",
        ] {
            assert_eq!(nft_line(line), None, "{line}");
        }
    }

    #[test]
    fn state_dependent_iptables_rules_are_named() {
        assert!(iptables_line("-A INPUT -m cpu --cpu 0 -j DROP").is_some());
        assert!(iptables_line("-A INPUT -m statistic --mode random --probability 0.5 -j DROP").is_some());
        assert!(iptables_line("-A INPUT -p tcp -m hashlimit --hashlimit-above 5/sec -j DROP").is_some());
        assert!(iptables_line("-A INPUT -m time --timestart 08:00 -j DROP").is_some());
        assert_eq!(
            iptables_line("-A INPUT -s 127.0.0.0/8 ! -i lo -m comment --comment \"limit\" -j DROP"),
            None
        );
    }
}
