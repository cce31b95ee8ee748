//! Host names in a snapshot's rulesets, which `nft` and `iptables-restore` would resolve as root.
//!
//! Wherever these tools expect an address they also take a name and resolve it (`getaddrinfo`:
//! nscd first, then DNS), quoted or not, with or without a dot: `ip saddr lwrevacanary drop`,
//! `ip saddr "canary.example" drop`, `ip daddr { 192.0.2.1, canary.example }`, the elements of a
//! set whose type is an address, `dnat to canary.example`, `-s canary.example`. A snapshot may
//! come from anyone, so such a name is a way to make the lab's host send a chosen query out (or
//! to nscd). What `nft list ruleset` and `iptables-save` print for a real host holds numeric
//! addresses only, so every value in an address position must be one: an address, a prefix, a
//! range or (for NAT targets) an address with a port. Anything else is refused, naming the line.
//!
//! The loaders also run without any socket but netlink and raw IP ([`super::sockets`]), so a
//! name this screen missed still cannot be resolved; the screen is what gives a clear message.

use std::net::IpAddr;

/// nft selectors whose value is an address, as token sequences (`ct` and `ipsec` forms are
/// matched by [`address_selector_at`]).
const ADDRESS_SELECTORS: &[&[&str]] = &[
    &["ip", "saddr"],
    &["ip", "daddr"],
    &["ip6", "saddr"],
    &["ip6", "daddr"],
    &["arp", "saddr", "ip"],
    &["arp", "daddr", "ip"],
    &["rt", "nexthop"],
    &["rt", "ip", "nexthop"],
    &["rt", "ip6", "nexthop"],
];

/// nft statements whose `to` takes an address (`dnat to A`, `dup to A device D`, `fwd ip to A`).
const ADDRESS_STATEMENTS: &[&str] = &["dnat", "snat", "tproxy", "dup", "fwd"];

/// nft's comparison operators.
const OPERATORS: &[&str] = &[
    "==", "!=", "eq", "ne", "<", ">", "<=", ">=", "lt", "gt", "le", "ge", "!", "in",
];

/// nft's bitwise operators: in `ip saddr & MASK == VALUE` both operands are addresses.
const BITWISE: &[&str] = &["&", "|", "^", "and", "or", "xor"];

/// One token of nft text: a word, a quoted string (without its quotes) or a bracket, comma or
/// semicolon, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
    line: usize,
}

impl Token {
    fn is(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }
}

