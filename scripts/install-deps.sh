#!/usr/bin/env bash
# Install what greway needs on Debian 12: DPDK 22.11 (+ testpmd), clang for bindgen, pkg-config, and the tools the
# tests use as independent judges (tshark, scapy, iperf3) and as live peers (Open vSwitch with DPDK, for
# scripts/e2e-ovs.sh and scripts/e2e-teb.sh; FRR, for the BGP/BFD routers of scripts/e2e-bgp.sh), and the packaging checks' tools.
# Idempotent: installs only what is
# missing. Installing never starts a service (OVS's own ovsdb-server/ovs-vswitchd, FRR's, DPDK's): a policy-rc.d that refuses every start is in place during apt-get install, and
# the tests start their daemons themselves, in their own namespaces and run directories.
set -euo pipefail

# The Debian package's build and checks (scripts/package.sh, scripts/package-test.sh): dpkg-dev (dpkg-shlibdeps
# finds the DPDK runtime dependencies), man-db (`man greway`), systemd (`systemd-analyze verify`; nothing is
# started), prometheus (promtool checks and unit-tests the alerting rules); gdb prints the backtrace of a crash a
# test catches (scripts/dumpcap.sh).
PKGS=(libdpdk-dev dpdk-dev libclang-dev clang pkg-config tshark python3-scapy iperf3 iproute2 tcpdump curl
      iputils-ping ethtool jq openvswitch-switch-dpdk frr dpkg-dev man-db systemd prometheus gdb)

# `scripts/install-deps.sh PACKAGE...`: only those (scripts/bench-ovs.sh installs Open vSwitch this way).
if (($#)); then PKGS=("$@"); fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # No service may start during the install (policy-rc.d exit 101 = "action forbidden"); an existing policy-rc.d
    # (container images ship one) is left as it is.
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
        "${missing[@]}" >/dev/null || rc=$?
    [ -z "$own_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || { echo "install-deps: apt-get install failed ($rc)" >&2; exit "$rc"; }
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "install-deps: no Rust toolchain: install one with rustup (https://rustup.rs) and re-run" >&2
        exit 1
    fi
fi
pkg-config --atleast-version=22.11 libdpdk || { echo "install-deps: DPDK >= 22.11 not found after install" >&2; exit 1; }
echo "install-deps: ok (DPDK $(pkg-config --modversion libdpdk), $(cargo --version))"
