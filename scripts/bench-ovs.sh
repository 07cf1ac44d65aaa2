#!/usr/bin/env bash
# One Open vSwitch with DPDK run on a bench scenario's ports, for `scripts/bench.sh peers`.
#
#   scripts/bench-ovs.sh SCENARIO N           measure: OUT/SCENARIO.ovs.N.json
#   scripts/bench-ovs.sh SCENARIO N verify    the verification input through OVS into OUT/SCENARIO.ovs.verify.pcap
#
# Each run starts its own ovsdb-server and ovs-vswitchd (Debian's openvswitch-switch-dpdk, userspace datapath) from a
# private run directory under /tmp, ovs-vswitchd inside a network namespace of its own (its bridges' TAP devices live
# and die there), and stops and removes all of it on exit, also on failure or interruption: processes, database,
# run directory, namespace, DPDK runtime directory and hugepage files.
#
# DPDK: the main thread on core 0 (dpdk-lcore-mask=0x1), one PMD thread on core 1 (pmd-cpu-mask=0x2), where greway's
# worker and testpmd's forwarding lcore run; the memory arguments of bench.sh's mode (BENCH_MEMORY): 4 KB pages
# (--no-huge --legacy-mem -m 1024: OVS's default mempool of a 1500-byte MTU does not fit in 512 MB), or hugepages.
# The ports are the scenario's two vdevs, as greway and testpmd get them (scripts/bench.py devices), given to OVS
# with options:dpdk-devargs.
#
# The OVS setup per scenario shape (GRE key 42, local 192.0.2.1, remote 198.51.100.7, as greway's bench configs):
#   br-int  in0 (the inside vdev, ofport 1), gre0 (type=gre, key 42, ofport 2; packet_type=legacy_l3 for the IP
#           scenarios, OVS's default Ethernet-in-GRE for *-teb-*; *-over6-*: remote 2001:db8:ffff::7, as type=gre
#           takes IPv6 too, where OVS's ip6gre carries Ethernet only; local 2001:db8:ffff::1 on br-phy's TAP; the
#           peer on the link: an OVS route 2001:db8:ffff::7/128 on br-phy and a static tunnel neighbour
#           2001:db8:ffff::7 at 02:00:00:00:00:fe)
#   br-phy  up0 (the outside vdev, ofport 1); its TAP (LOCAL) has 192.0.2.1/24 and MAC 02:00:00:00:00:02, greway's
#           outside address; OVS's own route (ovs/route/add) 198.51.100.7/32 via 192.0.2.254 and a static tunnel
#           neighbour (tnl/neigh/set) 192.0.2.254 at 02:00:00:00:00:fe: no ARP. Flows LOCAL -> up0 (over6: GRE only),
#           up0 -> LOCAL
#           (the packets for 192.0.2.1 terminate in gre0: tnl_pop).
#   encap   in_port=in0, dl_dst=greway's inside MAC, ip(v6), destination in the tunnel's routes ->
#           dec_ttl, output:gre0 (the router's work greway does: TTL, then the tunnel; teb: output:gre0 as is)
#   decap   in_port=gre0, ip(v6), destination on the inside subnet -> dec_ttl, set the host's and greway's inside
#           MACs, output:in0 (teb: output:in0 as is)
# Every other packet: priority 0, drop. in0 or up0, whichever receives, is added last, so the first packets find the
# flows in place (their upcalls install the datapath flow).
#
# measure: after WARMUP seconds, a window of SECS seconds: the egress port's tx packets (ovs-ofctl dump-ports) and
# the PMD thread's CPU time (/proc/PID/task/TID/schedstat) at both ends, dpif-netdev/pmd-stats-clear at the start and
# pmd-stats-show at the end (packets received, EMC/SMC/megaflow hits, upcalls: exact for the window), the datapath
# flows (dpctl/dump-flows), the egress port's counters, and OVS's datapath drop counters (coverage/show) since it
# started: these include the start's failed upcalls (the packets that arrive before the bridge has taken the new
# port), and OVS folds its threads' counts into them about once a second, so they cannot be cut to the window.
# verify: the ingress port is net_pcap on a veth in OVS's namespace (rx_iface), the egress port net_pcap into a
# pcap file (tx_pcap); once OVS has taken the ports, the verification input (the capture twice: bench_peers.py
# verify-input) is sent into the veth, until the egress port's count stays the same for a second; bench_peers.py
# check judges the pcap.
# Environment: BENCH_OUT, SECS, WARMUP, BENCH_MEMORY (4k-pages or hugepages-*), as bench.sh sets them;
# BENCH_DEVICES: the two vdevs, one a line (default: scripts/bench.py devices SCENARIO BENCH_OUT).
set -Eeuo pipefail # -E: the ERR trap also in functions (run)
cd "$(dirname "$0")/.."
# stop_pid, wait_for, ovs_use, ovs_start (its say/pass/fail/check are not used: fail is redefined below)
. scripts/e2e-lib.sh
PY=/usr/bin/python3
S=$1
N=$2
MODE=${3:-measure}
OUT=${BENCH_OUT:-$PWD/out/bench}
SECS=${SECS:-3}
WARMUP=${WARMUP:-1}
MEMORY=${BENCH_MEMORY:-4k-pages}
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
PER_PORT_MEMORY=${OVS_PER_PORT_MEMORY:-true}

