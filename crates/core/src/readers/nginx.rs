//! nginx: `nginx -T` output (every file nginx loaded, each after a `# configuration file PATH:`
//! line) read into a directive tree, and the `proxy_pass`-like directives of server blocks that
//! listen beyond loopback, with the allow/deny rules in front of them.

use super::endpoint::{is_loopback_host, split_host_port};
use super::reverse_proxy::{Access, Proxy, Published, Upstream};
use crate::facts::CommandCapture;
use std::rc::Rc;

/// One nginx directive with its position: `name args…;` or `name args… { block }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name (`server`, `listen`, `proxy_pass` …).
    pub name: String,
    /// Its arguments, unquoted.
    pub args: Vec<String>,
    /// The file it is in, from `nginx -T`'s markers (shared by every directive of the file).
    pub file: Rc<str>,
    /// Its line in that file (1-based).
    pub line: usize,
    /// The directives of its `{ … }` block, for block directives.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// `file:line`, as evidence cites it.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The whole configuration of one `nginx -T` dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxConfig {
    /// The top-level directives (`events`, `http`, `stream` …), in order.
    pub directives: Vec<Directive>,
}

impl NginxConfig {
    /// Reads `nginx -T` output. Unbalanced braces end a block where the text stops, so any text
    /// gives a tree.
    pub fn parse(dump: &str) -> NginxConfig {
        NginxConfig {
            directives: parse(&mut tokens(dump).into_iter().peekable()),
        }
    }
}

/// A token of `nginx -T` output with its file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String, Rc<str>, usize),
    Semicolon,
    Open,
    Close,
}

/// Splits `nginx -T` output into tokens, following its `# configuration file PATH:` markers.
fn tokens(dump: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut file: Rc<str> = Rc::from("<nginx -T>");
    let mut line_in_file = 0usize;
    for raw in dump.lines() {
        if let Some(path) = raw
            .strip_prefix("# configuration file ")
            .and_then(|r| r.strip_suffix(':'))
        {
            file = Rc::from(path);
            line_in_file = 0;
            continue;
        }
        line_in_file += 1;
        let mut chars = raw.chars().peekable();
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut Vec<Token>| {
            if !word.is_empty() {
                out.push(Token::Word(std::mem::take(word), Rc::clone(&file), line_in_file));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' if word.is_empty() => break,
                '"' | '\'' => {
                    for q in chars.by_ref() {
                        if q == c {
                            break;
                        }
                        word.push(q);
                    }
                }
                '\\' => word.extend(chars.next()),
                ';' | '{' | '}' => {
                    flush(&mut word, &mut out);
                    out.push(match c {
                        ';' => Token::Semicolon,
                        '{' => Token::Open,
                        _ => Token::Close,
                    });
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
    }
    out
}

/// The deepest block read: real configurations nest a few levels (`http` › `server` ›
/// `location` › `if`); deeper blocks of a hostile dump are skipped, not followed down the stack.
const MAX_DEPTH: usize = 32;

/// Parses tokens into a directive tree (unbalanced input ends the block where it stops).
fn parse(tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>) -> Vec<Directive> {
    directives(tokens, 0)
}

/// The directives up to the `}` closing the block at `depth` (or the end of the tokens).
fn directives(tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>, depth: usize) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut words: Vec<(String, Rc<str>, usize)> = Vec::new();
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(w, f, l) => words.push((w, f, l)),
            Token::Semicolon | Token::Open => {
                let block = match token {
                    Token::Open if depth < MAX_DEPTH => Some(directives(tokens, depth + 1)),
                    Token::Open => {
                        skip_block(tokens);
                        Some(Vec::new())
                    }
                    _ => None,
                };
                if let Some(((name, file, line), rest)) = words.split_first() {
                    out.push(Directive {
                        name: name.clone(),
                        args: rest.iter().map(|(w, _, _)| w.clone()).collect(),
                        file: Rc::clone(file),
                        line: *line,
                        block,
                    });
                }
                words.clear();
            }
            Token::Close => return out,
        }
    }
    out
}

