#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine: installs the system packages the tests
# need (when root), then runs every unit and end-to-end test. End-to-end tests create their own
# network namespaces; run unprivileged, they say they were skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
    scripts/install-test-deps.sh
else
    echo "test.sh: not root: system packages not installed, namespace tests will be skipped" >&2
fi
cargo test --workspace --no-fail-fast "$@"