GW_INSIDE_MAC=02:00:00:00:00:01
GW_OUTSIDE_MAC=02:00:00:00:00:02
HOST_MAC=02:00:00:00:00:0a
UPSTREAM_MAC=02:00:00:00:00:fe

if [[ ! -x $OVS_VSWITCHD ]] || ! command -v ovsdb-server >/dev/null; then
    echo "bench-ovs: installing openvswitch-switch-dpdk (scripts/install-deps.sh)" >&2
    scripts/install-deps.sh openvswitch-switch-dpdk >&2
fi

case $S in
encap*) DIR=encap ;;
decap*) DIR=decap ;;
*)
    echo "bench-ovs: no OVS setup for scenario $S" >&2
    exit 2
    ;;
esac
OVER6=false
case $S in
*-teb-*) SHAPE=teb ;;
*-over6-*) SHAPE=ip4 OVER6=true ;;
*6-*) SHAPE=ip6 ;;
*) SHAPE=ip4 ;;
esac

RUNID=$$
NS=gwb-ovs-$RUNID
PREFIX=gwb-ovs-$RUNID
D=$(mktemp -d /tmp/greway-bench-ovs.XXXXXX)
ovs_use "$D" # OVS_RUNDIR... and DB
if [[ $MODE == verify ]]; then TAG=verify; else TAG=$N; fi
LOG=$OUT/$S.ovs.$TAG.log
: >"$LOG"