/// Splits nft text into tokens; `#` comments are skipped.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>, line: usize| {
        if !word.is_empty() {
            out.push(Token {
                text: std::mem::take(word),
                quoted: false,
                line,
            });
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                flush(&mut word, &mut out, line);
                let mut quoted = String::new();
                for q in chars.by_ref() {
                    if q == '"' || q == '\n' {
                        break;
                    }
                    quoted.push(q);
                }
                out.push(Token {
                    text: quoted,
                    quoted: true,
                    line,
                });
            }
            '#' => {
                flush(&mut word, &mut out, line);
                for q in chars.by_ref() {
                    if q == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '{' | '}' | ',' | ';' => {
                flush(&mut word, &mut out, line);
                out.push(Token {
                    text: c.to_string(),
                    quoted: false,
                    line,
                });
            }
            c if c.is_whitespace() => {
                flush(&mut word, &mut out, line);
                if c == '\n' {
                    line += 1;
                }
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out, line);
    out
}

/// The length of the address selector starting at `tokens[i]`, if one does: the fixed forms,
/// `ct [original|reply] [ip|ip6] saddr|daddr`, and `ipsec in|out [spnum N] ip|ip6 saddr|daddr`.
fn address_selector_at(tokens: &[Token], i: usize) -> Option<usize> {
    let at = |n: usize| tokens.get(i + n).filter(|t| !t.quoted).map(|t| t.text.as_str());
    for form in ADDRESS_SELECTORS {
        if form.iter().enumerate().all(|(n, w)| at(n) == Some(w)) {
            return Some(form.len());
        }
    }
    let mut n = match at(0)? {
        "ct" => 1,
        "ipsec" if matches!(at(1), Some("in" | "out")) => 2,
        _ => return None,
    };
    if matches!(at(n), Some("original" | "reply")) {
        n += 1;
    }
    if at(n) == Some("spnum") {
        n += 2;
    }
    if matches!(at(n), Some("ip" | "ip6")) {
        n += 1;
    }
    matches!(at(n), Some("saddr" | "daddr")).then_some(n + 1)
}

/// Whether a value in an address position is a numeric address, prefix or range — with a port
/// (`A:P`, `[A]:P`, ports as ranges) when `port` allows one.
fn numeric_address(value: &str, port: bool) -> bool {
    let addr = |s: &str| {
        s.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
    };
    let prefix = |s: &str| match s.split_once('/') {
        Some((a, len)) => addr(a) && len.parse::<u8>().is_ok(),
        None => addr(s),
    };
    let range = |s: &str| prefix(s) || s.split_once('-').is_some_and(|(a, b)| prefix(a) && prefix(b));
    if range(value) {
        return true;
    }
    if !port {
        return false;
    }
    // `A:P` (IPv4), `[A]:P` (IPv6), `A-B:P-Q`.
    let without_port = match value.rsplit_once("]:") {
        Some((a, p)) => Some((format!("{a}]"), p)),
        None => value
            .rsplit_once(':')
            .filter(|(a, _)| !a.contains(':'))
            .map(|(a, p)| (a.to_string(), p)),
    };
    without_port.is_some_and(|(a, p)| range(&a) && p.split('-').all(|n| n.parse::<u16>().is_ok()))
}

/// Words that may stand in an address position without being a name: a reference to a named
/// set, and the start of a nested selector (`dnat to ip daddr map { … }`).
fn not_a_value(token: &Token) -> bool {
    !token.quoted && (token.text.starts_with('@') || token.text.starts_with('$'))
}

/// What makes a line's address position refused.
fn refusal(token: &Token) -> String {
    let shown: String = token.text.chars().take(80).collect();
    let shown = if token.quoted { format!("\"{shown}\"") } else { shown };
    format!(
        "refused: `{shown}` stands where an address belongs, and nft would resolve it as a host name \
         (as root, through nscd or DNS); a snapshot lists numeric addresses only"
    )
}

/// The tokens of the `{ … }` starting at `open` (exclusive) and the index after its `}`.
fn braced(tokens: &[Token], open: usize) -> (&[Token], usize) {
    let mut depth = 0usize;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return (&tokens[open + 1..j], j + 1);
            }
        }
    }
    (&tokens[(open + 1).min(tokens.len())..], tokens.len())
}

/// Which components of a set's elements are addresses: key components counted from the end
/// (`key_from_end`: how a selector in a concatenation knows its place), data components (after
/// a map's `:`) counted from the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Positions {
    key_from_end: Vec<usize>,
    data: Vec<usize>,
}

/// Checks the elements of a set literal (the tokens inside its braces) against `positions`;
/// returns the first value in an address position that is not numeric.
fn check_elements<'a>(inner: &'a [Token], positions: &Positions, port: bool) -> Option<&'a Token> {
    let mut depth = 0usize;
    let mut start = 0usize;
    for (j, t) in inner.iter().enumerate() {
        if t.is("{") {
            depth += 1;
        } else if t.is("}") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is(",") {
            if let Some(bad) = check_element(&inner[start..j], positions, port) {
                return Some(bad);
            }
            start = j + 1;
        }
    }
    check_element(&inner[start..], positions, port)
}

/// The first token of each `.`-separated component.
fn components(part: &[Token]) -> Vec<&Token> {
    let mut out = Vec::new();
    let mut take = true;
    for t in part {
        if t.is(".") {
            take = true;
        } else if take {
            out.push(t);
            take = false;
        }
    }
    out
}

