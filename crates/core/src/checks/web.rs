//! Browser-borne checks (`web.*`): decided by `audit --probe`, which asks each local HTTP(S)
//! service what a web page in a browser on this host can make it do.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::report::{Attacker, Finding, Status};

/// `web.dns-rebinding`.
pub const DNS_REBINDING: Check = Check {
    spec: CheckSpec {
        id: CheckId::WebDnsRebinding,
        attackers: &[Attacker::Browser],
        stage: Stage::Probe,
        summary: "HTTP service answers a request whose Host is a foreign name",
        why: "a page whose name re-resolves to 127.0.0.1 is same-origin with the service and reads \
              everything it answers (Ollama CVE-2024-28224, Transmission CVE-2018-5702, Geth, Ray)",
    },
    evaluate: None,
};

/// `web.cors-permissive`.
pub const CORS_PERMISSIVE: Check = Check {
    spec: CheckSpec {
        id: CheckId::WebCorsPermissive,
        attackers: &[Attacker::Browser],
        stage: Stage::Probe,
        summary: "CORS grants a foreign origin (reflection, * on data, credentials)",
        why: "any web page the user opens can read the local service's answers with fetch()",
    },
    evaluate: None,
};

/// `web.private-network-access`.
pub const PRIVATE_NETWORK_ACCESS: Check = Check {
    spec: CheckSpec {
        id: CheckId::WebPrivateNetworkAccess,
        attackers: &[Attacker::Browser],
        stage: Stage::Probe,
        summary: "Private Network Access preflight answered with Access-Control-Allow-Private-Network: true",
        why: "the service opts in to calls from public web sites, defeating the browser's \
              private-network protection where it is enforced",
    },
    evaluate: None,
};

/// `web.websocket-origin`.
pub const WEBSOCKET_ORIGIN: Check = Check {
    spec: CheckSpec {
        id: CheckId::WebWebsocketOrigin,
        attackers: &[Attacker::Browser],
        stage: Stage::Probe,
        summary: "WebSocket upgrade accepted from a foreign Origin",
        why: "WebSockets are not bound by CORS: any page opens one and drives the service \
              (webpack-dev-server CVE-2018-14732, MCP Inspector CVE-2025-49596, Logitech Options)",
    },
    evaluate: None,
};

/// `web.zero-address`.
pub const ZERO_ADDRESS: Check = Check {
    spec: CheckSpec {
        id: CheckId::WebZeroAddress,
        attackers: &[Attacker::Browser],
        stage: Stage::Probe,
        summary: "HTTP service on 0.0.0.0 reachable as http://0.0.0.0:PORT",
        why: "browsers that treat 0.0.0.0 as a public address let any page reach it without \
              private-network checks (\"0.0.0.0 Day\", 2024)",
    },
    evaluate: None,
};

/// Credits `loopwarden guard`: a `web.*` finding (from `--probe`, which runs as root and so
/// reaches the upstream itself) on a service that only HTTP-mode guard fronts can reach — the
/// firewall evaluator says no other uid connects, and no TCP-mode front forwards to it — is
/// `blocked by loopwarden guard`: a page in a user's browser meets the guard's Host and Origin
/// checks first. A guarded service that is not credited says why.
pub fn credit_guards(ctx: &Context, findings: Vec<Finding>) -> Vec<Finding> {
    if ctx.facts.guards.is_empty() {
        return findings;
    }
    findings
        .into_iter()
        .map(|mut f| {
            let web = [
                DNS_REBINDING,
                CORS_PERMISSIVE,
                PRIVATE_NETWORK_ACCESS,
                WEBSOCKET_ORIGIN,
                ZERO_ADDRESS,
            ];
            let verdict = (web.iter().any(|c| c.spec.id == f.check) && f.status != Status::Blocked)
                .then(|| {
                    f.service
                        .as_deref()
                        .and_then(|id| super::guarded::http_guarded(ctx, id))
                })
                .flatten();
            match verdict {
                Some(Ok(evidence)) => {
                    f.status = Status::Blocked;
                    f.title = format!("blocked by loopwarden guard: {}", f.title).into();
                    f.evidence.extend(evidence);
                }
                Some(Err(why)) => f.evidence.push(why),
                None => {}
            }
            f
        })
        .collect()
}
