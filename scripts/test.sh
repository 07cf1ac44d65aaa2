#!/usr/bin/env bash
# The whole test suite: installs what is missing, then format + lint gates, unit/property tests, integration tests
# on real DPDK virtual ports, tshark/scapy cross-checks, then scripts/e2e.sh (two gateways with real traffic, as
# root). Usage: scripts/test.sh
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
awk '/^test result:/ { p += $4; f += $6 } END { printf "cargo: %d passed, %d failed\n", p, f }' target/test.log

# End to end with real traffic: two gateways, hosts in network namespaces, ping, iperf3, tshark (needs root).
: >target/e2e.log
e2e_rc=0
if [ "$(id -u)" = 0 ]; then
    echo "== scripts/e2e.sh"
    scripts/e2e.sh 2>&1 | tee target/e2e.log
    e2e_rc=${PIPESTATUS[0]}
else
    echo "== scripts/e2e.sh: skipped (needs root for network namespaces)"
fi
echo "== summary (cargo test + e2e)"
awk '/^test result:/ { p += $4; f += $6 }
     /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
     END { printf "%d passed, %d failed\n", p, f }' target/test.log target/e2e.log
exit "$e2e_rc"