/// One element: `K1 . K2 [: D1 . D2] [timeout T] [expires E] [counter …] [comment "…"]`.
fn check_element<'a>(element: &'a [Token], positions: &Positions, port: bool) -> Option<&'a Token> {
    let (key, data) = match element.iter().position(|t| t.is(":")) {
        Some(at) => (&element[..at], &element[at + 1..]),
        None => (element, &[][..]),
    };
    let keys = components(key);
    let data = components(data);
    let key_values = positions
        .key_from_end
        .iter()
        .filter_map(|back| keys.len().checked_sub(back + 1).and_then(|i| keys.get(i)));
    let data_values = positions.data.iter().filter_map(|i| data.get(*i));
    key_values
        .map(|v| (*v, port))
        .chain(data_values.map(|v| (*v, true)))
        .find(|(v, port)| !not_a_value(v) && !numeric_address(&v.text, *port))
        .map(|(v, _)| v)
}

/// Positions of the address components in a set's `type A . B : C` or `typeof EXPR . EXPR`.
fn set_positions(declaration: &[Token], typeof_: bool) -> Positions {
    let (key, data) = match declaration.iter().position(|t| t.is(":")) {
        Some(at) => (&declaration[..at], &declaration[at + 1..]),
        None => (declaration, &[][..]),
    };
    let parts = |side: &[Token]| -> Vec<bool> {
        side.split(|t| t.is("."))
            .map(|part| {
                if typeof_ {
                    (0..part.len()).any(|i| address_selector_at(part, i).is_some())
                } else {
                    part.iter().any(|t| t.is("ipv4_addr") || t.is("ipv6_addr"))
                }
            })
            .collect()
    };
    let indices =
        |flags: Vec<bool>| -> Vec<usize> { flags.iter().enumerate().filter(|(_, a)| **a).map(|(i, _)| i).collect() };
    Positions {
        key_from_end: indices(parts(key).into_iter().rev().collect()),
        data: indices(parts(data)),
    }
}

/// Every line of nft text that names a host where an address belongs, with why. A line is
/// reported once, for its first such name.
pub fn nft_host_names(text: &str) -> Vec<(usize, String)> {
    let tokens = tokens(text);
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut report = |t: &Token| {
        if !found.iter().any(|(line, _)| *line == t.line) {
            found.push((t.line, refusal(t)));
        }
    };
    let mut netdev = false;
    let mut i = 0;
    while i < tokens.len() {
        if let Some(len) = address_selector_at(&tokens, i) {
            if let Some(bad) = selector_value(&tokens, i + len) {
                report(bad);
            }
            i += len;
            continue;
        }
        let t = &tokens[i];
        if t.is("table") {
            netdev = tokens.get(i + 1).is_some_and(|f| f.is("netdev"));
        } else if ADDRESS_STATEMENTS.iter().any(|s| t.is(s)) {
            if let Some(bad) = statement_target(&tokens, i + 1, netdev) {
                report(bad);
            }
        } else if (t.is("set") || t.is("map")) && tokens.get(i + 2).is_some_and(|b| b.is("{")) {
            let (inner, _) = braced(&tokens, i + 2);
            if let Some(bad) = named_set(inner) {
                report(bad);
            }
        }
        i += 1;
    }
    found.sort();
    found
}

/// Where the statement or rule part holding `tokens[at]` ends: a `;`, a closing brace, or the
/// end of its line.
fn statement_end(tokens: &[Token], at: usize) -> usize {
    let line = tokens.get(at).map_or(0, |t| t.line);
    tokens[at..]
        .iter()
        .position(|t| t.is(";") || t.is("}") || t.line != line)
        .map_or(tokens.len(), |n| at + n)
}

/// The value after an address selector that ends at `at`: an operator, then a set literal, a
/// map or verdict map, a named set or one value. In a concatenation (`ip saddr . tcp dport
/// { … }`) the address is the component as far from the end as the dots after it say.
fn selector_value(tokens: &[Token], at: usize) -> Option<&Token> {
    let is_operator = |t: &Token| OPERATORS.iter().chain(BITWISE).any(|o| t.is(o));
    let mut at = at;
    while tokens
        .get(at)
        .is_some_and(|t| is_operator(t) || t.is("map") || t.is("vmap"))
    {
        at += 1;
    }
    let value = tokens.get(at)?;
    if value.is("{") {
        let (inner, _) = braced(tokens, at);
        let positions = Positions {
            key_from_end: vec![0],
            data: Vec::new(),
        };
        return check_elements(inner, &positions, false);
    }
    if value.is(".") {
        // A concatenation: the other selectors up to the set literal, counting the dots.
        let end = statement_end(tokens, at);
        let open = tokens[at..end]
            .iter()
            .position(|t| t.is("{") || t.text.starts_with('@'))?;
        if !tokens[at + open].is("{") {
            return None;
        }
        let dots = tokens[at..at + open].iter().filter(|t| t.is(".")).count();
        let (inner, _) = braced(tokens, at + open);
        let positions = Positions {
            key_from_end: vec![dots],
            data: Vec::new(),
        };
        return check_elements(inner, &positions, false);
    }
    if value.is(";") || value.is("}") || value.is(",") || not_a_value(value) {
        return None;
    }
    if !numeric_address(&value.text, false) {
        return Some(value);
    }
    // A mask (`ip saddr & 0.0.0.255 == 0.0.0.1`): the operand after it is an address too.
    if tokens.get(at + 1).is_some_and(is_operator) {
        return selector_value(tokens, at + 1);
    }
    None
}

