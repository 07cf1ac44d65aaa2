#!/usr/bin/env bash
# Install what greway needs on Debian 12: DPDK 22.11 (+ testpmd), clang for bindgen, pkg-config, and the tools the
# tests use as independent judges (tshark, scapy, iperf3). Idempotent: installs only what is missing.
set -euo pipefail

PKGS=(libdpdk-dev dpdk-dev libclang-dev clang pkg-config tshark python3-scapy iperf3 iproute2 tcpdump curl
      iputils-ping ethtool jq)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
