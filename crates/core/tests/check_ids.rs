//! Every finding a check emits carries that check's own id from the catalogue: run each static
//! check alone on the real captured snapshots and compare. (That every id is in the catalogue, is
//! spelled as design.md says and survives JSON is tested next to `CheckId`.)

use loopwarden_core::checks::{Context, ALL};
use loopwarden_core::HostFacts;

#[test]
fn each_check_emits_only_its_own_id() {
    let snapshots = [
        include_str!("fixtures/facts/namespace-every-listener-kind.json"),
        include_str!("fixtures/relays/namespace-relays.json"),
    ];
    let mut emitted = 0;
    for text in snapshots {
        let facts = HostFacts::from_json(text).expect("fixture parses");
        let ctx = Context::new(&facts);
        for check in ALL {
            for finding in check.evaluate.map(|evaluate| evaluate(&ctx)).unwrap_or_default() {
                assert_eq!(finding.check, check.spec.id, "{}", finding.title);
                emitted += 1;
            }
        }
    }
    assert!(emitted > 0, "the snapshots gave no finding at all");
}
