//! What a `loopwarden guard` front did to the probe itself.
//!
//! The probe connects to every loopback listener, a guard's fronts included, as the user the
//! audit runs as (root, usually). A front that does not admit that user refuses the connection:
//! in TCP mode it closes it (the client sees a reset or an end of stream), in HTTP mode it answers
//! `403` with `loopwarden guard: refused: …`. That refusal is the guard's per-user check seen
//! from the outside, so it is recorded as evidence on the front's `local.tcp-any-uid` finding —
//! and a front that served a user it does not admit is reported open.

use crate::targets::Target;
use crate::wire::Answer;
use loopwarden_core::checks::guarded::{front_of, Cover};
use loopwarden_core::checks::{CheckId, Context};
use loopwarden_core::facts::{HostFacts, SocketState};
use loopwarden_core::inventory::inet_service_id;
use loopwarden_core::report::{Attacker, Confidence, Finding, Severity, Status};

/// The first line of the body a guard's HTTP refusal carries.
const GUARD_REFUSAL: &[u8] = b"loopwarden guard: refused";

/// The finding for a target that is a guard front not admitting `uid`, from the answer the
/// probe's first request got; `None` for any other target.
pub fn observed(facts: &HostFacts, target: &Target, first: &Answer, uid: u32) -> Option<Finding> {
    let ctx = Context::new(facts);
    let socket = facts
        .inet_sockets
        .iter()
        .find(|s| s.state == SocketState::Listen && inet_service_id(s) == target.service)?;
    let cover = front_of(&ctx, socket)?;
    if admits(&cover, uid) {
        return None;
    }
    let refused = match first {
        Answer::Http(resp) => resp.status == 403 && resp.body.starts_with(GUARD_REFUSAL),
        Answer::Closed => true,
        Answer::Failed(e) => e.contains("reset"),
        Answer::Other(_) | Answer::Silent => false,
    };
    let seen = format!(
        "probe: connected to {} as uid {uid}, which front {} does not admit: {}",
        target.connect,
        cover.front.name,
        first.describe()
    );
    let (status, title, line) = if refused {
        (
            Status::Blocked,
            "blocked by loopwarden guard: it refused the probe's connection, as it refuses every user it does not admit",
            format!("{seen} — the guard's refusal, observed (the web probes ask the upstream directly)"),
        )
    } else if matches!(first, Answer::Http(_)) {
        (
            Status::Open,
            "loopwarden guard served a user it does not admit",
            format!("{seen} — the front answered a user outside its policy"),
        )
    } else {
        (
            Status::Unknown,
            "whether loopwarden guard refuses users it does not admit is unknown (no clear answer to the probe)",
            seen,
        )
    };
    Some(Finding {
        check: CheckId::LocalTcpAnyUid,
        service: Some(target.service.clone()),
        attacker: Attacker::LocalUser,
        severity: Severity::Low,
        status,
        confidence: Confidence::Probed,
        title: title.into(),
        evidence: vec![line, cover.describe()],
        fix: "keep the front's allow list to the intended users (loopwarden guard --allow-user/--allow-group)".into(),
        subject: None,
    })
}

/// Whether the front admits `uid` by name or by its primary group (as far as the snapshot says).
fn admits(cover: &Cover, uid: u32) -> bool {
    cover.front.allow_users.iter().any(|a| a.id == uid)
        || (uid == 0 && cover.front.allow_groups.iter().any(|g| g.id == 0))
}
