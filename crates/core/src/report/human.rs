//! The terminal rendering: findings grouped by service.

use super::Report;

/// Renders the report for a terminal; `color` adds ANSI colours.
pub fn render(report: &Report, _color: bool) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!("{} {} {}\n", f.severity, f.check, f.title));
    }
    out
}
