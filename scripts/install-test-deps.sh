#!/usr/bin/env bash
# Installs the system packages the test suite and benchmarks need, on Debian/Ubuntu.
# Daemons (nginx, sshd, tinyproxy, haproxy, caddy, apache2, dockerd, containerd) are installed with a policy-rc.d that forbids starting
# them on the host: the tests start their own copies inside network namespaces.
set -euo pipefail

# The truth tests (tests/truth_*.rs) attack real software: Debian's docker.io (dockerd, run only
# inside a test namespace; busybox-static is its image), ufw (enabled only inside a test
# namespace), and an independent attacker built on python3-scapy; util-linux gives nsenter/unshare
# and setpriv; bsdutils script(1) (a pty for the terminal-escape test, a terminal torn down under a
# pending harden apply); systemd for `systemd-analyze verify` of harden's unit; strace, which
# SIGKILLs a harden apply at a chosen system call (the interrupted-apply test). The benchmarks read
# peak memory with /usr/bin/time (package time). The --all-netns tests: passt for pasta, the
# user-mode network of rootless Podman, and podman itself (conmon, runc), run inside a sandbox.
# The .deb test: dpkg-dev (dpkg-shlibdeps) builds it, lintian checks it.
# containernetworking-plugins: the CNI bridge plugin that makes cni0 and a pod in
# tests/truth_cni_bridge.rs; firewalld for its stock rulesets in the truth tests.
packages=(iproute2 nftables iptables procps python3 socat ncat tinyproxy microsocks nginx-light
          openssh-server openssh-client chromium haproxy caddy apache2 openssl passwd
          docker.io busybox-static ufw python3-scapy util-linux vsftpd binutils man-db dpkg-dev lintian
          prometheus-node-exporter prometheus systemd bsdutils time
          python3-websockets iperf3 wrk libnginx-mod-stream curl python3-venv strace passt podman
          firewalld containernetworking-plugins)

# The fleet test drives contrib/ansible/ with ansible-core from PyPI, in a venv of the
# repository's own (target/ansible-venv), so that nothing is installed system-wide.
install_ansible() {
    local venv
    venv="$(cd "$(dirname "$0")/.." && pwd)/target/ansible-venv"
    [ -x "$venv/bin/ansible-playbook" ] && return 0
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'ansible-core>=2.17,<2.18'
}

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    install_ansible
    exit 0
fi

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
install_ansible
