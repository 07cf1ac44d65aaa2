#!/usr/bin/env bash
# The whole test suite: installs what is missing, then format + lint gates, unit/property tests, integration tests
# on real DPDK virtual ports, tshark/scapy cross-checks, end-to-end runs (greway with itself and with Open vSwitch as
# the far end), a fuzz smoke and the dependency audit.
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to change the per-target fuzz smoke, default 15;
#                                   SOAK_MINUTES=M for the soak smoke, default 0.5)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build --release"
cargo build --release
echo "== cargo test"
mkdir -p target
set +e
cargo test --workspace --all-targets 2>&1 | tee target/test.log
rc=${PIPESTATUS[0]}
set -e
passed=$(awk '/^test result:/ { p += $4 } END { print p + 0 }' target/test.log)
failed=$(awk '/^test result:/ { f += $6 } END { print f + 0 }' target/test.log)
[ "$rc" -eq 0 ] || failed=$((failed > 0 ? failed : 1))

extra_pass=0
extra_fail=0
step() { # step NAME COMMAND...: run a suite step, count it as one check
    echo "== $1"
    shift
    if "$@"; then extra_pass=$((extra_pass + 1)); else extra_fail=$((extra_fail + 1)); echo "FAILED: $*"; fi
}

[ -x scripts/e2e.sh ] && step "end-to-end, BGP over a tunnel included (scripts/e2e.sh)" scripts/e2e.sh
[ -x scripts/e2e-ovs.sh ] && step "interoperability with Open vSwitch (scripts/e2e-ovs.sh)" scripts/e2e-ovs.sh
[ -x scripts/e2e-teb.sh ] && step "Ethernet over GRE: greway-greway and greway-OVS gretap tunnels (scripts/e2e-teb.sh)" \
    scripts/e2e-teb.sh
bench_smoke() { # the benchmark harness end to end (1 s runs: plumbing and output format, not performance)
    local dir s scenarios=(forward-64 encap-64 decap-64 encap6-64 decap6-64 decap-over6-64)
    dir=$(mktemp -d)
    BENCH_OUT=$dir/bench BENCH_JSON=$dir/bench.json scripts/bench.sh --smoke "${scenarios[@]}" |
        tee "$dir/log" | grep -E '^[a-z0-9-]+ greway_mpps=' || return 1
    for s in "${scenarios[@]}"; do
        grep -Eq "^$s greway_mpps=[0-9.]+ testpmd_mpps=[0-9.]+ ratio=[0-9.]+ cycles_per_pkt=[0-9.]+ p99_us=[0-9.]+$" \
            "$dir/log" || { echo "bench smoke: no result line for $s" >&2; return 1; }
    done
    python3 - "$dir/bench.json" "${scenarios[@]}" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
for s in sys.argv[2:]:
    r = d["scenarios"][s]
    assert r["greway_mpps"] > 0 and r["testpmd_mpps"] > 0 and r["cycles_per_pkt"] > 0, (s, r)
    assert r["drops_in_median_run"] == {}, (s, r["drops_in_median_run"])
    # These scenarios are the fast paths' shapes: a fast path that declined them would show here.
    assert r["general_path_in_median_run"] == 0, (s, r["general_path_in_median_run"])
PY
    rm -rf "$dir"
}
step "benchmark harness smoke (scripts/bench.sh --smoke)" bench_smoke
bench_smoke_hugepages() { # the harness's hugepage mode: both programs on 2 MB pages, recorded in the JSON
    local dir
    dir=$(mktemp -d)
    HUGEPAGES=1 BENCH_OUT=$dir/bench BENCH_JSON=$dir/bench.json scripts/bench.sh --smoke encap-64 |
        tee "$dir/log" | grep -E '^encap-64 greway_mpps=' || return 1
    python3 - "$dir/bench.json" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
r = d["scenarios"]["encap-64"]
assert r["memory"].startswith("hugepages-") and d["memory"] == r["memory"], r
assert r["greway_mpps"] > 0 and r["testpmd_mpps"] > 0 and r["drops_in_median_run"] == {}, r
PY
    rm -rf "$dir"
}
export -f bench_smoke_hugepages
step "benchmark harness smoke on hugepages (scripts/with-hugepages.sh, HUGEPAGES=1)" \
    scripts/with-hugepages.sh bash -c bench_smoke_hugepages