/// The target of `dnat`/`snat`/`tproxy`/`dup`/`fwd` (their tokens after the keyword): `[ip|ip6]
/// to VALUE`, where VALUE is an address (with a port), an expression, or a map whose data start
/// with an address. `fwd to` and `dup to` without a family in a netdev table name a device.
fn statement_target(tokens: &[Token], mut at: usize, netdev: bool) -> Option<&Token> {
    let keyword = tokens.get(at.checked_sub(1)?)?;
    let mut family = false;
    while tokens.get(at).is_some_and(|t| t.is("ip") || t.is("ip6")) {
        family = true;
        at += 1;
    }
    if !tokens.get(at).is_some_and(|t| t.is("to")) {
        return None;
    }
    if !family && (keyword.is("fwd") || (keyword.is("dup") && netdev)) {
        return None;
    }
    at += 1;
    let value = tokens.get(at)?;
    if value.text.starts_with(':') || not_a_value(value) || address_selector_at(tokens, at).is_some() {
        return None;
    }
    let end = statement_end(tokens, at);
    if let Some(map) = tokens[at..end].iter().position(|t| t.is("map")) {
        let open = at + map + 1;
        if !tokens.get(open).is_some_and(|t| t.is("{")) {
            return None;
        }
        let (inner, _) = braced(tokens, open);
        let positions = Positions {
            key_from_end: Vec::new(),
            data: vec![0],
        };
        return check_elements(inner, &positions, true);
    }
    let value_text = value.text.trim_end_matches(':');
    (!numeric_address(value_text, true)).then_some(value)
}

/// A named set or map body (`type …; flags …; elements = { … }`): its elements checked at
/// the address positions its type gives.
fn named_set(inner: &[Token]) -> Option<&Token> {
    let declaration = |word: &str| {
        inner
            .iter()
            .position(|t| t.is(word))
            .map(|at| &inner[at + 1..statement_end(inner, at + 1).max(at + 1)])
    };
    let positions = match (declaration("type"), declaration("typeof")) {
        (Some(d), _) => set_positions(d, false),
        (None, Some(d)) => set_positions(d, true),
        (None, None) => return None,
    };
    if positions.key_from_end.is_empty() && positions.data.is_empty() {
        return None;
    }
    let at = inner.iter().position(|t| t.is("elements"))?;
    let open = inner[at..].iter().position(|t| t.is("{")).map(|n| at + n)?;
    let (elements, _) = braced(inner, open);
    check_elements(elements, &positions, false)
}

/// iptables options that take addresses (resolved by name when they are not numeric).
const IPTABLES_ADDRESS_OPTIONS: &[&str] = &[
    "source",
    "src",
    "destination",
    "dst",
    "to-destination",
    "to-source",
    "to",
    "gateway",
    "on-ip",
    "src-range",
    "dst-range",
];