/// Consumes a block's tokens up to its closing `}`, however deep, without recursion.
fn skip_block(tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>) {
    let mut open = 1usize;
    for token in tokens.by_ref() {
        match token {
            Token::Open => open += 1,
            Token::Close if open == 1 => return,
            Token::Close => open -= 1,
            _ => {}
        }
    }
}

/// A listen address of a server block and whether it reaches beyond loopback.
fn listen_is_outward(arg: &str) -> bool {
    if arg.starts_with("unix:") {
        return false;
    }
    if arg.parse::<u16>().is_ok() || arg.starts_with("*:") || arg == "*" {
        return true;
    }
    let host = match split_host_port(arg) {
        Some((h, _)) => h,
        None => arg.trim_start_matches('[').trim_end_matches(']').to_string(),
    };
    !is_loopback_host(&host)
}

/// A destination named by a `proxy_pass`-like argument: concrete, or an `upstream` block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dest {
    Tcp(String, u16),
    Unix(String),
    Named(String),
}

fn upstream_of(arg: &str, default_port: u16) -> Option<Dest> {
    if arg.contains('$') {
        return None;
    }
    let (scheme_port, rest) = match arg.split_once("://") {
        Some((scheme, rest)) => (if scheme.ends_with('s') { 443 } else { default_port }, rest),
        None => (default_port, arg),
    };
    if let Some(path) = rest.strip_prefix("unix:") {
        let path = path.split(':').next().unwrap_or(path);
        return Some(Dest::Unix(path.to_string()));
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    match split_host_port(authority) {
        Some((host, port)) => Some(Dest::Tcp(host, port)),
        None if authority.parse::<std::net::IpAddr>().is_ok() || authority == "localhost" => {
            Some(Dest::Tcp(authority.to_string(), scheme_port))
        }
        None => Some(Dest::Named(authority.to_string())),
    }
}

/// Directives that hand a request to an upstream, and their default port.
const PASS_DIRECTIVES: &[(&str, u16)] = &[
    ("proxy_pass", 80),
    ("grpc_pass", 80),
    ("uwsgi_pass", 80),
    ("scgi_pass", 80),
    ("fastcgi_pass", 80),
];

/// Whether allow/deny rules at this level leave only loopback clients.
fn loopback_only(rules: &[&Directive]) -> bool {
    let Some(last) = rules.last() else { return false };
    last.name == "deny"
        && last.args.first().is_some_and(|a| a == "all")
        && rules.iter().filter(|d| d.name == "allow").all(|d| {
            d.args
                .first()
                .is_some_and(|a| a.starts_with("unix:") || is_loopback_host(a.split('/').next().unwrap_or(a)))
        })
}

/// A place where a server block passes requests to an upstream.
struct Pass<'a> {
    directive: &'a Directive,
    /// The innermost allow/deny rules leave only loopback clients.
    restricted: bool,
    sets_host: Option<&'a Directive>,
}

/// Walks a server block, carrying the innermost allow/deny rules and Host header setting.
fn passes<'a>(block: &'a [Directive], restricted: bool, sets_host: Option<&'a Directive>, out: &mut Vec<Pass<'a>>) {
    let rules: Vec<&Directive> = block.iter().filter(|d| d.name == "allow" || d.name == "deny").collect();
    let restricted = if rules.is_empty() {
        restricted
    } else {
        loopback_only(&rules)
    };
    let sets_host = block
        .iter()
        .find(|d| d.name == "proxy_set_header" && d.args.first().is_some_and(|h| h.eq_ignore_ascii_case("host")))
        .or(sets_host);
    for d in block {
        if PASS_DIRECTIVES.iter().any(|(n, _)| *n == d.name) {
            out.push(Pass {
                directive: d,
                restricted,
                sets_host,
            });
        }
        if let Some(inner) = &d.block {
            if d.name != "server" {
                passes(inner, restricted, sets_host, out);
            }
        }
    }
}

