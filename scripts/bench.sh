#!/usr/bin/env bash
# greway vs dpdk-testpmd (io forwarding) on identical virtual ports, one worker core, same run.
#
#   scripts/bench.sh                 every scenario, then the summary lines again
#   scripts/bench.sh SCENARIO        one of: forward-64 encap-64 encap-1k-tunnels encap-64-8k decap-64 encap-csum-64 encap-csum-1500
#                                    encap-seq-2workers encap6-64 decap6-64 encap-over6-64 decap-over6-64
#                                    encap-teb-64 decap-teb-64 (Ethernet over GRE: an l2 port and a teb tunnel in
#                                    a two-member bridge without learning, a pseudowire)
#                                    mirror-64 (encap-64 with an rx mirror into an ERSPAN session: its rate counts
#                                    the packets forwarded, each also mirrored)
#   scripts/bench.sh checksum        `greway bench checksum` (every variant and DPDK's rte_raw_cksum, same timing)
#   scripts/bench.sh routes          route changes per second through the control socket with traffic flowing
#                                    (scripts/bench-routes.sh; ROUTES=N, default 10000 adds then as many deletes)
#   scripts/bench.sh instructions [SCENARIO...]
#                                    instructions per packet (valgrind callgrind, repeatable) of greway and of
#                                    testpmd io on the scenario's ports, split into I/O (PMDs, DPDK libraries) and
#                                    the program's own code; default forward-64 encap-64 decap-64
#   scripts/bench.sh peers [SCENARIO...]
#                                    greway, testpmd io and Open vSwitch with DPDK (Debian openvswitch-switch-dpdk,
#                                    installed when missing; userspace datapath, one PMD thread on greway's worker
#                                    core) on the same vdevs in the same run (scripts/bench-peers.sh, bench-ovs.sh,
#                                    bench_peers.py); encap-64 decap-64 encap6-64 decap6-64 encap-teb-64
#                                    decap-teb-64 encap-over6-64 decap-over6-64 (those bench.py has). First the capture twice through greway and
#                                    through OVS into a pcap, each output checked packet by packet; then PAIRS rounds
#                                    of the three; OVS's rate is its egress port's tx over the PMD thread's CPU time.
#                                    Each OVS run has its own database, run directory (/tmp/greway-bench-ovs.*) and
#                                    namespace (gwb-ovs-PID), all removed afterwards. The line per scenario:
#                                    SCENARIO greway_mpps=A ovs_mpps=B testpmd_mpps=C greway_vs_ovs=A/B
#                                    cycles_per_pkt_greway=.. cycles_per_pkt_ovs=..
#                                    (JSON: the "peers" section of out/bench.json)
#   scripts/bench.sh --smoke [...]   1 s runs, one pair: checks the plumbing and the output format only (also
#                                    `scripts/bench.sh peers --smoke [SCENARIO...]`)
#
# Per scenario: the capture (scripts/bench.py gen) is replayed forever by net_pcap (rx_pcap=FILE,infinite_rx=1) on
# the port the traffic enters; the other port is net_null with no-rx=1 (its tx frees the packets). greway and
# `dpdk-testpmd --forward-mode=io --nb-cores=1` get the same two vdevs, alternating PAIRS times; medians are
# reported. greway's numbers come from the worker's own window after WARMUP seconds (`greway run --warmup-s`);
# testpmd's from "clear port stats all" / "show port stats all" SECS apart after the same warm-up.
# The machine is shared (other builds run on the same 2 cores), so rates are per CPU second the forwarding
# thread actually got: greway's worker CPU time (CLOCK_THREAD_CPUTIME_ID) and testpmd's rte-worker-1 thread
# (/proc schedstat) over the window. Mpps = packets / that CPU time, i.e. the rate with the core to ourselves;
# cycles/packet = CPU time * TSC Hz / packets. Wall-clock rates are kept in the JSON.
# The last line per scenario:
#   SCENARIO greway_mpps=A testpmd_mpps=B ratio=A/B cycles_per_pkt=C p99_us=D
# Results: out/bench.json (merged per scenario), logs and inputs in out/bench/.
#
# Memory: with HUGEPAGES=auto (the default) both programs run on 2 MB hugepages when the machine has them (a
# hugetlbfs mount and at least 512 MB of free hugepages; to reserve them as root:
# `echo 512 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs nodev /dev/hugepages`), else on 4 KB pages
# (`--no-huge -m 512`); HUGEPAGES=1 insists on hugepages, HUGEPAGES=0 never uses them. The mode is printed per
# scenario and recorded in the JSON ("memory"): on 4 KB pages every packet an application touches after rx
# costs TLB misses that an io forwarder never pays, so the two modes' ratios differ (docs/performance.md).
# Environment: SECS (measured seconds per run, default 3), WARMUP (default 1), PAIRS (default 2),
# GREWAY (binary, default target/release/greway, built if missing), BENCH_OUT (inputs and logs, default
# out/bench) and BENCH_JSON (results, default out/bench.json).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3 # has scapy

