#!/usr/bin/env bash
# The whole test suite: installs what is missing, then format + lint gates, unit/property tests, integration tests
# on real DPDK virtual ports, tshark/scapy cross-checks. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "== cargo build --release"
cargo build --release
echo "== cargo test"
cargo test --all-targets 2>&1 | tee target/test.log
echo "== cargo test (summary)"
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' target/test.log
