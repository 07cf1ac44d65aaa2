#!/usr/bin/env bash
# Ethernet over GRE (TEB, "gretap") end to end: three hosts on one /24, 10.9.0.0/24, at three sites joined by
# TEB tunnels: greway A bridges host 1's LAN with (a) a TEB tunnel to greway B (key, checksums, sequence numbers),
# behind which is host 2, and (b) a TEB tunnel to Open vSwitch with DPDK (its GRE port is TEB by default), behind
# which is host 3. ARP, ping and iperf3 both ways across each tunnel; tshark on the transport veths decodes the GRE
# packets as protocol 0x6558 carrying the hosts' Ethernet frames.
#
#   netns tebh1 (host 1)           netns tebh2 (host 2)             netns tebh3 (host 3)
#   eth0 10.9.0.1/24               eth0 10.9.0.2/24                 eth0 10.9.0.3/24
#      | veth                         | veth                           | veth
#   teb-a-lan (l2)                 teb-b-lan (l2)                   teb-o-in (dpdk)
#   +----------------------+       +--------------------+           +------------------------------------+
#   | greway A  (tebgwA)   |       | greway B (tebgwB)  |           | ovs-vswitchd (DPDK)  (tebovs)      |
#   | bridge site: lan,    |       | bridge site: lan,  |           | br-int (NORMAL): in0, gre0 (gre,   |
#   |   to-b, to-ovs       |       |   to-a (pseudowire)|           |   TEB by default, key 9)           |
#   +--teb-a-wb--teb-a-wo--+       +--teb-b-wa----------+           | br-phy: up0 on "wire", 198.51.100.2|
#      192.0.2.1  198.51.100.1        192.0.2.2                     +------------------------------------+
#         |           |                  |                                 |
#         +===== veth ===================+  (a) TEB key 7, checksum, sequence numbers
#                     +========================== veth ====================+  (b) TEB key 9
#                  dumpcap on both ends of each transport veth, tshark afterwards
#
# Configs: dpdk-config/e2e/teb-a.toml, teb-b.toml. Each greway and OVS run in a network namespace of their own
# (their net_af_packet ports' fanout groups cannot collide), with ports on veth ends there; nothing is created in
# the root namespace. Needs root, no hugepages, no NIC. Prints one PASS/FAIL line per check and a final
# "N passed, N failed"; exits non-zero on any failure. Bounded: waits poll with a limit, traffic has timeouts,
# and a watchdog ends the run after E2E_TEB_TIMEOUT seconds (default 180; installing missing packages and the
# build are not counted). Everything it creates (namespaces with their veths and OVS's TAP devices, processes,
# /var/run/dpdk/greway-e2e-teb*, the control sockets) is removed on exit, also on failure or interruption.
#
# Usage: scripts/e2e-teb.sh                      (installs what is missing; builds target/release/greway if missing)
#        GREWAY=PATH scripts/e2e-teb.sh          another greway binary
#        E2E_KEEP_LOGS=1 scripts/e2e-teb.sh      keep the work directory (logs, captures, stats)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

GREWAY=${GREWAY:-$ROOT/target/release/greway}
CFG_A="$ROOT/dpdk-config/e2e/teb-a.toml"
CFG_B="$ROOT/dpdk-config/e2e/teb-b.toml"
SOCK_A=/tmp/greway-e2e-teb-a.sock
SOCK_B=/tmp/greway-e2e-teb-b.sock
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
NS_H1=tebh1
NS_H2=tebh2
NS_H3=tebh3
NS_A=tebgwA
NS_B=tebgwB
NS_O=tebovs
NSS=("$NS_H1" "$NS_H2" "$NS_H3" "$NS_A" "$NS_B" "$NS_O")
H1_MAC=02:00:00:e1:00:01
H2_MAC=02:00:00:e1:00:02
H3_MAC=02:00:00:e1:00:03
A_WB_MAC=02:00:00:e0:0a:01   # greway A toward B (teb-a.toml)
A_WO_MAC=02:00:00:e0:0a:02   # greway A toward OVS
B_WA_MAC=02:00:00:e0:0b:01   # greway B (teb-b.toml)
OVS_PHY_MAC=02:00:00:e0:0c:01 # br-phy: OVS's tunnel endpoint 198.51.100.2
HOST_MTU=1450                # the smaller tunnel MTU (to-b: 1500 - 36 outer IPv4 and GRE - 14 inner Ethernet)
OVS_PREFIX=greway-e2e-teb-ovs
LIMIT=${E2E_TEB_TIMEOUT:-180}
WORK=$(mktemp -d /tmp/greway-e2e-teb.XXXXXX)
OVS_D="$WORK/ovs"
PASS=0
FAIL=0
GWA_PID=""
GWB_PID=""
CAP_PIDS=()
WATCHDOG=""
T0=$(date +%s)