SECS=${SECS:-3}
WARMUP=${WARMUP:-1}
PAIRS=${PAIRS:-2}
PEERS=
SMOKE=
while [[ ${1:-} == --smoke || ${1:-} == peers ]]; do
    if [[ $1 == peers ]]; then
        PEERS=1
    else
        SMOKE=1
        SECS=1
        WARMUP=0.5
        PAIRS=1
    fi
    shift
done
GREWAY=${GREWAY:-$ROOT/target/release/greway}
OUT=${BENCH_OUT:-$ROOT/out/bench}
JSON=${BENCH_JSON:-$ROOT/out/bench.json}
mkdir -p "$OUT"

if [[ ! -x $GREWAY ]]; then
    cargo build --release --quiet
fi

if [[ ${1:-} == routes ]]; then
    exec env GREWAY="$GREWAY" BENCH_OUT="$OUT" scripts/bench-routes.sh
fi

if [[ ${1:-} == checksum ]]; then
    "$GREWAY" --log warn bench checksum --sizes 64,1500 | tee "$OUT/checksum.txt"
    exit 0
fi

INSTRUCTIONS=
if [[ ${1:-} == instructions ]]; then
    shift
    INSTRUCTIONS=1
    [[ $# -gt 0 ]] || set -- forward-64 encap-64 decap-64
    command -v valgrind >/dev/null || {
        echo "installing valgrind" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
    }
fi

if [[ -n $PEERS ]]; then
    ALL=$($PY scripts/bench_peers.py list)
else
    ALL=$($PY scripts/bench.py list)
fi
if [[ $# -gt 0 ]]; then
    SCENARIOS=("$@")
    for s in "${SCENARIOS[@]}"; do
        [[ " $ALL " == *" $s "* ]] || {
            if [[ -n $PEERS ]]; then more=""; else more=" checksum routes instructions"; fi
            echo "unknown scenario $s (one of: $ALL$more)" >&2
            exit 2
        }
    done
else
    read -r -a SCENARIOS <<<"$ALL"
fi

# Inputs: regenerated when missing or when the generator changed.
if [[ ! -f $OUT/.gen-stamp || scripts/bench.py -nt $OUT/.gen-stamp ]]; then
    $PY scripts/bench.py gen "$OUT" >"$OUT/gen.log"
    touch "$OUT/.gen-stamp"
fi

# EAL memory arguments, identical for greway (its configs' `--no-huge -m 512` is replaced) and testpmd.
HUGEPAGES=${HUGEPAGES:-auto}
hugepages_free_mb() {
    grep -qs hugetlbfs /proc/mounts || {
        echo 0
        return
    }
    awk '/^HugePages_Free:/ {f = $2} /^Hugepagesize:/ {s = $2} END {print int(f * s / 1024)}' /proc/meminfo
}
case $HUGEPAGES in
auto) if (($(hugepages_free_mb) >= 512)); then HUGEPAGES=1; else HUGEPAGES=0; fi ;;
1) (($(hugepages_free_mb) >= 512)) || {
    echo "HUGEPAGES=1 but no hugetlbfs mount with 512 MB of free hugepages" >&2
    exit 2
} ;;
0) ;;
*)
    echo "HUGEPAGES must be auto, 1 or 0" >&2
    exit 2
    ;;
esac
if [[ $HUGEPAGES == 1 ]]; then
    # --huge-unlink: no hugepage files are left behind, even by a killed run.
    MEM_ARGS=(--huge-unlink)
    export BENCH_MEMORY="hugepages-$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)kB"
else
    MEM_ARGS=(--no-huge -m 512)
    export BENCH_MEMORY=4k-pages
fi
mem_toml() { # the config's EAL memory arguments -> MEM_ARGS
    local repl
    repl=$(printf '"%s", ' "${MEM_ARGS[@]}")
    sed "s/\"--no-huge\", \"-m\", \"512\", /$repl/"
}

DUR=$(awk "BEGIN{print $WARMUP + $SECS}")
RUNID=$$

cleanup_prefix() { rm -rf "/var/run/dpdk/$1"; }

run_greway() { # scenario n -> out/bench/SCEN.greway.N.json
    local s=$1 n=$2 prefix="gw-bench-$RUNID-$s-$n"
    sed "s/\"PREFIX\"/\"$prefix\"/" "$OUT/$s.toml" | mem_toml >"$OUT/$s.run.toml"
    "$GREWAY" --log warn run -c "$OUT/$s.run.toml" -q --duration-s "$DUR" --warmup-s "$WARMUP" \
        --stats-json "$OUT/$s.greway.$n.json" >"$OUT/$s.greway.$n.log" 2>&1 || {
        echo "greway failed ($s run $n):" >&2
        tail -20 "$OUT/$s.greway.$n.log" >&2
        cleanup_prefix "$prefix"
        return 1
    }
    cleanup_prefix "$prefix"
}

