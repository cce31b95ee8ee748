//! The plan as JSON (`schema: "loopwarden.harden/v1"`): the plan's model plus the table as nft
//! text and as the nft JSON batch that applies it, and, after `--apply`, what was applied.

use crate::apply::ApplyReport;
use crate::plan::Plan;
use crate::render::{nft_json, nft_text};
use loopwarden_core::report::{Report, ReportHost};
use serde::Serialize;

/// The schema tag of a JSON plan.
pub const PLAN_SCHEMA: &str = "loopwarden.harden/v1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    host: &'a ReportHost,
    verified: bool,
    #[serde(flatten)]
    plan: &'a Plan,
    nft_text: String,
    nft_batch: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<&'a ApplyReport>,
}

/// The plan, its table and (after `--apply`) what was applied, as pretty JSON.
pub fn render(plan: &Plan, report: &Report, applied: Option<&ApplyReport>) -> String {
    let doc = Document {
        schema: PLAN_SCHEMA,
        host: &report.host,
        verified: plan.verified(),
        plan,
        nft_text: nft_text::render(&plan.table, None),
        nft_batch: nft_json::batch(&nft_json::objects(&plan.table, None)),
        applied,
    };
    serialize(&doc)
}

/// Any other result (`--check`, `--confirm`, `--remove`) as pretty JSON.
pub fn serialize<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