# say, pass, fail, check, wait_for, stop_pid, pidfile, start_watchdog, ovs_use, ovs_start, ovs_ports_up
. scripts/e2e-lib.sh
ovs_use "$OVS_D" # OVS's tools use OVS_D, never the system's /var/run/openvswitch; DB
check_shown() { grep -E '^  ' | head -n 4; } # of a passing check: its first 4 indented lines
h1() { ip netns exec "$NS_H1" "$@"; }
h2() { ip netns exec "$NS_H2" "$@"; }
h3() { ip netns exec "$NS_H3" "$@"; }
nso() { ip netns exec "$NS_O" "$@"; }
vsctl() { timeout 20 ovs-vsctl --db="$DB" --timeout=15 "$@"; }
appctl() { timeout 10 ovs-appctl -t "$OVS_D/vswitchd.ctl" "$@"; }
ctl_a() { timeout 10 "$GREWAY" ctl --socket "$SOCK_A" "$@"; }


teardown() { # idempotent: the cleanup trap and the final leftovers check both call it
    local p n
    for p in "${CAP_PIDS[@]}"; do stop_pid "$p"; done
    CAP_PIDS=()
    stop_pid "$GWA_PID"
    stop_pid "$GWB_PID"
    GWA_PID=""
    GWB_PID=""
    for f in "$WORK"/srv-*.pid; do
        [ -f "$f" ] && stop_pid "$(cat "$f")"
    done
    rm -f "$WORK"/srv-*.pid
    stop_pid "$(pidfile "$OVS_D/vswitchd.pid")"
    stop_pid "$(pidfile "$OVS_D/db.pid")"
    rm -f "$OVS_D/vswitchd.pid" "$OVS_D/db.pid"
    # Deleting a namespace deletes its veth ends (and their peers) and OVS's TAP devices.
    for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf /var/run/dpdk/greway-e2e-teb-a /var/run/dpdk/greway-e2e-teb-b "/var/run/dpdk/$OVS_PREFIX"
    rm -f "$SOCK_A" "$SOCK_B"
}
cleanup() {
    set +e
    teardown
    if [ -n "$WATCHDOG" ]; then
        kill "$WATCHDOG" 2>/dev/null
        wait "$WATCHDOG" 2>/dev/null
    fi
    if [ "${E2E_KEEP_LOGS:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
exec 3>&1
on_signal() {
    exec 1>&3 2>&3
    fail "interrupted, or over the time limit (E2E_TEB_TIMEOUT=${LIMIT} s)"
    say "e2e-teb took $(($(date +%s) - T0)) s"
    say "$PASS passed, $FAIL failed"
    exit 124
}
trap on_signal INT TERM

finish() {
    say "e2e-teb took $(($(date +%s) - T0)) s"
    say "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

if [ "$(id -u)" != 0 ]; then
    fail "e2e-teb needs root (network namespaces, veth, af_packet)"
    finish
fi
if [ ! -x "$OVS_VSWITCHD" ] || ! command -v ovsdb-server >/dev/null || ! command -v iperf3 >/dev/null; then
    say "== scripts/install-deps.sh (Open vSwitch with DPDK or iperf3 is missing)"
    timeout 600 scripts/install-deps.sh || {
        fail "install openvswitch-switch-dpdk and iperf3 (scripts/install-deps.sh)"
        finish
    }
fi
for t in ip ethtool ping iperf3 tshark dumpcap jq ovsdb-tool ovsdb-server ovs-vsctl ovs-appctl; do
    command -v "$t" >/dev/null || {
        fail "missing tool: $t (run scripts/install-deps.sh)"
        finish
    }
done
if [ ! -x "$GREWAY" ]; then
    say "== cargo build --release"
    cargo build --release || {
        fail "cargo build --release"
        finish
    }
fi

start_watchdog "$LIMIT"

teardown 2>/dev/null
mkdir -p "$OVS_D"

# ------------------------------------------------------------------------------------------------------------
# Topology
# ------------------------------------------------------------------------------------------------------------
dpdk_end() { # dpdk_end NS IFACE: an end that a DPDK af_packet port owns: no address, no IPv6, no offloads
    ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
    ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$1" ip link set "$2" mtu 1500 up
}
host() { # host NS MAC ADDRESS: a plain Linux host on the stretched /24, IPv4 only, offloads off
    ip netns exec "$1" ethtool -K eth0 rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$1" ip link set eth0 address "$2" mtu "$HOST_MTU" up
    ip netns exec "$1" ip addr add "$3/24" dev eth0
}
setup() {
    set -e
    local n
    for n in "${NSS[@]}"; do
        ip netns add "$n"
        ip netns exec "$n" ip link set lo up
        ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip -n "$NS_A" link add teb-a-lan type veth peer name eth0 netns "$NS_H1"
    ip -n "$NS_A" link add teb-a-wb type veth peer name teb-b-wa netns "$NS_B"
    ip -n "$NS_A" link add teb-a-wo type veth peer name wire netns "$NS_O"
    ip -n "$NS_B" link add teb-b-lan type veth peer name eth0 netns "$NS_H2"
    ip -n "$NS_O" link add teb-o-in type veth peer name eth0 netns "$NS_H3"
    for n in teb-a-lan teb-a-wb teb-a-wo; do dpdk_end "$NS_A" "$n"; done
    for n in teb-b-lan teb-b-wa; do dpdk_end "$NS_B" "$n"; done
    for n in wire teb-o-in; do dpdk_end "$NS_O" "$n"; done
    host "$NS_H1" "$H1_MAC" 10.9.0.1
    host "$NS_H2" "$H2_MAC" 10.9.0.2
    host "$NS_H3" "$H3_MAC" 10.9.0.3
    set +e
}
if ! (setup) >"$WORK/setup.log" 2>&1; then
    fail "topology setup (namespaces, veth)"
    sed 's/^/      /' "$WORK/setup.log"
    finish
fi
pass "topology: namespaces ${NSS[*]}; 5 veth pairs (3 hosts' LANs, 2 transport links); hosts on 10.9.0.0/24, MTU $HOST_MTU"

# ------------------------------------------------------------------------------------------------------------
# Captures on the transport links: on each end, the frames that arrive from the other end (by source MAC), so each
# frame is captured once whatever the af_packet PMDs' qdisc bypass does. Full frames (GRE checksums verified).
# ------------------------------------------------------------------------------------------------------------
capture() { # capture NAME NS IFACE FILTER: dumpcap in the background, up once it says it is capturing
    local name=$1 ns=$2 iface=$3 filter=$4 log="$WORK/dumpcap-$1.log"
    ip netns exec "$ns" timeout "$LIMIT" dumpcap -i "$iface" -f "$filter" -w "$WORK/wire-$name.pcapng" >"$log" 2>&1 &
    CAP_PIDS+=($!)
    wait_for 10 grep -q "Capturing on" "$log" || {
        cat "$log"
        return 1
    }
}
start_captures() {
    capture a-to-b "$NS_B" teb-b-wa "ether src $A_WB_MAC" && capture b-to-a "$NS_A" teb-a-wb "ether src $B_WA_MAC" &&
        capture a-to-ovs "$NS_O" wire "ether src $A_WO_MAC" && capture ovs-to-a "$NS_A" teb-a-wo "ether src $OVS_PHY_MAC"
}
check "capture: dumpcap on both ends of both transport veths (greway A <-> greway B, greway A <-> OVS)" start_captures

# ------------------------------------------------------------------------------------------------------------
# The two greways, each in its namespace
# ------------------------------------------------------------------------------------------------------------
start_gw() { # start_gw a|b
    local which=$1 ns cfg log="$WORK/greway-$1.log" pid
    if [ "$which" = a ]; then ns=$NS_A cfg=$CFG_A; else ns=$NS_B cfg=$CFG_B; fi
    ip netns exec "$ns" "$GREWAY" --log info run --config "$cfg" --quiet --stats-json "$WORK/greway-$which.json" \
        >"$log" 2>&1 &
    pid=$!
    if [ "$which" = a ]; then GWA_PID=$pid; else GWB_PID=$pid; fi
    for _ in $(seq 150); do
        grep -q "worker 0 on core" "$log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$log"
    return 1
}
check "greway A started in $NS_A (l2 port lan, TEB tunnels to-b and to-ovs, bridge site)" start_gw a
check "greway B started in $NS_B (l2 port lan, TEB tunnel to-a, a two-member bridge without learning)" start_gw b
[ "$FAIL" -eq 0 ] || finish
# OVS starts (in the background) while (a)'s ARP and pings run: its DPDK start-up is the slowest step here.
OVS_SETUP=""

# ------------------------------------------------------------------------------------------------------------
# (b) Open vSwitch with DPDK as the far end of tunnel to-ovs: br-int switches (NORMAL) between host 3 and gre0,
# an ordinary GRE port, which carries Ethernet (TEB) unless told otherwise.
# ------------------------------------------------------------------------------------------------------------
start_ovs() {
    set -e
    ovs_start "$OVS_D" "$NS_O" \
        other_config:dpdk-extra="--no-huge --legacy-mem -m 1024 --no-pci --file-prefix $OVS_PREFIX" \
        other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x1 other_config:pmd-maxsleep=200
    vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev other-config:hwaddr="$OVS_PHY_MAC" \
        -- add-port br-phy up0 -- set interface up0 type=dpdk options:dpdk-devargs=net_af_packet0,iface=wire
    vsctl add-br br-int -- set bridge br-int datapath_type=netdev \
        -- add-port br-int gre0 -- set interface gre0 type=gre options:remote_ip=198.51.100.1 options:key=9 \
        -- add-port br-int in0 -- set interface in0 type=dpdk options:dpdk-devargs=net_af_packet1,iface=teb-o-in
    wait_for 10 nso ip link show br-phy
    nso ip addr add 198.51.100.2/24 dev br-phy
    nso ip link set br-phy up
    set +e
}
# ------------------------------------------------------------------------------------------------------------
# (a) host 1 <-> host 2 across greway A and greway B
# ------------------------------------------------------------------------------------------------------------
ping_all() { # ping_all NS COUNT ARGS...: every echo request answered
    local ns=$1 count=$2 out got
    shift 2
    out=$(ip netns exec "$ns" timeout 20 ping -n -c "$count" -i 0.2 -W 2 "$@" 2>&1)
    got=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
    printf '%s\n' "$out" | tail -n 2 | sed 's/^/  /'
    [ "${got:-0}" -eq "$count" ] || {
        echo "$((count - ${got:-0})) of $count echo requests unanswered"
        return 1
    }
}
arp_resolves() { # arp_resolves NS IP MAC: from an empty neighbour table, the host learns IP at MAC by ARP
    local ns=$1 ip=$2 mac=$3 i
    ip netns exec "$ns" ip neigh flush dev eth0
    # The first exchange may wait for the gateways' own ARP (tunnel next hops): up to 10 tries.
    for i in $(seq 10); do
        ip netns exec "$ns" ping -n -c 1 -W 1 "$ip" >/dev/null 2>&1 && break
    done
    ip netns exec "$ns" ip neigh show "$ip" dev eth0 | sed 's/^/  /'
    ip netns exec "$ns" ip neigh show "$ip" dev eth0 | grep -qi "lladdr $mac"
}
(start_ovs) >"$WORK/ovs-setup.log" 2>&1 &
OVS_SETUP=$!

check "ARP host 1 -> host 2: 10.9.0.2 is at $H2_MAC (broadcast flooded through TEB, reply bridged back)" \
    arp_resolves "$NS_H1" 10.9.0.2 "$H2_MAC"
check "ARP host 2 -> host 1: 10.9.0.1 is at $H1_MAC" arp_resolves "$NS_H2" 10.9.0.1 "$H1_MAC"
check "ping host 1 -> host 2 (10.9.0.1 -> 10.9.0.2) through greway A and B" ping_all "$NS_H1" 5 10.9.0.2
check "ping host 2 -> host 1" ping_all "$NS_H2" 5 10.9.0.1
check "ping host 1 -> host 2, DF, $HOST_MTU-byte packets (tunnel to-b's MTU: 1450-byte Ethernet payload)" \
    ping_all "$NS_H1" 3 -M do -s $((HOST_MTU - 28)) 10.9.0.2
check "ping host 2 -> host 1, DF, $HOST_MTU-byte packets" ping_all "$NS_H2" 3 -M do -s $((HOST_MTU - 28)) 10.9.0.1

THROUGHPUT=""
iperf_pair() { # iperf_pair LABEL SERVER_NS CLIENT_NS SERVER_IP ARGS...: a 2-second iperf3 run to a one-shot server
    local label=$1 sns=$2 cns=$3 sip=$4 json="$WORK/iperf-$1.json"
    shift 4
    ip netns exec "$sns" iperf3 -s -D -1 -p 5201 -I "$WORK/srv-iperf.pid" --logfile "$WORK/iperf-s-$label.log" \
        >/dev/null 2>&1
    wait_for 10 sh -c "ip netns exec $sns ss -Hltn 'sport = :5201' | grep -q LISTEN" || return 1
    ip netns exec "$cns" timeout 20 iperf3 -c "$sip" -p 5201 -t 2 -J "$@" >"$json" 2>&1 || {
        jq -r '.error // empty' "$json" 2>/dev/null || tail -n 5 "$json"
        return 1
    }
    wait_for 5 sh -c "! kill -0 \$(cat $WORK/srv-iperf.pid 2>/dev/null) 2>/dev/null"
    rm -f "$WORK/srv-iperf.pid"
    local r
    r=$(jq -r '"\(.end.sum_received.bits_per_second / 1e6 | floor) Mbit/s, \(.end.sum_sent.retransmits) retransmits"' "$json")
    echo "  $r"
    THROUGHPUT="$THROUGHPUT $label: $r;"
    [ "$(jq -r '.end.sum_received.bytes' "$json")" -gt 0 ]
}

if wait "$OVS_SETUP"; then
    pass "Open vSwitch $(ovs-vswitchd --version 2>/dev/null | head -n1 | awk '{print $NF}') with DPDK started in $NS_O \
(no hugepages)"
else
    fail "Open vSwitch with DPDK started and configured"
    sed 's/^/      /' "$WORK/ovs-setup.log" | tail -n 20
    tail -n 20 "$OVS_D/ovs-vswitchd.log" 2>/dev/null | sed 's/^/      /'
    finish
fi
check "OVS ports up: up0 (wire), in0 (host 3), gre0 (GRE, TEB by default, key 9)" wait_for 20 ovs_ports_up "up0 in0" gre0

# OVS resolves its tunnel next hop (greway A) by ARP and drops what it sends meanwhile; its cached datapath flow may
# keep dropping until revalidated. So host 3 pings host 1 until OVS knows greway A's MAC and a ping is answered.
ovs_knows_greway() { appctl tnl/neigh/show | grep -Eiq "^198\.51\.100\.1 +$A_WO_MAC +br-phy"; }
resolve() {
    local n answered=0
    for n in $(seq 60); do
        answered=0
        h3 ping -n -c 1 -W 0.5 10.9.0.1 >/dev/null 2>&1 && answered=1
        [ $answered = 1 ] && ovs_knows_greway && break
    done
    appctl tnl/neigh/show | sed 's/^/  /'
    ovs_knows_greway && [ $answered = 1 ]
}
check "OVS resolved its tunnel next hop by ARP (198.51.100.1 at greway A's $A_WO_MAC), host 3's ping answered" resolve
check "ARP host 1 -> host 3: 10.9.0.3 is at $H3_MAC (through greway A and OVS)" arp_resolves "$NS_H1" 10.9.0.3 "$H3_MAC"
check "ARP host 3 -> host 1: 10.9.0.1 is at $H1_MAC" arp_resolves "$NS_H3" 10.9.0.1 "$H1_MAC"
check "ping host 1 -> host 3 (greway A encapsulates, OVS decapsulates)" ping_all "$NS_H1" 5 10.9.0.3
check "ping host 3 -> host 1 (OVS encapsulates, greway A decapsulates)" ping_all "$NS_H3" 5 10.9.0.1
check "ping host 3 -> host 1, DF, $HOST_MTU-byte packets" ping_all "$NS_H3" 3 -M do -s $((HOST_MTU - 28)) 10.9.0.1
check "ping host 2 -> host 3 (greway B -> greway A -> OVS: two TEB tunnels, one segment)" ping_all "$NS_H2" 3 10.9.0.3

# The captures end before the bulk iperf3 runs (hundreds of MB otherwise, and frames dumpcap could miss).
for p in "${CAP_PIDS[@]}"; do stop_pid "$p"; done
CAP_PIDS=()

check "iperf3 host 1 -> host 2, 2 s (greway A encapsulates, greway B decapsulates)" \
    iperf_pair h1-to-h2 "$NS_H2" "$NS_H1" 10.9.0.2
check "iperf3 host 2 -> host 1, 2 s (iperf3 -R: greway B encapsulates)" iperf_pair h2-to-h1 "$NS_H2" "$NS_H1" 10.9.0.2 -R
check "iperf3 host 1 -> host 3, 2 s (greway A -> OVS)" iperf_pair h1-to-h3 "$NS_H3" "$NS_H1" 10.9.0.3
check "iperf3 host 3 -> host 1, 2 s (iperf3 -R: OVS -> greway A)" iperf_pair h3-to-h1 "$NS_H3" "$NS_H1" 10.9.0.3 -R

mac_table() { # greway A's MAC table: each host's MAC on the member it lives behind
    ctl_a bridge show site >"$WORK/bridge.json" || return 1
    jq -r '.bridges[0].macs[] | "  \(.mac) on \(.member)"' "$WORK/bridge.json"
    jq -e --arg h1 "$H1_MAC" --arg h2 "$H2_MAC" --arg h3 "$H3_MAC" '.bridges[0].macs as $m
        | ([$m[] | select(.mac == $h1 and .member == "lan")] | length) == 1
        and ([$m[] | select(.mac == $h2 and .member == "to-b")] | length) == 1
        and ([$m[] | select(.mac == $h3 and .member == "to-ovs")] | length) == 1' "$WORK/bridge.json" >/dev/null
}
check "greway ctl bridge show (A): host 1's MAC on lan, host 2's on to-b, host 3's on to-ovs" mac_table

# ------------------------------------------------------------------------------------------------------------
# tshark on the transport links
# ------------------------------------------------------------------------------------------------------------
# Columns (occurrence=a: "outer,inner" where both layers have the field): 1 capture 2 frame 3 ip.src 4 ip.dst
# 5 gre.proto 6 gre.key 7 gre.checksum.status 8 gre.sequence_number 9 eth.src 10 eth.dst 11 eth.type
# 12 arp.opcode 13 icmp.type 14 tcp.srcport 15 frame.len
TS="$WORK/wire.tsv"
for c in a-to-b b-to-a a-to-ovs ovs-to-a; do
    tshark -r "$WORK/wire-$c.pcapng" -n -Y gre -T fields -E separator=/t -E occurrence=a -E aggregator=, \
        -e frame.number -e ip.src -e ip.dst -e gre.proto -e gre.key -e gre.checksum.status -e gre.sequence_number \
        -e eth.src -e eth.dst -e eth.type -e arp.opcode -e icmp.type -e tcp.srcport -e frame.len \
        2>>"$WORK/tshark.err" | sed "s/^/$c\t/"
done >"$TS"
ALL_FRAMES=$(for c in a-to-b b-to-a a-to-ovs ovs-to-a; do
    tshark -r "$WORK/wire-$c.pcapng" -n -T fields -e frame.number 2>/dev/null | wc -l
done | awk '{ s += $1 } END { print s }')
say "      transport: $(wc -l <"$TS") GRE frames of $ALL_FRAMES captured ($(for c in a-to-b b-to-a a-to-ovs ovs-to-a; do
    printf '%s %s, ' "$c" "$(awk -F'\t' -v c="$c" '$1 == c' "$TS" | wc -l)"
done | sed 's/, $//'))"
ts_teb() { # every GRE packet carries Ethernet (0x6558) with its tunnel's key, between the tunnel's endpoints
    awk -F'\t' '{ split($3, s, ","); split($4, d, ",")
            want = ($1 == "a-to-b") ? "192.0.2.1>192.0.2.2 0x00000007" : ($1 == "b-to-a") ? "192.0.2.2>192.0.2.1 0x00000007" \
                 : ($1 == "a-to-ovs") ? "198.51.100.1>198.51.100.2 0x00000009" : "198.51.100.2>198.51.100.1 0x00000009"
            got = s[1] ">" d[1] " " $6
            n[$1]++
            if ($5 != "0x6558" || got != want) { if (bad++ < 10) print "  " $1 " frame " $2 ": " got " proto " $5 " (want " want ")" } }
        END { for (k in n) print "  " k ": " n[k] " GRE/TEB packets"
              exit bad > 0 || n["a-to-b"] < 10 || n["b-to-a"] < 10 || n["a-to-ovs"] < 10 || n["ovs-to-a"] < 10 }' "$TS"
}
ts_options() { # A <-> B: good GRE checksums and sequence numbers increasing by one per direction; A <-> OVS: none
    awk -F'\t' '{ ab = ($1 == "a-to-b" || $1 == "b-to-a")
            if (ab) { if ($7 != "1" || $8 == "" || (($1 in last) && $8 != last[$1] + 1)) {
                        if (bad++ < 10) print "  " $1 " frame " $2 ": checksum status " $7 " seq " $8 " after " last[$1] }
                      last[$1] = $8 }
            else if ($7 != "" || $8 != "") { if (bad++ < 10) print "  " $1 " frame " $2 ": unexpected checksum/sequence" } }
        END { print "  last sequence numbers: a-to-b " last["a-to-b"] ", b-to-a " last["b-to-a"]; exit bad > 0 }' "$TS"
}
ts_inner() { # inside: the hosts' own frames (ARP both ways, ICMP echo both ways, TCP), never the gateways' MACs
    awk -F'\t' -v h1="$H1_MAC" -v h2="$H2_MAC" -v h3="$H3_MAC" '{
            split($9, s, ","); split($10, d, ","); split($11, t, ",")
            far = ($1 ~ /ovs/) ? h3 : h2
            src_ok = ($1 == "a-to-b" || $1 == "a-to-ovs") ? (s[2] == h1 || s[2] == h2 || s[2] == h3) : (s[2] == far)
            if (!src_ok || length(d[2]) != 17) { if (bad++ < 10) print "  " $1 " frame " $2 ": inner " s[2] " > " d[2] }
            if (t[2] == "0x0806") seen[$1 " arp" ($12 == "1" ? "-request" : "-reply")]++
            if ($13 ~ /(^|,)8$/) seen[$1 " echo-request"]++
            if ($13 ~ /(^|,)0$/) seen[$1 " echo-reply"]++ }
        END { for (k in seen) print "  " k ": " seen[k]
              split("a-to-b b-to-a a-to-ovs ovs-to-a", cs, " ")
              miss = 0
              for (i = 1; i <= 4; i++) {
                  if (!seen[cs[i] " echo-request"] || !seen[cs[i] " echo-reply"]) { print "  " cs[i] ": no echo both ways"; miss = 1 } }
              if (!seen["a-to-b arp-request"] || !seen["b-to-a arp-reply"] || !seen["a-to-ovs arp-request"] || !seen["ovs-to-a arp-reply"]) {
                  print "  ARP request/reply missing"; miss = 1 }
              exit bad > 0 || miss }' "$TS"
}
ts_largest() { # the largest frames both ways on the A-B link: 1450 + 14 inner + 36 GRE/IPv4 + 14 outer = 1514
    awk -F'\t' '$1 == "a-to-b" || $1 == "b-to-a" { if ($15 > m[$1]) m[$1] = $15 }
        END { print "  largest: a-to-b " m["a-to-b"] ", b-to-a " m["b-to-a"]; exit !(m["a-to-b"] == 1514 && m["b-to-a"] == 1514) }' "$TS"
}
check "tshark: every GRE packet is protocol 0x6558 (TEB) between the tunnel's endpoints with its key (7 to B, 9 to OVS)" ts_teb
check "tshark: A <-> B packets have good GRE checksums and consecutive sequence numbers; A <-> OVS packets neither" \
    ts_options
