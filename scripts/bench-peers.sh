# `scripts/bench.sh peers [--smoke] [SCENARIO...]`: greway, testpmd io and Open vSwitch with DPDK on the same two
# virtual ports, in the same run. Sourced by scripts/bench.sh (its settings, run_greway and run_testpmd).
#
# Per scenario, first a verification: the capture twice (bench_peers.py verify-input) through greway and through
# OVS into a net_pcap tx_pcap port, each output judged by bench_peers.py check (the packets the scenario's shape
# says, the second pass whole and in order): the comparison is between programs that do the same to each packet.
# Then PAIRS rounds of greway, testpmd io and OVS (scripts/bench-ovs.sh), each with the scenario's vdevs, its
# forwarding thread on core 1, WARMUP seconds, then a SECS-second window; Mpps per CPU second of that thread
# (greway's worker, testpmd's rte-worker-1, OVS's PMD thread pmd-c01), medians. Per scenario the line
#   SCENARIO greway_mpps=A ovs_mpps=B testpmd_mpps=C greway_vs_ovs=A/B cycles_per_pkt_greway=.. cycles_per_pkt_ovs=..
# and the result in BENCH_JSON's "peers" section.
# shellcheck shell=bash

verify_peers() { # scenario: the verification input through greway and through OVS, both outputs checked
    local s=$1 prefix="gw-verify-$RUNID-$s" vin rc=0
    vin=$($PY scripts/bench_peers.py verify-input "$s" "$OUT")
    rm -f "$OUT/$s.greway.verify.pcap"
    sed -E "s/\"PREFIX\"/\"$prefix\"/; s|rx_pcap=[^,\"]*|rx_pcap=$vin|; s|,infinite_rx=1||; \
s|net_null0,no-rx=1|net_pcap1,tx_pcap=$OUT/$s.greway.verify.pcap|" "$OUT/$s.toml" | mem_toml >"$OUT/$s.verify.toml"
    if ! "$GREWAY" --log warn run -c "$OUT/$s.verify.toml" -q --duration-s 2 \
        --stats-json "$OUT/$s.greway.verify.json" >"$OUT/$s.greway.verify.log" 2>&1; then
        echo "greway failed on the verification input: see $OUT/$s.greway.verify.log" >&2
        rc=1
    fi
    cleanup_prefix "$prefix"
    scripts/bench-ovs.sh "$s" 0 verify || rc=1
    $PY scripts/bench_peers.py check "$s" "$OUT" greway "$OUT/$s.greway.verify.pcap" ovs "$OUT/$s.ovs.verify.pcap" ||
        rc=1
    return $rc
}

LINES=()
PARTS=()
STATUS=0
export BENCH_OUT=$OUT SECS WARMUP BENCH_MEMORY
for s in "${SCENARIOS[@]}"; do
    echo "== $s (verification, then $PAIRS x greway/testpmd/OVS, ${WARMUP}s warm-up + ${SECS}s, memory: $BENCH_MEMORY)"
    rm -f "$OUT/$s".check.*.json "$OUT/$s".ovs.[0-9]*.json
    failed=
    BENCH_DEVICES=$($PY scripts/bench.py devices "$s" "$OUT")
    export BENCH_DEVICES
    verify_peers "$s" || failed="$s verification failed: see the lines above and $OUT/$s.*verify*"
    files=("$OUT/$s.check.greway.json" "$OUT/$s.check.ovs.json")
    for ((n = 1; n <= PAIRS; n++)); do
        [[ -z $failed ]] || break
        if ! run_greway "$s" "$n"; then
            failed="$s greway failed: see $OUT/$s.greway.$n.log"
            break
        fi
        run_testpmd "$s" "$n"
        if ! scripts/bench-ovs.sh "$s" "$n"; then
            failed="$s OVS failed: see $OUT/$s.ovs.$n.log"
            break
        fi
        files+=("$OUT/$s.greway.$n.json" "$OUT/$s.testpmd.$n.log" "$OUT/$s.ovs.$n.json")
    done
    if [[ -n $failed ]]; then
        echo "$failed"
        LINES+=("$failed")
        STATUS=1
        continue
    fi
    line=$($PY scripts/bench_peers.py summary "$s" "$OUT/$s.peers.json" "${files[@]}")
    echo "$line" | head -n -1
    LINES+=("$(echo "$line" | tail -n 1)")
    PARTS+=("$OUT/$s.peers.json")
    echo "${LINES[-1]}"
done

[[ ${#PARTS[@]} -gt 0 ]] && BENCH_MACHINE="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPUs" \
    BENCH_COMMAND="scripts/bench.sh peers ${SMOKE:+--smoke }$*" BENCH_DATE="$(date -u +%FT%TZ)" \
    BENCH_OVS_VERSION="$(/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk --version 2>/dev/null | paste -sd ' ')" \
    $PY scripts/bench_peers.py merge "$JSON" "${PARTS[@]}"
if [[ ${#LINES[@]} -gt 1 ]]; then
    echo "== summary (also in $JSON, \"peers\")"
    printf '%s\n' "${LINES[@]}"
fi