cpu_ns() { cut -d' ' -f1 "/proc/$1/task/$2/schedstat" 2>/dev/null || echo 0; }
wait_log() { # file pattern: up to 10 s
    local i
    for ((i = 0; i < 2000; i++)); do
        grep -q "$2" "$1" && return 0
        sleep 0.005
    done
}

run_testpmd() { # scenario n -> out/bench/SCEN.testpmd.N.log
    # Interactive testpmd driven through a fifo: start, warm up, then "clear port stats all" and "show port
    # stats all" SECS apart, sampling the forwarding lcore thread's CPU time (/proc/.../schedstat) at both.
    local s=$1 n=$2 prefix="tp-bench-$RUNID-$s-$n" log="$OUT/$s.testpmd.$n.log" fifo="$OUT/testpmd.fifo"
    local devs tp tid c0 c1 t0 t1 i
    mapfile -t devs < <($PY scripts/bench.py devices "$s" "$OUT")
    # As many queues as greway's workers get (testpmd still forwards on its one forwarding lcore, lcore 1:
    # lcore 0 is its main lcore).
    local q
    q=$($PY scripts/bench.py workers "$s")
    rm -f "$fifo"
    mkfifo "$fifo"
    stdbuf -o0 dpdk-testpmd -l 0-1 "${MEM_ARGS[@]}" --no-pci --no-shconf --file-prefix "$prefix" \
        --vdev "${devs[0]}" --vdev "${devs[1]}" -- -i --forward-mode=io --nb-cores=1 --rxq="$q" --txq="$q" --burst=32 \
        --total-num-mbufs=32768 <"$fifo" >"$log" 2>&1 &
    tp=$!
    exec 3>"$fifo"
    for ((i = 0; i < 300; i++)); do
        grep -q "testpmd>" "$log" 2>/dev/null && break
        kill -0 "$tp" 2>/dev/null || break
        sleep 0.1
    done
    echo "start" >&3
    sleep "$WARMUP"
    tid=$(grep -l "^rte-worker-1$" /proc/"$tp"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
    # Sample the lcore's CPU time when testpmd has executed the command (its output is in the log), not when
    # the command was written: on a loaded machine the main thread may run it much later.
    echo "clear port stats all" >&3
    wait_log "$log" "statistics for port 1 cleared"
    c0=$(cpu_ns "$tp" "$tid")
    t0=$(date +%s.%N)
    sleep "$SECS"
    local ca cb
    ca=$(cpu_ns "$tp" "$tid")
    echo "show port stats all" >&3
    wait_log "$log" "NIC statistics for port 1"
    cb=$(cpu_ns "$tp" "$tid")
    c1=$(((ca + cb) / 2))
    t1=$(date +%s.%N)
    echo "stop" >&3
    echo "quit" >&3
    exec 3>&-
    wait "$tp" || true
    rm -f "$fifo"
    echo "bench-window cpu_ns=$((c1 - c0)) wall_s=$(awk "BEGIN{print $t1 - $t0}") show_cpu_ns=$((cb - ca))" >>"$log"
    cleanup_prefix "$prefix"
}

# Instruction counts: both programs once under callgrind (one file per thread; the busiest thread is the
# forwarding one) for CG_SECS seconds; bench.py splits the counts by shared object and divides by the packets
# each forwarded (greway: its stats JSON; testpmd: the forward statistics it prints when it exits).
if [[ -n $INSTRUCTIONS ]]; then
    CG_SECS=${CG_SECS:-4}
    for s in "${SCENARIOS[@]}"; do
        prefix="cg-bench-$RUNID-$s"
        rm -f "$OUT/$s.cg.greway."* "$OUT/$s.cg.testpmd."*
        sed "s/\"PREFIX\"/\"$prefix\"/" "$OUT/$s.toml" | mem_toml >"$OUT/$s.run.toml"
        timeout 600 valgrind --tool=callgrind --dump-instr=yes --separate-threads=yes \
            --callgrind-out-file="$OUT/$s.cg.greway.out" "$GREWAY" --log warn run -c "$OUT/$s.run.toml" -q \
            --duration-s "$CG_SECS" --warmup-s 0 --stats-json "$OUT/$s.cg.greway.json" \
            >"$OUT/$s.cg.greway.log" 2>&1 || {
            echo "greway under callgrind failed ($s): see $OUT/$s.cg.greway.log" >&2
            STATUS=1
        }
        cleanup_prefix "$prefix"
        mapfile -t devs < <($PY scripts/bench.py devices "$s" "$OUT")
        q=$($PY scripts/bench.py workers "$s")
        # -a: forward from the start; SIGINT makes testpmd stop, print its totals and exit (callgrind dumps).
        # The CG_SECS count from when it forwards: under valgrind on a busy machine its start alone can take
        # longer than that (a fixed timeout then interrupted it before its first packet). Its stdin is a fifo held
        # open here: at end of input testpmd exits.
        fifo="$OUT/testpmd-cg.fifo"
        rm -f "$fifo"
        mkfifo "$fifo"
        valgrind --tool=callgrind --dump-instr=yes --separate-threads=yes --fair-sched=yes \
            --callgrind-out-file="$OUT/$s.cg.testpmd.out" dpdk-testpmd -l 0-1 "${MEM_ARGS[@]}" --no-pci \
            --no-shconf --file-prefix "$prefix-tp" --vdev "${devs[0]}" --vdev "${devs[1]}" -- \
            --forward-mode=io --nb-cores=1 --rxq="$q" --txq="$q" --burst=32 --total-num-mbufs=32768 -a \
            >"$OUT/$s.cg.testpmd.log" 2>&1 <"$fifo" &
        tp=$!
        exec 4>"$fifo"
        # valgrind runs one thread at a time; --fair-sched=yes hands the lock round so the main thread gets to
        # the signal while the forwarding thread spins. (Not for greway, whose run ends by itself: sharing the
        # lock slows its worker down, and the fixed per-second work, statistics snapshots, then weighs more per
        # packet.)
        # Forwarding has begun once testpmd's forwarding lcore thread has run (it blocks until launched); its
        # stdout, a file here, is block-buffered, so the log says so only at exit.
        for _ in $(seq 600); do
            kill -0 "$tp" 2>/dev/null || break
            fwd_ns=0
            for t in /proc/"$tp"/task/*; do
                [[ $(cat "$t/comm" 2>/dev/null) == rte-worker-1 ]] && read -r fwd_ns _ <"$t/schedstat"
            done
            ((fwd_ns > 200000000)) && break
            sleep 0.5
        done
        sleep "$CG_SECS"
        kill -INT "$tp" 2>/dev/null || true
        # Bounded: on a loaded machine testpmd under valgrind has stayed in its start-up link check, where the
        # SIGINT never ended it (and an unbounded wait hung the whole run).
        for _ in $(seq 240); do
            kill -0 "$tp" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$tp" 2>/dev/null; then
            echo "testpmd under callgrind still running 120 s after SIGINT ($s): killed; see $OUT/$s.cg.testpmd.log" >&2
            kill -KILL "$tp" 2>/dev/null || true
            STATUS=1
        fi
        wait "$tp" || true
        exec 4>&-
        rm -f "$fifo"
        cleanup_prefix "$prefix-tp"
        $PY scripts/bench.py instructions "$s" "$OUT" || STATUS=1
    done
    exit ${STATUS:-0}
fi

if [[ -n $PEERS ]]; then
    source scripts/bench-peers.sh
    exit $STATUS
fi

LINES=()
PARTS=()
STATUS=0
for s in "${SCENARIOS[@]}"; do
    echo "== $s ($PAIRS x greway/testpmd, ${WARMUP}s warm-up + ${SECS}s, memory: $BENCH_MEMORY)"
    files=()
    failed=
    for ((n = 1; n <= PAIRS; n++)); do
        if ! run_greway "$s" "$n"; then
            failed="$s greway failed: see out/bench/$s.greway.$n.log"
            break
        fi
        run_testpmd "$s" "$n"
        files+=("$OUT/$s.greway.$n.json" "$OUT/$s.testpmd.$n.log")
    done
    if [[ -n $failed ]]; then
        echo "$failed"
        LINES+=("$failed")
        STATUS=1
        continue
    fi
    line=$($PY scripts/bench.py summary "$s" "$OUT/$s.result.json" "${files[@]}")
    echo "$line" | head -n -1
    LINES+=("$(echo "$line" | tail -n 1)")
    PARTS+=("$OUT/$s.result.json")
    echo "${LINES[-1]}"
done

[[ ${#PARTS[@]} -gt 0 ]] && BENCH_MACHINE="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPUs" \
    BENCH_COMMAND="scripts/bench.sh $*" BENCH_DATE="$(date -u +%FT%TZ)" \
    $PY scripts/bench.py merge "$JSON" "${PARTS[@]}"
if [[ ${#LINES[@]} -gt 1 ]]; then
    echo "== summary (also in out/bench.json)"
    printf '%s\n' "${LINES[@]}"
fi
exit $STATUS