vsctl() { timeout 130 ovs-vsctl --db="$DB" --timeout=120 "$@"; }
ofctl() { timeout 20 ovs-ofctl "$@"; }
appctl() { timeout 20 ovs-appctl -t "$D/vswitchd.ctl" "$@"; }
cleanup() {
    set +e
    local f
    for f in vswitchd db; do
        [[ -f $D/$f.pid ]] && stop_pid "$(cat "$D/$f.pid")"
    done
    [[ -f $D/ovs-vswitchd.log ]] && cp "$D/ovs-vswitchd.log" "$OUT/$S.ovs.$TAG.vswitchd.log"
    ip netns del "$NS" 2>/dev/null
    rm -rf "/var/run/dpdk/$PREFIX" "$D"
    # Hugepage files (none with --in-memory, but an interrupted start could leave them).
    awk '$3 == "hugetlbfs" {print $2}' /proc/mounts | while read -r m; do rm -f "$m/$PREFIX"map_*; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "bench-ovs: failed at line $LINENO (setup log: $LOG)" >&2; tail -n 5 "$LOG" >&2' ERR

run() { # a setup step: the command and its output into the setup log; set -e ends the run on failure
    echo "+ $(date +%T.%3N) $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1
}
fail() {
    echo "bench-ovs: $*" >&2
    echo "  OVS log: $OUT/$S.ovs.$TAG.vswitchd.log; setup log: $LOG" >&2
    tail -n 15 "$D/ovs-vswitchd.log" 2>/dev/null | sed 's/^/    /' >&2
    exit 1
}

# The scenario's vdevs, as greway and testpmd get them; verify: one pass of the capture, the egress into a pcap.
if [[ -n ${BENCH_DEVICES:-} ]]; then
    mapfile -t DEVS <<<"$BENCH_DEVICES"
else
    mapfile -t DEVS < <($PY scripts/bench.py devices "$S" "$OUT")
fi
IN_DEV=${DEVS[0]}
UP_DEV=${DEVS[1]}
VERIFY_PCAP=$OUT/$S.ovs.verify.pcap
if [[ $MODE == verify ]]; then
    # The ingress port reads a veth in OVS's namespace (net_pcap rx_iface) instead of the capture: the verification
    # input is sent into the veth once OVS has taken the port. (Replayed from a file, the first packets arrive before
    # the bridge has associated the new port with its datapath port, and fail their upcall: a race, which a short
    # input can lose entirely.) The egress port writes a pcap.
    rm -f "$VERIFY_PCAP"
    VERIFY_IN=$OUT/$S.verify-in.pcap
    [[ -f $VERIFY_IN ]] || $PY scripts/bench_peers.py verify-input "$S" "$OUT" >/dev/null
    IN_DEV=$(sed -E "s|rx_pcap=[^,]*|rx_iface=vin|; s|,infinite_rx=1||" <<<"$IN_DEV")
    UP_DEV=$(sed -E "s|rx_pcap=[^,]*|rx_iface=vin|; s|,infinite_rx=1||" <<<"$UP_DEV")
    if [[ $DIR == encap ]]; then UP_DEV="net_pcap1,tx_pcap=$VERIFY_PCAP"; else IN_DEV="net_pcap1,tx_pcap=$VERIFY_PCAP"; fi
fi

if [[ $MEMORY == 4k-pages ]]; then
    # --legacy-mem: with --no-huge OVS 3.1 would add --in-memory, which DPDK refuses with --no-huge.
    EAL_MEM="--no-huge --legacy-mem -m 1024"
else
    EAL_MEM="" # OVS adds --in-memory: no hugepage files
fi

run ip netns add "$NS"
run ip netns exec "$NS" ip link set lo up
# (IPv6 stays on for an IPv6 transport: the tunnel's local address is on br-phy's TAP.)
$OVER6 || run ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
if [[ $MODE == verify ]]; then
    run ip netns exec "$NS" ip link add vin type veth peer name vinj
    run ip netns exec "$NS" ip link set vin up
    run ip netns exec "$NS" ip link set vinj up
fi
run ovs_start "$D" "$NS" other_config:dpdk-extra="$EAL_MEM --no-pci --file-prefix $PREFIX" \
    other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 other_config:per-port-memory="$PER_PORT_MEMORY" ||
    fail "ovs-vswitchd did not start with DPDK initialized"

if $OVER6; then PEER=2001:db8:ffff::7; else PEER=198.51.100.7; fi
GRE_OPTS=(options:remote_ip=$PEER options:key=42)
[[ $SHAPE == teb ]] || GRE_OPTS+=(options:packet_type=legacy_l3)
case $SHAPE in
ip4) MATCH_ENCAP="ip,nw_dst=198.18.0.0/15" MATCH_DECAP="ip,nw_dst=10.0.0.0/24" ;;
ip6) MATCH_ENCAP="ipv6,ipv6_dst=2001:db8:2::/48" MATCH_DECAP="ipv6,ipv6_dst=2001:db8:1::/64" ;;
teb) MATCH_ENCAP="" MATCH_DECAP="" ;;
esac
if [[ $SHAPE == teb ]]; then
    FLOW_ENCAP="priority=100,in_port=1,actions=output:2"
    FLOW_DECAP="priority=100,in_port=2,actions=output:1"
else
    FLOW_ENCAP="priority=100,in_port=1,dl_dst=$GW_INSIDE_MAC,$MATCH_ENCAP,actions=dec_ttl,output:2"
    FLOW_DECAP="priority=100,in_port=2,$MATCH_DECAP,actions=dec_ttl,mod_dl_src:$GW_INSIDE_MAC,mod_dl_dst:$HOST_MAC,output:1"
fi

run vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev fail-mode=secure \
    other-config:hwaddr=$GW_OUTSIDE_MAC
run vsctl add-br br-int -- set bridge br-int datapath_type=netdev fail-mode=secure \
    -- add-port br-int gre0 -- set interface gre0 type=gre ofport_request=2 "${GRE_OPTS[@]}"
run wait_for 10 ip netns exec "$NS" ip link show br-phy
run ip netns exec "$NS" ip addr add 192.0.2.1/24 dev br-phy
$OVER6 && run ip netns exec "$NS" ip addr add 2001:db8:ffff::1/64 dev br-phy nodad
run ip netns exec "$NS" ip link set br-phy up
if $OVER6; then
    # The peer is on the link, as in greway's config (its neighbour entry).
    run appctl ovs/route/add 2001:db8:ffff::7/128 br-phy
    run appctl tnl/neigh/set br-phy 2001:db8:ffff::7 $UPSTREAM_MAC
else
    run appctl ovs/route/add 198.51.100.7/32 br-phy 192.0.2.254
    run appctl tnl/neigh/set br-phy 192.0.2.254 $UPSTREAM_MAC
fi
# (Over IPv6 only GRE leaves: the TAP's own IPv6 packets, neighbour solicitations and MLD reports, stay.)
if $OVER6; then OUT_MATCH="ipv6,nw_proto=47,"; else OUT_MATCH=""; fi
printf '%s\n' "priority=100,in_port=LOCAL,${OUT_MATCH}actions=output:1" "priority=100,in_port=1,actions=LOCAL" \
    "priority=0,actions=drop" >"$D/br-phy.flows"
