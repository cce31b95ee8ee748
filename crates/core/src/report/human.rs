//! The terminal rendering: host-wide findings first, then each service with its process and the
//! findings about it (who can reach it, how, the evidence and the fix).

use super::shown::{self, line};
use super::{Finding, Report, Service, Severity, Status};
use std::borrow::Cow;
use std::collections::hash_map::{Entry, HashMap};
use std::fmt::{self, Write as _};
use std::io::{self, Write};

/// ANSI styling, or none.
struct Style {
    color: bool,
}

/// `text` in an ANSI style when colour is on, as it is otherwise; written without building a
/// string (a report of 100,000 findings would build hundreds of thousands).
struct Painted<T> {
    code: &'static str,
    text: T,
    color: bool,
}

impl<T: fmt::Display> fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.color {
            write!(f, "\x1b[{}m{}\x1b[0m", self.code, self.text)
        } else {
            self.text.fmt(f)
        }
    }
}

impl Style {
    fn paint<T: fmt::Display>(&self, code: &'static str, text: T) -> Painted<T> {
        Painted {
            code,
            text,
            color: self.color,
        }
    }

    fn severity(&self, s: Severity) -> Painted<&'static str> {
        let (code, label) = match s {
            Severity::Critical => ("1;31", "CRITICAL"),
            Severity::High => ("31", "HIGH    "),
            Severity::Medium => ("33", "MEDIUM  "),
            Severity::Low => ("36", "LOW     "),
            Severity::Info => ("2", "INFO    "),
        };
        self.paint(code, label)
    }

    fn bold<T: fmt::Display>(&self, text: T) -> Painted<T> {
        self.paint("1", text)
    }

    fn dim<T: fmt::Display>(&self, text: T) -> Painted<T> {
        self.paint("2", text)
    }
}

/// A finding's `[check · attacker · status · confidence]` tag.
struct Tag<'a>(&'a Finding);

impl fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        write!(
            f,
            "[{} · {} · {} · {}]",
            x.check,
            x.attacker.as_str(),
            x.status.as_str(),
            x.confidence.as_str()
        )
    }
}