/// Every upstream the nginx of `capture` serves on a listener beyond loopback.
pub fn published(capture: &CommandCapture) -> Vec<Published> {
    let mut out = Vec::new();
    let root = NginxConfig::parse(&capture.output).directives;
    for context in root.iter().filter(|d| d.name == "http" || d.name == "stream") {
        let Some(body) = &context.block else { continue };
        let upstreams: Vec<&Directive> = body.iter().filter(|d| d.name == "upstream").collect();
        for server in body.iter().filter(|d| d.name == "server") {
            let Some(server_body) = &server.block else { continue };
            let listens: Vec<&Directive> = server_body.iter().filter(|d| d.name == "listen").collect();
            let outward: Vec<(String, String)> = if listens.is_empty() && context.name == "http" {
                vec![(
                    "*:80".to_string(),
                    format!("*:80 (no listen directive; {})", server.at()),
                )]
            } else {
                listens
                    .iter()
                    .filter_map(|l| l.args.first().filter(|a| listen_is_outward(a)).map(|a| (a, l)))
                    .map(|(a, l)| (a.clone(), format!("{a} ({})", l.at())))
                    .collect()
            };
            if outward.is_empty() {
                continue;
            }
            let body_rules: Vec<&Directive> = body.iter().filter(|d| d.name == "allow" || d.name == "deny").collect();
            let mut found = Vec::new();
            passes(server_body, loopback_only(&body_rules), None, &mut found);
            for pass in &found {
                let default_port = PASS_DIRECTIVES
                    .iter()
                    .find(|(n, _)| *n == pass.directive.name)
                    .map_or(80, |p| p.1);
                let Some(arg) = pass.directive.args.first() else {
                    continue;
                };
                let Some(upstream) = upstream_of(arg, default_port) else {
                    continue;
                };
                let targets = resolve(&upstream, &upstreams, context.name == "stream");
                for (target, via) in targets {
                    out.extend(describe(capture, &outward, pass, target, via));
                }
            }
        }
    }
    out
}