check "tshark: the inner Ethernet frames are the hosts' own: ARP request and reply, echo request and reply, both ways on both links" \
    ts_inner
check "tshark: the largest frames on the A <-> B link are 1514 bytes both ways (a $HOST_MTU-byte packet in a full frame)" \
    ts_largest

# ------------------------------------------------------------------------------------------------------------
# Both greways' own accounting
# ------------------------------------------------------------------------------------------------------------
stop_pid "$GWA_PID"
stop_pid "$GWB_PID"
GWA_PID=""
GWB_PID=""
greway_stats() {
    local f
    for f in a b; do
        jq -c '{tunnels: (.tunnels | map_values({encap, decap})), bridges: (.bridges | map_values({rx, learned,
            forwarded, flooded, flood_copies})), drops: (.drops | with_entries(select(.value > 0))),
            mempool: (.mempool | {free_at_start, free_at_end})}' "$WORK/greway-$f.json" | sed "s/^/  $f: /" || return 1
    done
    jq -e '.tunnels["to-b"].encap > 1000 and .tunnels["to-b"].decap > 1000
        and .tunnels["to-ovs"].encap > 1000 and .tunnels["to-ovs"].decap > 1000
        and .bridges.site.learned >= 3 and .bridges.site.forwarded > 1000 and .bridges.site.flooded > 0
        and ([.drops.bad_checksum, .drops.missing_checksum, .drops.key_mismatch, .drops.unknown_tunnel,
              .drops.unsupported_gre_protocol, .drops.frame_too_big, .drops.bridge_bad_source,
              .drops.tx_full] | map(. // 0) | add) == 0
        and .mempool.free_at_end == .mempool.free_at_start' "$WORK/greway-a.json" >/dev/null &&
        jq -e '.tunnels["to-a"].encap > 1000 and .tunnels["to-a"].decap > 1000
        and .bridges.site.learned == 0
        and ([.drops.bad_checksum, .drops.missing_checksum, .drops.key_mismatch, .drops.unknown_tunnel,
              .drops.unsupported_gre_protocol, .drops.frame_too_big, .drops.tx_full] | map(. // 0) | add) == 0
        and .mempool.free_at_end == .mempool.free_at_start' "$WORK/greway-b.json" >/dev/null
}
check "greway A and B: TEB tunnels carried traffic both ways, A learned the 3 hosts, no GRE/TEB drop, no mbuf leaked" \
    greway_stats

OVS_PIDS="$(pidfile "$OVS_D/vswitchd.pid") $(pidfile "$OVS_D/db.pid")"
teardown
leftovers() {
    local bad=0 p
    for p in $OVS_PIDS; do kill -0 "$p" 2>/dev/null && {
        echo "process $p still running"
        bad=1
    }; done
    ip netns list | grep -E '^teb(h[123]|gwA|gwB|ovs)\b' && bad=1
    ls -d /var/run/dpdk/greway-e2e-teb* 2>/dev/null && bad=1
    ls "$SOCK_A" "$SOCK_B" 2>/dev/null && bad=1
    return $bad
}
check "teardown: no namespace, veth, OVS or greway process, DPDK run directory or control socket left" leftovers
say "      TCP throughput:$THROUGHPUT"
finish