printf '%s\n' "$FLOW_ENCAP" "$FLOW_DECAP" "priority=0,actions=drop" >"$D/br-int.flows"
cat "$D/br-phy.flows" "$D/br-int.flows" >>"$LOG"
run ofctl replace-flows br-phy "$D/br-phy.flows"
run ofctl replace-flows br-int "$D/br-int.flows"
# The egress port first, the receiving one last.
if [[ $DIR == encap ]]; then
    run vsctl add-port br-phy up0 -- set interface up0 type=dpdk ofport_request=1 options:dpdk-devargs="$UP_DEV"
    run vsctl add-port br-int in0 -- set interface in0 type=dpdk ofport_request=1 options:dpdk-devargs="$IN_DEV"
else
    run vsctl add-port br-int in0 -- set interface in0 type=dpdk ofport_request=1 options:dpdk-devargs="$IN_DEV"
    run vsctl add-port br-phy up0 -- set interface up0 type=dpdk ofport_request=1 options:dpdk-devargs="$UP_DEV"
fi

ports_ok() {
    local i
    for i in in0 up0 gre0; do
        [[ $(vsctl get interface "$i" ofport) -gt 0 ]] 2>/dev/null || return 1
        [[ $(vsctl get interface "$i" error 2>/dev/null) == "[]" ]] || return 1
    done
}
wait_for 20 ports_ok || {
    for i in in0 up0 gre0; do
        echo "$i: ofport=$(vsctl get interface $i ofport) error=$(vsctl get interface $i error 2>&1)" >>"$LOG"
    done
    fail "ports not up (see the setup log)"
}
if [[ $DIR == encap ]]; then EG_BR=br-phy; else EG_BR=br-int; fi
tx_pkts() { ofctl dump-ports "$EG_BR" 1 | sed -n 's/.*tx pkts=\([0-9]*\).*/\1/p' | head -n 1; }

if [[ $MODE == verify ]]; then
    run ip netns exec "$NS" $PY scripts/bench_peers.py inject "$VERIFY_IN" vinj
    # Until the egress port's count stays the same for a second, 30 s at most.
    last=-1
    got=0
    for ((i = 0; i < 30; i++)); do
        sleep 1
        got=$(tx_pkts)
        [[ ${got:-0} -gt 0 && $got == "$last" ]] && break
        last=$got
    done
    {
        echo "verify: egress tx $got"
        appctl dpif-netdev/pmd-stats-show
        appctl dpctl/dump-flows -m
    } >>"$LOG" 2>&1
    exit 0
fi

sleep "$WARMUP"
PID=$(cat "$D/vswitchd.pid")
TID=$(grep -l '^pmd-c01/' /proc/"$PID"/task/*/comm 2>/dev/null | head -n 1 | cut -d/ -f5)
[[ -n $TID ]] || fail "no PMD thread on core 1 (pmd-c01)"
cpu_ns() { cut -d' ' -f1 "/proc/$PID/task/$TID/schedstat"; }
drops() { appctl coverage/show | awk '$1 ~ /^datapath_drop_/ {print $1 "=" $NF}' | sort | tr '\n' ' '; }

appctl dpif-netdev/pmd-stats-clear >/dev/null
c0a=$(cpu_ns)
tx0=$(tx_pkts)
c0b=$(cpu_ns)
t0=$(date +%s.%N)
sleep "$SECS"
c1a=$(cpu_ns)
tx1=$(tx_pkts)
c1b=$(cpu_ns)
t1=$(date +%s.%N)
appctl dpif-netdev/pmd-stats-show >"$OUT/$S.ovs.$N.pmd-stats.txt"
drops=$(drops)
appctl dpctl/dump-flows -m >"$OUT/$S.ovs.$N.flows.txt"
ofctl dump-ports "$EG_BR" 1 >"$OUT/$S.ovs.$N.egress.txt"
$PY scripts/bench_peers.py ovs-window "$OUT/$S.ovs.$N.json" \
    tx="$((tx1 - tx0))" cpu_ns="$(((c1a + c1b) / 2 - (c0a + c0b) / 2))" wall_s="$(awk "BEGIN{print $t1 - $t0}")" \
    pmd_stats="$OUT/$S.ovs.$N.pmd-stats.txt" flows="$OUT/$S.ovs.$N.flows.txt" \
    egress="$OUT/$S.ovs.$N.egress.txt" drops="$drops" memory="$MEMORY" eal="$EAL_MEM --no-pci --file-prefix $PREFIX"
