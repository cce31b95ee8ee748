#!/usr/bin/env bash
# Installs the system packages the test suite and benchmarks need, on Debian/Ubuntu.
# Daemons (nginx, sshd, tinyproxy, haproxy, caddy, apache2, dockerd, containerd) are installed with a policy-rc.d that forbids starting
# them on the host: the tests start their own copies inside network namespaces.
set -euo pipefail

# The truth tests (tests/truth_*.rs) attack real software: Debian's docker.io (dockerd, run only
# inside a test namespace; busybox-static is its image), ufw (enabled only inside a test
# namespace), and an independent attacker built on python3-scapy; util-linux gives nsenter/unshare.
# harden's tests: systemd for `systemd-analyze verify` of its unit, util-linux for setpriv and
# bsdutils for script (a terminal torn down under a pending apply). The --all-netns tests: passt
# for pasta, the user-mode network of rootless Podman, and podman itself (conmon, runc), which
# they run inside a sandbox.
packages=(iproute2 nftables iptables procps python3 socat ncat tinyproxy microsocks nginx-light
          openssh-server openssh-client chromium haproxy caddy apache2 openssl passwd
          docker.io busybox-static ufw python3-scapy util-linux vsftpd binutils man-db
          prometheus-node-exporter prometheus systemd bsdutils
          python3-websockets iperf3 wrk libnginx-mod-stream curl passt podman)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing packages (${missing[*]}) and not root: install them or run as root" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ "$had_policy" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
