#!/usr/bin/env bash
# Fuzz greway's parsers, the whole per-packet decision (a fresh gateway per input) and sequences of packets, time
# and deferred work on one gateway (gateway_stateful) with libFuzzer (cargo fuzz).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s each, all targets)
# The seed corpus under fuzz/corpus/ comes from the tcpdump project's GRE captures (scripts/fuzz-seeds.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire_parsers gateway gateway_stateful)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked -q
# The machine's stable toolchain runs cargo-fuzz's nightly flags with RUSTC_BOOTSTRAP (see dpdk-notes).
export RUSTC_BOOTSTRAP=1
cd fuzz
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "../target/fuzz-corpus/$t"
    echo "== fuzz $t for ${secs}s"
    # New inputs go to target/fuzz-corpus (first dir); the checked-in seeds stay as they are.
    cargo fuzz run "$t" "../target/fuzz-corpus/$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 \
        -artifact_prefix="artifacts/$t/" 2>&1 | tee "../target/fuzz-$t.log" | grep -E "^#[0-9]+ +DONE|Done [0-9]+ runs|ERROR|panicked" || true
    runs=$(grep -oE "Done [0-9]+ runs" "../target/fuzz-$t.log" | tail -1 | grep -oE "[0-9]+" || echo 0)
    if grep -qE "ERROR: libFuzzer|panicked at|deadly signal" "../target/fuzz-$t.log"; then
        echo "fuzz $t: FINDING (see fuzz/artifacts/$t/ and target/fuzz-$t.log)"
        exit 1
    fi
    echo "fuzz $t: $runs executions, no findings"
done