/// The report for a terminal, as one string (see [`write`]).
pub fn render(report: &Report, color: bool) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and every line written is valid UTF-8.
    let _ = write(&mut out, report, color);
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes the report for a terminal to `out` as it goes (a report of 100,000 services is never
/// held twice); `color` adds ANSI colours (the caller decides: only on a TTY and without
/// `NO_COLOR`).
///
/// Every string in the report may come from the host or a snapshot, so each printed line is
/// escaped and clipped ([`shown::line`]): one finding line stays one line, and the only escape
/// sequences in the output are the colours added here. A lab attack or a fix already printed
/// under an earlier finding is referred to, not repeated.
pub fn write(out: &mut dyn Write, report: &Report, color: bool) -> io::Result<()> {
    let style = Style { color };
    let mut shown = Shown::default();
    let h = &report.host;
    writeln!(
        out,
        "{} {} (kernel {}, {}){}",
        style.bold("loopwarden audit of"),
        style.bold(&line(&h.hostname)),
        line(&h.kernel),
        line(&h.netns),
        if h.privileged {
            ""
        } else {
            " — unprivileged: some socket owners unseen"
        }
    )?;
    writeln!(out, "{}", summary(report))?;
    for a in &report.activity {
        writeln!(out, "{}", line(a))?;
    }

    let mut by_service: HashMap<&str, Vec<&Finding>> = HashMap::new();
    let mut host_wide: Vec<&Finding> = Vec::new();
    for f in &report.findings {
        match f.service.as_deref() {
            Some(id) => by_service.entry(id).or_default().push(f),
            None => host_wide.push(f),
        }
    }
    if !host_wide.is_empty() {
        writeln!(out, "\n{}", style.bold("host-wide"))?;
        for f in host_wide {
            finding(out, &style, &mut shown, f)?;
        }
    }

    let mut quiet: Vec<&Service> = Vec::new();
    let mut with_findings: Vec<(&Service, Vec<&Finding>)> = Vec::new();
    for s in &report.services {
        match by_service.remove(s.id.as_str()) {
            Some(fs) => with_findings.push((s, fs)),
            None => quiet.push(s),
        }
    }
    with_findings.sort_by(|(a, fa), (b, fb)| max_severity(fb).cmp(&max_severity(fa)).then_with(|| a.id.cmp(&b.id)));
    for (service, findings) in with_findings {
        writeln!(
            out,
            "\n{}  {}",
            style.bold(&line(&service.id)),
            style.dim(&line(&process_label(service)))
        )?;
        for f in findings {
            finding(out, &style, &mut shown, f)?;
        }
    }
    // Findings about a service the report does not list, in the order of the findings.
    for f in report
        .findings
        .iter()
        .filter(|f| f.service.as_deref().is_some_and(|id| by_service.contains_key(id)))
    {
        writeln!(out, "\n{}", style.bold(&line(f.service.as_deref().unwrap_or(""))))?;
        finding(out, &style, &mut shown, f)?;
    }
    if !quiet.is_empty() {
        let mut named: Vec<String> = quiet
            .iter()
            .take(shown::MAX_LIST)
            .map(|s| format!("{} ({})", line(&s.id), line(&process_label(s))))
            .collect();
        if quiet.len() > shown::MAX_LIST {
            named.push(format!(
                "and {} more (--json lists them)",
                quiet.len() - shown::MAX_LIST
            ));
        }
        writeln!(out, "\n{} {}", style.bold("no findings:"), named.join(", "))?;
    }
    if !h.limits.is_empty() {
        writeln!(
            out,
            "\n{}",
            style.bold("not seen (results touching these are unknown):")
        )?;
        for l in &h.limits {
            writeln!(out, "  - {}", line(l))?;
        }
    }
    Ok(())
}

fn max_severity(findings: &[&Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

fn summary(report: &Report) -> String {
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = report
                .findings
                .iter()
                .filter(|f| f.severity == *s && f.status != Status::Blocked)
                .count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    let blocked = report.findings.iter().filter(|f| f.status == Status::Blocked).count();
    let mut line = format!(
        "{} service{}, {} finding{}",
        report.services.len(),
        if report.services.len() == 1 { "" } else { "s" },
        report.findings.len() - blocked,
        if report.findings.len() - blocked == 1 { "" } else { "s" },
    );
    if !counts.is_empty() {
        let _ = write!(line, " ({})", counts.join(", "));
    }
    if blocked > 0 {
        let _ = write!(line, ", {blocked} blocked");
    }
    line
}

fn process_label(service: &Service) -> String {
    match &service.process {
        Some(p) => format!("{} pid {} uid {}", p.name, p.pid, p.uid),
        None => "process unknown".to_string(),
    }
}

/// The prefix of evidence lines that report a lab attack (`loopwarden-lab`'s `evidence_line`).
const LAB: &str = "lab: ";

/// What the report printed already, so that a repeat is a reference: lab attacks get a number
/// the first time (`lab [3]: …`), fixes are remembered with the finding that first gave them.
#[derive(Default)]
struct Shown<'a> {
    lab: HashMap<&'a str, usize>,
    fixes: HashMap<FixKey<'a>, String>,
}

/// How a fix is recognised as printed before: a fixed text by where it lives (a report of
/// 100,000 findings then hashes no fix text), any other by its text.
#[derive(PartialEq, Eq, Hash)]
enum FixKey<'a> {
    Fixed(usize, usize),
    Text(&'a str),
}

impl<'a> FixKey<'a> {
    fn of(finding: &'a Finding) -> FixKey<'a> {
        match &finding.fix {
            Cow::Borrowed(text) => FixKey::Fixed(text.as_ptr() as usize, text.len()),
            Cow::Owned(text) => FixKey::Text(text),
        }
    }
}

fn finding<'a>(out: &mut dyn Write, style: &Style, shown: &mut Shown<'a>, f: &'a Finding) -> io::Result<()> {
    writeln!(
        out,
        "  {} {}  {}",
        style.severity(f.severity),
        style.bold(&line(&f.title)),
        style.dim(Tag(f))
    )?;
    let mut repeated: Vec<usize> = Vec::new();
    for e in &f.evidence {
        let Some(attack) = e.strip_prefix(LAB) else {
            refer(out, &mut repeated)?;
            writeln!(out, "           · {}", line(e))?;
            continue;
        };
        let next = shown.lab.len() + 1;
        match shown.lab.entry(attack) {
            Entry::Occupied(n) => repeated.push(*n.get()),
            Entry::Vacant(v) => {
                refer(out, &mut repeated)?;
                v.insert(next);
                writeln!(out, "           · lab [{next}]: {}", line(attack))?;
            }
        }
    }
    refer(out, &mut repeated)?;
    match shown.fixes.entry(FixKey::of(f)) {
        Entry::Occupied(first) => writeln!(out, "           {} as for {} above", style.dim("fix:"), first.get()),
        Entry::Vacant(v) => {
            writeln!(out, "           {} {}", style.dim("fix:"), line(&f.fix))?;
            v.insert(reference_name(f));
            Ok(())
        }
    }
}

/// How a later finding names `f`: `net.no-loopback-antispoof (ipv4)`, `bind.wildcard on
/// tcp:0.0.0.0:80`.
fn reference_name(f: &Finding) -> String {
    let mut here = f.check.to_string();
    if let Some(subject) = &f.subject {
        let _ = write!(here, " ({})", line(subject));
    }
    if let Some(service) = &f.service {
        let _ = write!(here, " on {}", line(service));
    }
    here
}

/// One line referring to lab attacks shown under an earlier finding.
fn refer(out: &mut dyn Write, repeated: &mut Vec<usize>) -> io::Result<()> {
    if repeated.is_empty() {
        return Ok(());
    }
    let refs: Vec<String> = repeated.drain(..).map(|n| format!("[{n}]")).collect();
    writeln!(out, "           · lab {}: shown above", refs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet};
    use crate::facts::Protocol;

    #[test]
    fn groups_by_service_and_lists_quiet_services() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts.inet_sockets.push(inet(Protocol::Tcp, "::1", 7001));
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts.firewall.nft_json = Some(serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
        let text = render(&crate::audit(&facts), false);
        let host = text.find("host-wide").expect("host-wide section");
        let svc = text
            .find("\ntcp:127.0.0.1:7001  svc pid 100 uid 1000")
            .expect("service header");
        assert!(host < svc, "{text}");
        assert!(
            text.contains("CRITICAL LAN neighbours can reach 127.0.0.0/8 services via eth0"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(render(&crate::audit(&facts), true).contains("\x1b[1;31m"));
    }

    /// A hostile snapshot's strings (hostname, kernel, a limit, a process name, evidence) are
    /// shown escaped; lab attacks and fixes already shown are referred to.
    #[test]
    fn snapshot_strings_are_escaped_and_repeats_are_referred_to() {
        let mut facts = base();
        facts.host.hostname = "h\x1b]0;owned\x07".into();
        facts.host.kernel = "6.1\n  CRITICAL forged".into();
        facts.host.limits.push(crate::facts::Limit {
            scope: "owners".into(),
            detail: "\x1b[2J".into(),
        });
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7002));
        facts.processes[0].name = "\x1b[8mx\u{202e}".into();
        let mut report = crate::audit(&facts);
        let lab = "lab: ipv4.dst-loopback fired TCP 192.0.2.254:1 -> 127.0.0.1:7001 from a LAN neighbour on eth0 at tcp:127.0.0.1:7001: delivered to the socket".to_string();
        for f in report.findings.iter_mut() {
            f.evidence.push(lab.clone());
        }
        let text = render(&report, true);
        let without_colours: String = [
            "\x1b[0m",
            "\x1b[1m",
            "\x1b[2m",
            "\x1b[31m",
            "\x1b[1;31m",
            "\x1b[33m",
            "\x1b[36m",
        ]
        .iter()
        .fold(text.clone(), |t, c| t.replace(c, ""));
        assert!(!without_colours.contains('\x1b') && !text.contains('\x07'), "{text}");
        assert!(
            text.contains("h\\x1b]0;owned\\x07") && text.contains("\\x1b[8mx\\u{202e}"),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("CRITICAL forged")),
            "{text}"
        );
        assert_eq!(text.matches("lab [1]: ipv4.dst-loopback").count(), 1, "{text}");
        assert!(text.contains("· lab [1]: shown above"), "{text}");
        assert!(
            text.contains("as for local.tcp-any-uid on tcp:127.0.0.1:7001 above"),
            "{text}"
        );
    }
}