/// Why one `iptables-restore` line must be left out for a host name, if it must: the value of
/// `-s`, `-d` or a long option that takes addresses (in full or abbreviated) that is not a
/// numeric address, list, prefix, range or address with a port.
pub fn iptables_host_name(line: &str) -> Option<String> {
    let words = iptables_words(line);
    for (i, (word, _)) in words.iter().enumerate() {
        // Free text (a comment, a log prefix) is an argument, whatever it looks like.
        let free_text = i
            .checked_sub(1)
            .and_then(|p| words.get(p))
            .is_some_and(|(w, _)| ["--comment", "--log-prefix", "--nflog-prefix"].contains(&w.as_str()));
        if free_text {
            continue;
        }
        let (takes_address, inline) = if let Some(long) = word.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let known = name.len() >= 2 && IPTABLES_ADDRESS_OPTIONS.iter().any(|o| o.starts_with(name));
            (known, value)
        } else if let Some(short) = word.strip_prefix('-') {
            match short.chars().next() {
                Some('s' | 'd') if short.len() == 1 => (true, None),
                Some('s' | 'd') => (true, Some(&short[1..])),
                _ => (false, None),
            }
        } else {
            (false, None)
        };
        if !takes_address {
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let next = if words.get(i + 1).is_some_and(|(w, q)| w == "!" && !q) {
                    i + 2
                } else {
                    i + 1
                };
                match words.get(next) {
                    Some((v, _)) => v.as_str(),
                    None => continue,
                }
            }
        };
        if let Some(bad) = value.split(',').find(|v| !numeric_address(v, true)) {
            let shown: String = bad.chars().take(80).collect();
            return Some(format!(
                "refused: `{shown}` stands where an address belongs, and iptables would resolve it as a \
                 host name (as root, through nscd or DNS); a snapshot lists numeric addresses only"
            ));
        }
    }
    None
}