routes_smoke() { # route changes through the control socket under traffic (plumbing and format, not performance)
    local dir line
    dir=$(mktemp -d)
    line=$(ROUTES=200 BENCH_OUT=$dir/bench scripts/bench.sh routes | tee "$dir/log" | grep -E '^route-changes ') ||
        return 1
    echo "$line"
    [[ $line =~ ^route-changes\ changes_per_s=([0-9]+)\ routes=200\ traffic_mpps=[0-9.]+\ drops=[0-9]+(\(.*\))?$ ]] ||
        { echo "routes smoke: bad line: $line" >&2; return 1; }
    ((BASH_REMATCH[1] > 0)) || { echo "routes smoke: no changes per second" >&2; return 1; }
    rm -rf "$dir"
}
step "route changes under traffic smoke (scripts/bench.sh routes)" routes_smoke
peers_smoke() { # greway, testpmd io and Open vSwitch with DPDK on the same ports (plumbing and format, not performance)
    local dir line
    dir=$(mktemp -d)
    line=$(BENCH_OUT=$dir/bench BENCH_JSON=$dir/bench.json scripts/bench.sh peers --smoke encap-64 | tee "$dir/log" |
        grep -E '^encap-64 greway_mpps=') || { tail -n 20 "$dir/log"; return 1; }
    echo "$line"
    [[ $line =~ ^encap-64\ greway_mpps=[0-9.]+\ ovs_mpps=[0-9.]+\ testpmd_mpps=[0-9.]+\ greway_vs_ovs=[0-9.]+\ cycles_per_pkt_greway=[0-9.]+\ cycles_per_pkt_ovs=[0-9.]+$ ]] ||
        { echo "peers smoke: bad line: $line" >&2; return 1; }
    python3 - "$dir/bench.json" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
r = d["peers"]["scenarios"]["encap-64"]
for k in ("greway_forwarded", "ovs_forwarded", "testpmd_forwarded"):
    assert r[k] and min(r[k]) > 0, (k, r[k])
# Both outputs of the verification input were the packets the scenario's shape says.
assert r["verified"]["greway"]["ok"] and r["verified"]["ovs"]["ok"], r["verified"]
assert r["greway_drops_in_median_run"] == {}, r["greway_drops_in_median_run"]
assert d["peers"]["ovs_version"].startswith("ovs-vswitchd"), d["peers"]
PY
    # OVS is gone: no namespace, run directory, DPDK runtime directory or process of its runs.
    if ip netns list | grep -q '^gwb-ovs-' || compgen -G "/tmp/greway-bench-ovs.*" >/dev/null ||
        compgen -G "/var/run/dpdk/gwb-ovs-*" >/dev/null || pgrep -f 'greway-bench-ovs\.' >/dev/null; then
        echo "peers smoke: OVS left something behind" >&2
        return 1
    fi
    rm -rf "$dir"
}
step "greway vs Open vSwitch with DPDK smoke (scripts/bench.sh peers --smoke encap-64)" peers_smoke
step "dpdk-dumpcap attaches and captures (scripts/dumpcap.sh)" scripts/dumpcap.sh
step "Debian package: build, dpkg -i, --version, man, systemd-analyze verify, promtool, dpkg -r (scripts/package-test.sh)" \
    scripts/package-test.sh
step "fuzz smoke (scripts/fuzz.sh ${FUZZ_SECONDS:-15})" scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
step "soak smoke (scripts/soak.sh ${SOAK_MINUTES:-0.5})" scripts/soak.sh "${SOAK_MINUTES:-0.5}"
audit() {
    command -v cargo-audit >/dev/null 2>&1 || cargo install cargo-audit --locked -q
    cargo audit --db ../shared/advisory-db --no-fetch
}
step "cargo audit (offline RustSec snapshot in ../shared/advisory-db)" audit

echo "== summary"
echo "cargo test: $passed passed, $failed failed; suite steps: $extra_pass passed, $extra_fail failed"
echo "$((passed + extra_pass)) passed, $((failed + extra_fail)) failed"
[ "$failed" -eq 0 ] && [ "$extra_fail" -eq 0 ]
