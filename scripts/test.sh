#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine: installs the system packages the tests
# need (when root), then runs every unit and end-to-end test. End-to-end tests create their own
# network namespaces; run unprivileged, they say they were skipped and why — unless
# LOOPWARDEN_E2E=1 (a full run, as .ci/run does), where a test that cannot run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
    scripts/install-test-deps.sh
else
    if [ "${LOOPWARDEN_E2E:-}" = 1 ]; then
        echo "test.sh: LOOPWARDEN_E2E=1 needs root: the namespace tests would fail" >&2
    else
        echo "test.sh: not root: system packages not installed, namespace tests will be skipped" >&2
    fi
fi
cargo test --workspace --no-fail-fast "$@"
