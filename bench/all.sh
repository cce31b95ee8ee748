#!/usr/bin/env bash
# Runs every benchmark in turn (root; each works only in namespaces it creates and removes):
#   facts.sh     `loopwarden facts` vs `ss -ltnup` on 20,000 sockets over 200 processes
#   firewall.sh  what analysing a 5,000-rule kube-proxy/Docker ruleset adds to an audit
#   prove.sh     the lab's whole attack matrix for a dozen listeners
#   probe.sh     `audit --probe` against 200 local HTTP listeners
#   guard.sh     `loopwarden guard` vs direct, socat, HAProxy, nginx: throughput, latency, HTTP, idle
#   harden.sh    `harden --apply` (plan, verification, nft transaction, sysctls) for 100 listeners
#   scale.sh     `audit --facts` against `facts` at 1,000, 10,000 and 100,000 sockets
#   netns.sh     `audit --all-netns` over 100 namespaces of 50 sockets vs a loop of `ip netns exec … audit`
# Usage: bench/all.sh   (figures are in the README; this reproduces them)
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in facts firewall prove probe guard harden scale netns; do
    echo "=== bench/$bench.sh"
    "bench/$bench.sh"
    echo
done
