//! The machine rendering: the report as `loopwarden.report/v1` JSON.

use super::Report;

/// The report as pretty-printed JSON.
pub fn render(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