/// The words of an `iptables-restore` line as the tool splits them: whitespace apart, double or
/// single quotes keep a word whole (with `\"` inside), each word with whether it was quoted.
fn iptables_words(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', Some(_)) => word.extend(chars.next()),
            (q, Some(open)) if q == open => quote = None,
            (q @ ('"' | '\''), None) => {
                quote = Some(q);
                quoted = true;
            }
            (c, None) if c.is_whitespace() => {
                if !word.is_empty() || quoted {
                    out.push((std::mem::take(&mut word), quoted));
                }
                quoted = false;
            }
            (c, _) => word.push(c),
        }
    }
    if !word.is_empty() || quoted {
        out.push((word, quoted));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_lines(text: &str) -> Vec<usize> {
        nft_host_names(text).into_iter().map(|(line, _)| line).collect()
    }

    #[test]
    fn a_name_in_any_address_position_is_refused_quoted_or_not() {
        for rule in [
            "ip saddr lwrevacanary drop",
            "ip saddr \"lw-reva-canary.example\" drop",
            "ip saddr cafe drop",
            "ip6 daddr != canary.example drop",
            "ip daddr { 192.0.2.1, \"canary\" } drop",
            "ip saddr != { 192.0.2.0/24, canary.example } accept",
            "iifname \"eth0\" ip saddr . tcp dport { 192.0.2.1 . 22, canary . 80 } accept",
            "ip daddr vmap { canary : drop, 192.0.2.1 : accept }",
            "ct original ip saddr canary drop",
            "arp saddr ip canary drop",
            "dnat to canary.example:80",
            "dnat ip to \"canary\"",
            "dnat to canary",
            "snat to canary-a-canary-b",
            "dnat ip to tcp dport map { 80 : canary.example:8080 }",
            "dup to canary device \"eth0\"",
            "ip saddr 192.0.2.1-canary drop",
            "ip saddr & 0.0.0.255 == canary drop",
            "ip saddr & canary == 0.0.0.1 drop",
        ] {
            let text = format!("table inet t {{\n\tchain c {{\n\t\t{rule}\n\t}}\n}}\n");
            assert_eq!(refused_lines(&text), vec![3], "not refused: {rule}");
        }
        let text = "table ip t {\n\tset s {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { 192.0.2.1 . 22,\n\t\t\t     canary . 80 }\n\t}\n}\n";
        assert_eq!(refused_lines(text), vec![5]);
        let typeof_ =
            "table ip t {\n\tmap m {\n\t\ttypeof tcp dport : ip daddr\n\t\telements = { 80 : \"canary\" }\n\t}\n}\n";
        assert_eq!(refused_lines(typeof_), vec![4]);
        let reason = &nft_host_names("table ip t { chain c { ip saddr \"lw-reva-canary.example\" drop; } }")[0].1;
        assert!(
            reason.contains("\"lw-reva-canary.example\"") && reason.contains("resolve"),
            "{reason}"
        );
    }

    #[test]
    fn numbers_names_of_other_things_and_set_references_pass() {
        let fine = "table inet filter {\n\
            \tset trusted {\n\t\ttype ipv4_addr . inet_service\n\t\tflags interval\n\t\telements = { 192.0.2.0/24 . 22, 198.51.100.1-198.51.100.9 . 80 }\n\t}\n\
            \tset ifs {\n\t\ttype ifname\n\t\telements = { \"eth0\", \"canary\" }\n\t}\n\
            \tmap svc {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = { 10.96.0.10 . udp . 53 : goto svc-dns }\n\t}\n\
            \tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\
            \t\tiifname \"lo\" accept comment \"ip saddr canary.example\"\n\
            \t\tiifname . ip saddr { \"eth0\" . 192.0.2.1 } accept\n\
            \t\tip saddr @trusted accept\n\t\tip daddr . meta l4proto . th dport vmap @svc\n\
            \t\tip saddr & 0.0.0.255 == 0.0.0.1 drop\n\t\tip6 saddr ::ffff:127.0.0.0/104 drop\n\t\tct state established,related accept\n\
            \t\tmeta skuid root accept\n\t\tip saddr 192.0.2.1 counter packets 0 bytes 0 jump other\n\
            \t\tct original ip daddr 10.0.0.1 dnat ip to 10.0.0.2:8080\n\
            \t\tdnat ip to ip daddr map { 127.0.0.1 : 10.0.0.2 . 80 }\n\
            \t\tdnat ip6 to [2001:db8::1]:80\n\t\tsnat ip to 192.0.2.1-192.0.2.9:1000-2000\n\
            \t\tmasquerade to :1024-2048\n\t\tredirect to :8080\n\t\tdnat to ip saddr map @m\n\
            \t}\n}\n";
        assert_eq!(nft_host_names(fine), vec![]);
    }

    /// Every ruleset captured from real software passes untouched.
    #[test]
    fn no_captured_ruleset_names_a_host() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/firewall");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures").flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path().join("ruleset.nft")) {
                seen += 1;
                assert_eq!(nft_host_names(&text), vec![], "{}", entry.path().display());
            }
            for dump in ["iptables-save.txt", "ip6tables-save.txt"] {
                if let Ok(text) = std::fs::read_to_string(entry.path().join(dump)) {
                    for line in text.lines() {
                        assert_eq!(iptables_host_name(line), None, "{}: {line}", entry.path().display());
                    }
                }
            }
        }
        assert!(seen >= 10, "only {seen} captured rulesets found");
    }

    #[test]
    fn iptables_names_are_refused_in_every_address_option() {
        for line in [
            "-A INPUT -s canary -j DROP",
            "-A INPUT -s 192.0.2.1,canary.example -j DROP",
            "-A INPUT ! -d canary.example/32 -j DROP",
            "-A INPUT --source canary -j DROP",
            "-A INPUT --sou=canary -j DROP",
            "-A INPUT -dcanary -j DROP",
            "-A PREROUTING -p tcp -j DNAT --to-destination canary:80",
            "-A POSTROUTING -j SNAT --to-source \"canary\"",
            "-A PREROUTING -j TEE --gateway canary",
            "-A INPUT -m iprange --src-range 192.0.2.1-canary -j DROP",
        ] {
            assert!(iptables_host_name(line).is_some(), "not refused: {line}");
        }
        for line in [
            "-A INPUT -s 192.0.2.0/24 -d 127.0.0.0/8 -j DROP",
            "-A KUBE-SEP-X -p tcp -m tcp -j DNAT --to-destination 10.244.0.5:53",
            "-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
            "-A INPUT -m set --match-set canary src -j DROP",
            "-A INPUT -i eth0 -m comment --comment \"-s canary\" -j ACCEPT",
            "-A POSTROUTING -j MASQUERADE --to-ports 1024-2048",
        ] {
            assert_eq!(iptables_host_name(line), None, "{line}");
        }
    }
}
