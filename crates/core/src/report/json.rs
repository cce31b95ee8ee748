//! The machine rendering: the report as `loopwarden.report/v1` JSON.

use super::Report;

/// The report as pretty-printed JSON; a serialisation failure is the caller's error to report,
/// never a document that could pass for a report.
pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Writes the report as pretty-printed JSON to `out` as it goes (a large report is never held
/// as text), followed by a newline.
pub fn write(out: &mut dyn std::io::Write, report: &Report) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}