/// The evidence for one upstream of one pass directive.
fn describe(
    capture: &CommandCapture,
    outward: &[(String, String)],
    pass: &Pass,
    target: Dest,
    via: Option<&Directive>,
) -> Option<Published> {
    let upstream = match target {
        Dest::Tcp(host, port) => Upstream::Tcp(host, port),
        Dest::Unix(path) => Upstream::Unix(path),
        Dest::Named(_) => return None,
    };
    let d = pass.directive;
    let mut evidence = vec![
        format!(
            "{}: {} {}; (`{}`)",
            d.at(),
            d.name,
            d.args.join(" "),
            capture.command.join(" ")
        ),
        format!(
            "the server block listens beyond loopback on {}",
            outward
                .iter()
                .map(|(_, shown)| shown.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    if let Some(server) = via {
        evidence.push(format!("{}: upstream server {}", server.at(), server.args.join(" ")));
    }
    evidence.push(match pass.sets_host {
        Some(h) => {
            format!(
                "{}: proxy_set_header {} — the client's Host passes through",
                h.at(),
                h.args.join(" ")
            )
        }
        None => "nginx sends Host: $proxy_host (the upstream's own address) by default".to_string(),
    });
    Some(Published {
        proxy: Proxy::Nginx,
        pid: capture.pid,
        upstream,
        listen: outward.iter().map(|(addr, _)| addr.clone()).collect(),
        access: if pass.restricted {
            Access::LoopbackOnly
        } else {
            Access::Anyone
        },
        evidence,
    })
}

/// Concrete destinations of an upstream: itself, or the servers of the named `upstream` block
/// (with the line that names each).
fn resolve<'a>(upstream: &Dest, blocks: &[&'a Directive], stream: bool) -> Vec<(Dest, Option<&'a Directive>)> {
    let Dest::Named(name) = upstream else {
        return vec![(upstream.clone(), None)];
    };
    let Some(block) = blocks.iter().find(|b| b.args.first() == Some(name)) else {
        return Vec::new();
    };
    let servers = block.block.iter().flatten().filter(|d| d.name == "server");
    servers
        .filter_map(|s| {
            let target = upstream_of(s.args.first()?, if stream { 0 } else { 80 })?;
            (!matches!(target, Dest::Named(_))).then_some((target, Some(s)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_file_markers_and_lines() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n  include x;\n}\n\n\
                    # configuration file /etc/nginx/x:\nserver { listen 8080; # c\n location / { proxy_pass \"http://127.0.0.1:7001\"; }\n}\n";
        let cfg = NginxConfig::parse(dump).directives;
        assert_eq!(cfg[0].name, "http");
        assert_eq!(cfg[1].name, "server");
        let server = cfg[1].block.as_ref().unwrap();
        assert_eq!(
            (server[0].name.as_str(), &*server[0].file, server[0].line),
            ("listen", "/etc/nginx/x", 1)
        );
        let location = server[1].block.as_ref().unwrap();
        assert_eq!(location[0].args, vec!["http://127.0.0.1:7001".to_string()]);
        assert_eq!(location[0].line, 2);
    }

    #[test]
    fn listen_and_upstream_forms() {
        assert!(listen_is_outward("8080"));
        assert!(listen_is_outward("[::]:443"));
        assert!(listen_is_outward("192.0.2.1:80"));
        assert!(!listen_is_outward("127.0.0.1:8080"));
        assert!(!listen_is_outward("localhost:8080"));
        assert!(!listen_is_outward("unix:/run/n.sock"));
        assert_eq!(
            upstream_of("http://127.0.0.1:7001/api/", 80),
            Some(Dest::Tcp("127.0.0.1".into(), 7001))
        );
        assert_eq!(
            upstream_of("https://localhost", 80),
            Some(Dest::Tcp("localhost".into(), 443))
        );
        assert_eq!(
            upstream_of("http://unix:/run/app.sock:/x", 80),
            Some(Dest::Unix("/run/app.sock".into()))
        );
        assert_eq!(upstream_of("http://app", 80), Some(Dest::Named("app".into())));
        assert_eq!(upstream_of("http://$backend", 80), None);
        assert_eq!(
            upstream_of("127.0.0.1:5432", 0),
            Some(Dest::Tcp("127.0.0.1".into(), 5432))
        );
    }

    #[test]
    fn loopback_only_rules_are_recognised() {
        let d = |name: &str, arg: &str| Directive {
            name: name.into(),
            args: vec![arg.into()],
            file: Rc::from(""),
            line: 0,
            block: None,
        };
        let (a, b, c) = (d("allow", "127.0.0.1"), d("deny", "all"), d("allow", "192.0.2.0/24"));
        assert!(loopback_only(&[&a, &b]));
        assert!(!loopback_only(&[&a, &c, &b]));
        assert!(!loopback_only(&[&a]));
    }

    #[test]
    fn server_blocks_publish_their_passes_with_access_and_listeners() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n server {\n  listen 8080;\n  listen 127.0.0.1:8081;\n  \
                    location /open { proxy_pass http://127.0.0.1:7001; }\n  \
                    location /admin { allow 127.0.0.1; deny all; proxy_pass http://127.0.0.1:7002; }\n }\n \
                    server { listen 127.0.0.1:8082; location / { proxy_pass http://127.0.0.1:7003; } }\n}\n";
        let capture = CommandCapture {
            kind: "nginx".into(),
            pid: 7,
            command: vec!["nginx".into(), "-T".into()],
            output: dump.into(),
        };
        let found: Vec<(Upstream, Access, Vec<String>)> = published(&capture)
            .into_iter()
            .map(|p| (p.upstream, p.access, p.listen))
            .collect();
        assert_eq!(
            found,
            [
                (
                    Upstream::Tcp("127.0.0.1".into(), 7001),
                    Access::Anyone,
                    vec!["8080".to_string()]
                ),
                (
                    Upstream::Tcp("127.0.0.1".into(), 7002),
                    Access::LoopbackOnly,
                    vec!["8080".to_string()]
                ),
            ]
        );
    }
}
