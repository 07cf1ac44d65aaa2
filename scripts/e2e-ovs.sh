#!/usr/bin/env bash
# Interoperability end to end with a live peer that is not greway: Open vSwitch (userspace datapath with DPDK,
# Debian's openvswitch-switch-dpdk) is the far end of an L3 GRE tunnel with a key and checksums. Real kernel hosts
# in network namespaces on both sides; ping and TCP (content checked) in both directions; tshark on the wire.
#
#   netns eo-hA                                                        netns eo-hB
# +-------------+                                                    +-------------+
# | hostA  eth0 |                                                    | eth0  hostB |
# +------+------+                                                    +------+------+
#        | veth                                                             | veth
# - - - -|- - - - - - - - root namespace - - - - - - - - - - - - - - - - - -|- - - -
#    eo-gw-in                                 netns eo-ovs             eo-ovs-in
#  +-----------+                  +-------------------------------------------+---+
#  |  greway   |                  | ovs-vswitchd (DPDK)              in0 (dpdk)   |
#  +-----------+                  | br-int: in0, gre0 (gre, legacy_l3, key, csum) |
#    eo-gw-out ==== veth: the wire ==== wire: up0 (dpdk) on br-phy;              |
#    192.0.2.1    dumpcap on both ends    br-phy's TAP = tunnel endpoint 192.0.2.2  |
#                                 +-----------------------------------------------+
#
#  hostA  10.1.0.2/24 2001:db8:1::2/64, default routes via greway (10.1.0.1, 2001:db8:1::1)
#  greway inside 10.1.0.1 2001:db8:1::1; outside 192.0.2.1/24; tunnel to-ovs: key 4242, checksum
#         (dpdk-config/e2e/gw-ovs.toml)
#  OVS    tunnel endpoint 192.0.2.2/24 on br-phy; gre0: remote_ip=192.0.2.1 key=4242 csum=true packet_type=legacy_l3
#  hostB  10.2.0.2/24 2001:db8:2::2/64, MTU 1468 (the tunnel's inner MTU), default routes via 10.2.0.1 and
#         2001:db8:2::1, which are OVS's flows (static neighbour entries on hostB)
#
# greway's ports and OVS's ports are net_af_packet sockets on veth ends. OVS runs in its own namespace from a run
# directory under the work directory (its own ovsdb-server, no system service), without hugepages.
# Needs root. Prints one PASS/FAIL line per check and a final "N passed, N failed"; exits non-zero on any failure.
# Bounded: waits poll with a limit, traffic commands have timeouts, and a watchdog ends the run after
# E2E_OVS_TIMEOUT seconds (default 240; the install of missing packages and the build are not counted).
# Everything it creates (namespaces, veths, OVS's TAP devices, processes, /var/run/dpdk/greway-e2e-ovs*) is removed
# on exit, also on failure or interruption.
#
# Usage: scripts/e2e-ovs.sh                    (installs openvswitch-switch-dpdk if missing; builds greway if missing)
#        E2E_KEEP_LOGS=1 scripts/e2e-ovs.sh    keep the work directory (greway/OVS logs, captures, stats)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

GREWAY="$ROOT/target/release/greway"
CFG="$ROOT/dpdk-config/e2e/gw-ovs.toml"
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
NS_A=eo-hA
NS_B=eo-hB
NS_O=eo-ovs
KEY=4242
GW_OUT_MAC=02:00:00:0a:00:02    # greway's outside port (dpdk-config/e2e/gw-ovs.toml)
OVS_PHY_MAC=02:00:00:0c:00:02   # br-phy: OVS's tunnel endpoint 192.0.2.2
OVS_RTR_MAC=02:00:00:0c:00:01   # the router MAC OVS's flows stand for on hostB's link
HOSTB_MAC=02:00:00:0b:00:aa
OVS_PREFIX=greway-e2e-ovs-peer  # OVS's DPDK --file-prefix (greway's is greway-e2e-ovs)
LIMIT=${E2E_OVS_TIMEOUT:-240}
WORK=$(mktemp -d /tmp/greway-e2e-ovs.XXXXXX)
OVS_D="$WORK/ovs"
PASS=0
FAIL=0
GW_PID=""
CAP_PIDS=()
WATCHDOG=""
T0=$(date +%s)

# say, pass, fail, check, wait_for, stop_pid, pidfile, start_watchdog, ovs_use, ovs_start, ovs_ports_up
. scripts/e2e-lib.sh
# OVS's tools find their database, sockets and logs here, never in the system's /var/run/openvswitch; DB.
ovs_use "$OVS_D"
nsa() { ip netns exec "$NS_A" "$@"; }
nsb() { ip netns exec "$NS_B" "$@"; }
nso() { ip netns exec "$NS_O" "$@"; }
vsctl() { timeout 20 ovs-vsctl --db="$DB" --timeout=15 "$@"; }
ofctl() { timeout 10 ovs-ofctl "$@"; }
appctl() { timeout 10 ovs-appctl -t "$OVS_D/vswitchd.ctl" "$@"; }


LINKS=(eo-gw-in eo-gw-out)
NSS=("$NS_A" "$NS_B" "$NS_O")
teardown() { # idempotent: the cleanup trap and the final leftovers check both call it
    local p
    for p in "${CAP_PIDS[@]}"; do stop_pid "$p"; done
    CAP_PIDS=()
    stop_pid "$GW_PID"
    GW_PID=""
    for f in "$WORK"/srv-*.pid; do
        [ -f "$f" ] && stop_pid "$(cat "$f")"
    done
    rm -f "$WORK"/srv-*.pid
    # OVS: the switch first (it holds the TAP devices and the af_packet sockets), then its database.
    stop_pid "$(pidfile "$OVS_D/vswitchd.pid")"
    stop_pid "$(pidfile "$OVS_D/db.pid")"
    rm -f "$OVS_D/vswitchd.pid" "$OVS_D/db.pid"
    if ip netns list | grep -qw "$NS_O"; then
        for l in br-int br-phy ovs-netdev; do nso ip link del "$l" 2>/dev/null; done
    fi
    for l in "${LINKS[@]}"; do ip link del "$l" 2>/dev/null; done
    for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf /var/run/dpdk/greway-e2e-ovs "/var/run/dpdk/$OVS_PREFIX"
}
cleanup() {
    set +e
    teardown
    if [ -n "$WATCHDOG" ]; then kill "$WATCHDOG" 2>/dev/null; wait "$WATCHDOG" 2>/dev/null; fi
    if [ "${E2E_KEEP_LOGS:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# On a signal (Ctrl-C, the watchdog) the shell may be inside a check whose output goes to a file: report on the
# script's own stdout, kept as fd 3.
exec 3>&1
on_signal() {
    exec 1>&3 2>&3
    fail "interrupted, or over the time limit (E2E_OVS_TIMEOUT=${LIMIT} s)"
    say "e2e-ovs took $(($(date +%s) - T0)) s"
    say "$PASS passed, $FAIL failed"
    exit 124
}
trap on_signal INT TERM

finish() {
    say "e2e-ovs took $(($(date +%s) - T0)) s"
    say "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

if [ "$(id -u)" != 0 ]; then
    fail "e2e-ovs needs root (network namespaces, veth, af_packet)"
    finish
fi
if [ ! -x "$OVS_VSWITCHD" ] || ! command -v ovsdb-server >/dev/null; then
    say "== scripts/install-deps.sh (Open vSwitch with DPDK is missing)"
    timeout 600 scripts/install-deps.sh || { fail "install openvswitch-switch-dpdk (scripts/install-deps.sh)"; finish; }
fi
for t in ip ethtool ping iperf3 tshark dumpcap jq python3 ovsdb-tool ovsdb-server ovs-vsctl ovs-ofctl ovs-appctl; do
    command -v "$t" >/dev/null || { fail "missing tool: $t (run scripts/install-deps.sh)"; finish; }
done
if [ ! -x "$GREWAY" ]; then
    say "== cargo build --release"
    cargo build --release || { fail "cargo build --release"; finish; }
fi

# The watchdog: whatever hangs, the run ends (and cleans up) after LIMIT seconds (the install and
# the build above are not counted).
start_watchdog "$LIMIT"

# Leftovers of an interrupted earlier run would make the setup fail.
teardown 2>/dev/null
mkdir -p "$OVS_D"

# ------------------------------------------------------------------------------------------------------------
# Topology
# ------------------------------------------------------------------------------------------------------------
setup() {
    set -e
    for n in "${NSS[@]}"; do
        ip netns add "$n"
        ip netns exec "$n" ip link set lo up
    done
    # OVS's namespace carries IPv4 only (no IPv6 autoconfiguration noise on the wire, on br-phy or on the links).
    nso sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add eo-gw-in type veth peer name eth0 netns "$NS_A"
    ip link add eo-gw-out type veth peer name wire netns "$NS_O"
    nso ip link add eo-ovs-in type veth peer name eth0 netns "$NS_B"
    # Ends that belong to DPDK (greway's and OVS's af_packet ports): no addresses, no IPv6 of the kernel's own, no
    # offloads (af_packet would otherwise see GRO/GSO super-frames and partial checksums).
    for l in eo-gw-in eo-gw-out; do
        sysctl -qw "net.ipv6.conf.$l.disable_ipv6=1"
        ethtool -K "$l" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
        ip link set "$l" mtu 1500 up
    done
    for l in wire eo-ovs-in; do
        nso ethtool -K "$l" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
        nso ip link set "$l" mtu 1500 up
    done
    # Hosts: plain Linux; offloads off so that every frame reaching af_packet has complete checksums.
    nsa ethtool -K eth0 rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
    nsa ip link set eth0 address 02:00:00:0a:00:aa mtu 1500 up
    nsa ip addr add 10.1.0.2/24 dev eth0
    nsa ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad
    nsa ip route add default via 10.1.0.1
    nsa ip -6 route add default via 2001:db8:1::1
    # hostB's MTU is the tunnel's inner MTU: OVS's userspace tunnels neither fragment nor send "fragmentation
    # needed", so the host behind OVS must not send more than 1500 - 20 (IPv4) - 12 (GRE, checksum, key).
    nsb ethtool -K eth0 rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
    nsb ip link set eth0 address "$HOSTB_MAC" mtu 1468 up
    nsb ip addr add 10.2.0.2/24 dev eth0
    nsb ip -6 addr add 2001:db8:2::2/64 dev eth0 nodad
    nsb ip neigh replace 10.2.0.1 lladdr "$OVS_RTR_MAC" dev eth0 nud permanent
    nsb ip -6 neigh replace 2001:db8:2::1 lladdr "$OVS_RTR_MAC" dev eth0 nud permanent
    nsb ip route add default via 10.2.0.1
    nsb ip -6 route add default via 2001:db8:2::1
    set +e
}
if ! (setup) >"$WORK/setup.log" 2>&1; then
    fail "topology setup (namespaces, veth)"
    sed 's/^/      /' "$WORK/setup.log"
    finish
fi
pass "topology: namespaces ${NSS[*]}, 3 veth pairs (greway-hostA, the wire greway-OVS, OVS-hostB)"

# ------------------------------------------------------------------------------------------------------------
# Open vSwitch with DPDK in namespace eo-ovs: own database and run directory, no hugepages, one PMD thread that
# sleeps when idle (pmd-maxsleep) so that greway, OVS and the hosts share the 2 cores.
# ------------------------------------------------------------------------------------------------------------
start_ovs() {
    set -e
    ovs_start "$OVS_D" "$NS_O" \
        other_config:dpdk-extra="--no-huge --legacy-mem -m 1024 --no-pci --file-prefix $OVS_PREFIX" \
        other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x1 other_config:pmd-maxsleep=200
    vsctl get Open_vSwitch . dpdk_version
    # The transport side: br-phy owns the tunnel endpoint address (its LOCAL port is a TAP in this namespace) and
    # the wire through a DPDK port; its default NORMAL flow switches ARP and terminates GRE for gre0.
    vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev other-config:hwaddr="$OVS_PHY_MAC" \
        -- add-port br-phy up0 -- set interface up0 type=dpdk options:dpdk-devargs=net_af_packet0,iface=wire
    # The inside: br-int joins the L3 GRE port and hostB's link.
    vsctl add-br br-int -- set bridge br-int datapath_type=netdev fail-mode=secure \
        -- add-port br-int gre0 -- set interface gre0 type=gre options:remote_ip=192.0.2.1 \
        options:key=$KEY options:csum=true options:packet_type=legacy_l3 \
        -- add-port br-int in0 -- set interface in0 type=dpdk options:dpdk-devargs=net_af_packet1,iface=eo-ovs-in
    wait_for 10 nso ip link show br-phy
    nso ip addr add 192.0.2.2/24 dev br-phy
    nso ip link set br-phy up
    # legacy_l3: a packet from gre0 enters the pipeline as an Ethernet frame with zero addresses, and OVS removes
    # the Ethernet header of what it outputs to gre0. The flows route between hostB's link and the tunnel.
    ofctl del-flows br-int
    ofctl add-flows br-int - <<EOF
priority=100,in_port=gre0,ip,nw_dst=10.2.0.0/24 actions=mod_dl_src:$OVS_RTR_MAC,mod_dl_dst:$HOSTB_MAC,output:in0
priority=100,in_port=gre0,ipv6,ipv6_dst=2001:db8:2::/64 actions=mod_dl_src:$OVS_RTR_MAC,mod_dl_dst:$HOSTB_MAC,output:in0
priority=100,in_port=in0,dl_dst=$OVS_RTR_MAC,ip,nw_dst=10.1.0.0/24 actions=output:gre0
priority=100,in_port=in0,dl_dst=$OVS_RTR_MAC,ipv6,ipv6_dst=2001:db8:1::/64 actions=output:gre0
priority=0 actions=drop
EOF
    set +e
}
if (start_ovs) >"$WORK/ovs-setup.log" 2>&1; then
    pass "Open vSwitch $(ovs-vswitchd --version 2>/dev/null | head -n1 | awk '{print $NF}') with DPDK $(
        grep -o 'DPDK [0-9.]*' "$WORK/ovs-setup.log" | head -n1 | cut -d' ' -f2) started in $NS_O (no hugepages)"
else
    fail "Open vSwitch with DPDK started and configured"
    sed 's/^/      /' "$WORK/ovs-setup.log" | tail -n 20
    tail -n 20 "$OVS_D/ovs-vswitchd.log" 2>/dev/null | sed 's/^/      /'
    finish
fi
check "OVS ports up: up0 (net_af_packet on the wire), in0 (net_af_packet to hostB), gre0 (legacy_l3, key $KEY, csum)" \
    wait_for 20 ovs_ports_up "up0 in0" gre0

# ------------------------------------------------------------------------------------------------------------
# Capture on the wire: one dumpcap on each end of the veth, each keeping the frames that arrive from the other
# end (by source MAC), so each frame is captured once whatever the af_packet PMDs' qdisc bypass does.
# Full frames: tshark needs every byte to verify the GRE checksums.
# ------------------------------------------------------------------------------------------------------------
capture() { # capture NAME FILTER COMMAND-PREFIX...: dumpcap in the background, up once it says it is capturing
    local name=$1 filter=$2 log="$WORK/dumpcap-$1.log"
    shift 2
    "$@" timeout "$LIMIT" dumpcap -i "${IFACE}" -f "$filter" -w "$WORK/wire-$name.pcapng" >"$log" 2>&1 &
    CAP_PIDS+=($!)
    wait_for 10 grep -q "Capturing on" "$log" || { cat "$log"; return 1; }
}
start_captures() {
    IFACE=wire capture from-greway "ether src $GW_OUT_MAC" ip netns exec "$NS_O" &&
        IFACE=eo-gw-out capture from-ovs "ether src $OVS_PHY_MAC" env
}
check "capture on the wire: dumpcap on both ends of the greway-OVS veth (frames from greway, frames from OVS)" \
    start_captures

# ------------------------------------------------------------------------------------------------------------
# greway
# ------------------------------------------------------------------------------------------------------------
start_gw() {
    local log="$WORK/greway.log" from attempt
    touch "$log"
    for attempt in 1 2 3; do
        from=$(($(wc -l <"$log") + 1))
        "$GREWAY" --log info run --config "$CFG" --quiet --stats-json "$WORK/greway.json" >>"$log" 2>&1 &
        GW_PID=$!
        for _ in $(seq 100); do
            tail -n +"$from" "$log" 2>/dev/null | grep -q "worker 0 on core" && return 0
            kill -0 "$GW_PID" 2>/dev/null || break
            sleep 0.1
        done
        # DPDK 22.11's af_packet PMD names its PACKET_FANOUT group pid ^ ifindex: a collision with another
        # process's group in this namespace (a concurrent run of another test) is refused. A new pid fixes it.
        if kill -0 "$GW_PID" 2>/dev/null || ! tail -n +"$from" "$log" | grep -q "could not set PACKET_FANOUT"; then
            break
        fi
        wait "$GW_PID" 2>/dev/null
    done
    tail -n 20 "$log"
    return 1
}
check "greway started (af_packet ports up, worker running; tunnel to-ovs: key $KEY, checksum)" start_gw
[ "$FAIL" -eq 0 ] || finish

# ------------------------------------------------------------------------------------------------------------
# Neighbours, resolved before the counted traffic (conditions polled, no fixed sleeps):
# - OVS resolves its tunnel next hop (greway, 192.0.2.1) by ARP from br-phy. It drops the packets that find no
#   neighbour (no hold queue for tunnel neighbours), and the datapath flow it installed for them may keep dropping
#   until its revalidator re-translates it (seen here: up to 2 s after the neighbour was learned). So hostB pings
#   hostA until OVS's table has greway's MAC and a ping is answered.
# - greway resolves 192.0.2.2 (br-phy) and hostA by ARP, holding the first packets meanwhile.
# ------------------------------------------------------------------------------------------------------------
ovs_knows_greway() {
    appctl tnl/neigh/show | grep -Eiq "^192\.0\.2\.1 +$GW_OUT_MAC +br-phy"
}
RESOLVE=""
resolve() {
    local n answered
    for n in $(seq 60); do
        answered=0
        nsb ping -n -c 1 -W 0.5 10.1.0.2 >"$WORK/resolve-ping.out" 2>&1 && answered=1
        RESOLVE="$RESOLVE $([ $answered = 1 ] && echo answered || echo lost)"
        [ $answered = 1 ] && ovs_knows_greway && break
    done
    appctl tnl/neigh/show
    ovs_knows_greway && [ $answered = 1 ]
}
check "OVS resolved its tunnel next hop by ARP (tnl/neigh/show: 192.0.2.1 at greway's $GW_OUT_MAC on br-phy), \
and hostB's ping to hostA is answered" resolve
say "      hostB's pings until then:$RESOLVE"
# OVS's own accounting from here on: its datapath drop counters (coverage/show lists those that were hit) and the
# log position, compared at the end.
ovs_drop_counters() { appctl coverage/show | awk '$1 ~ /^datapath_drop_/ { print $1, $NF }' | sort; }
ovs_drop_counters >"$WORK/ovs-drops-before.txt"
OVS_LOG_FROM=$(($(wc -l <"$OVS_D/ovs-vswitchd.log") + 1))

# ------------------------------------------------------------------------------------------------------------
# Ping both ways, both inner families; the largest packets both ways (the tunnel MTU, 1468, agreed by both ends)
# ------------------------------------------------------------------------------------------------------------
ping_all() { # ping_all NS COUNT ARGS...: every echo request answered
    local ns=$1 count=$2 out got
    shift 2
    out=$(ip netns exec "$ns" timeout 20 ping -n -c "$count" -i 0.2 -W 2 "$@" 2>&1)
    got=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
    printf '%s\n' "$out" | tail -n 3
    [ "${got:-0}" -eq "$count" ] || {
        echo "$((count - ${got:-0})) of $count echo requests unanswered"
        return 1
    }
}
check "ping hostA -> hostB, IPv4 inner (10.1.0.2 -> 10.2.0.2): greway encapsulates, OVS decapsulates" \
    ping_all "$NS_A" 5 10.2.0.2
check "ping hostB -> hostA, IPv4 inner (10.2.0.2 -> 10.1.0.2): OVS encapsulates, greway decapsulates" \
    ping_all "$NS_B" 5 10.1.0.2
check "ping hostA -> hostB, IPv6 inner (2001:db8:1::2 -> 2001:db8:2::2)" ping_all "$NS_A" 5 -6 2001:db8:2::2
check "ping hostB -> hostA, IPv6 inner (2001:db8:2::2 -> 2001:db8:1::2)" ping_all "$NS_B" 5 -6 2001:db8:1::2
check "ping hostA -> hostB, DF, 1468-byte IPv4 (the tunnel MTU: a 1514-byte frame on the wire)" \
    ping_all "$NS_A" 3 -M do -s 1440 10.2.0.2
check "ping hostB -> hostA, DF, 1468-byte IPv4 (OVS's 1514-byte frames decapsulated by greway)" \
    ping_all "$NS_B" 3 -M do -s 1440 10.1.0.2
check "ping hostB -> hostA, 1468-byte IPv6" ping_all "$NS_B" 3 -6 -s 1420 2001:db8:1::2
frag_needed() { # one byte more than the tunnel MTU: greway answers "fragmentation needed" with mtu 1468
    local out
    out=$(nsa timeout 10 ping -n -c 2 -i 0.3 -W 1 -M do -s 1441 10.2.0.2 2>&1)
    printf '%s\n' "$out" | head -n 4
    printf '%s\n' "$out" | grep -Eq "mtu ?= ?1468"
}
check "ping hostA -> hostB, DF, 1469-byte IPv4: greway answers 'frag needed' with mtu 1468" frag_needed

# ------------------------------------------------------------------------------------------------------------
# TCP both ways, both inner families: 2 MB of random bytes, compared byte for byte at the receiver
# ------------------------------------------------------------------------------------------------------------
head -c 2M /dev/urandom >"$WORK/payload"
cat >"$WORK/xfer.py" <<'PY'
import socket, sys
mode = sys.argv[1]
if mode == "recv":  # recv PORT OUTFILE: one connection, everything it carries into OUTFILE
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(sys.argv[2])))
    s.listen(1)
    s.settimeout(15)
    c, peer = s.accept()
    c.settimeout(15)
    n = 0
    with open(sys.argv[3], "wb") as f:
        while True:
            d = c.recv(65536)
            if not d:
                break
            f.write(d)
            n += len(d)
    print(f"received {n} bytes from {peer[0]}")
else:  # send HOST PORT INFILE
    data = open(sys.argv[4], "rb").read()
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=15)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)  # the receiver's close
    print(f"sent {len(data)} bytes to {sys.argv[2]}")
PY
PORT=7000
tcp_transfer() { # tcp_transfer FROM_NS TO_NS TO_ADDR: the bytes received equal the bytes sent
    local from=$1 to=$2 addr=$3 srv out="$WORK/received-$PORT"
    PORT=$((PORT + 1))
    ip netns exec "$to" timeout 25 python3 "$WORK/xfer.py" recv "$PORT" "$out" >"$WORK/srv-$PORT.log" 2>&1 &
    srv=$!
    echo "$srv" >"$WORK/srv-$PORT.pid"
    wait_for 10 sh -c "ip netns exec $to ss -Hltn 'sport = :$PORT' | grep -q LISTEN" || {
        echo "receiver not listening"
        return 1
    }
    ip netns exec "$from" timeout 25 python3 "$WORK/xfer.py" send "$addr" "$PORT" "$WORK/payload" || return 1
    wait "$srv"
    rm -f "$WORK/srv-$PORT.pid"
    cat "$WORK/srv-$PORT.log"
    cmp "$WORK/payload" "$out" && echo "content identical ($(sha256sum <"$out" | cut -c1-16)...)"
}
check "TCP hostA -> hostB, IPv4 inner: 2 MB, content identical" tcp_transfer "$NS_A" "$NS_B" 10.2.0.2
check "TCP hostB -> hostA, IPv4 inner: 2 MB, content identical" tcp_transfer "$NS_B" "$NS_A" 10.1.0.2
check "TCP hostA -> hostB, IPv6 inner: 2 MB, content identical" tcp_transfer "$NS_A" "$NS_B" 2001:db8:2::2
check "TCP hostB -> hostA, IPv6 inner: 2 MB, content identical" tcp_transfer "$NS_B" "$NS_A" 2001:db8:1::2

for p in "${CAP_PIDS[@]}"; do stop_pid "$p"; done
CAP_PIDS=()

# ------------------------------------------------------------------------------------------------------------
# TCP throughput both ways (iperf3, not captured: informative, and a check that sustained traffic flows)
# ------------------------------------------------------------------------------------------------------------
THROUGHPUT=""
iperf_dir() { # iperf_dir LABEL ARGS...: a 2-second iperf3 run from hostA to hostB's one-shot server
    local label=$1 json="$WORK/iperf-$1.json"
    shift
    nsb iperf3 -s -D -1 -p 5201 -I "$WORK/srv-iperf.pid" --logfile "$WORK/iperf-s.log" >/dev/null 2>&1
    wait_for 10 sh -c "ip netns exec $NS_B ss -Hltn 'sport = :5201' | grep -q LISTEN" || return 1
    nsa timeout 15 iperf3 -c 10.2.0.2 -p 5201 -t 2 -J "$@" >"$json" 2>&1 || {
        jq -r '.error // empty' "$json" 2>/dev/null || tail -n 5 "$json"
        return 1
    }
    wait_for 5 sh -c "! kill -0 \$(cat $WORK/srv-iperf.pid 2>/dev/null) 2>/dev/null"
    rm -f "$WORK/srv-iperf.pid"
    local r
    r=$(jq -r '"\(.end.sum_received.bits_per_second / 1e6 | floor) Mbit/s, \(.end.sum_sent.retransmits) retransmits"' "$json")
    echo "$r"
    THROUGHPUT="$THROUGHPUT $label: $r;"
    [ "$(jq -r '.end.sum_received.bytes' "$json")" -gt 0 ]
}
check "iperf3 hostA -> hostB (greway encapsulates), 2 s" iperf_dir a-to-b
check "iperf3 hostB -> hostA (OVS encapsulates; iperf3 -R), 2 s" iperf_dir b-to-a -R

# ------------------------------------------------------------------------------------------------------------
# tshark on the wire
# ------------------------------------------------------------------------------------------------------------
TS="$WORK/wire.tsv"
for c in from-greway from-ovs; do
    tshark -r "$WORK/wire-$c.pcapng" -n -T fields -E separator=/t -E occurrence=f \
        -e frame.number -e eth.src -e eth.type -e ip.src -e ip.dst -e ip.proto -e gre.flags.checksum \
        -e gre.flags.key -e gre.flags.sequence_number -e gre.flags.version -e gre.key -e gre.checksum \
        -e gre.checksum.status -e gre.proto -e frame.len 2>>"$WORK/tshark.err" | sed "s/^/$c\t/"
done >"$TS"
# The inner packets of the GRE frames: with occurrence=a, ip.src of an IPv4-in-IPv4 frame is "outer,inner".
TS_IN="$WORK/wire-inner.tsv"
for c in from-greway from-ovs; do
    tshark -r "$WORK/wire-$c.pcapng" -n -Y gre -T fields -E separator=/t -E occurrence=a -E aggregator=, \
        -e frame.number -e gre.proto -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e icmp.type -e icmpv6.type \
        -e tcp.srcport 2>>"$WORK/tshark.err" | sed "s/^/$c\t/"
done >"$TS_IN"
# wire.tsv columns: 1 capture 2 frame 3 eth.src 4 eth.type 5 ip.src 6 ip.dst 7 ip.proto 8 C 9 K 10 S 11 version
#                   12 gre.key 13 gre.checksum 14 gre.checksum.status 15 gre.proto 16 frame.len
KEY_HEX=$(printf '0x%08x' "$KEY")
gre_count() { awk -F'\t' -v c="$1" '$7 == 47 && (c == "" || $1 == c)' "$TS" | wc -l; }
say "      wire: $(gre_count "") GRE frames ($(gre_count from-greway) from greway, $(gre_count from-ovs) from OVS), $(
    awk -F'\t' '$4 == "0x0806"' "$TS" | wc -l) ARP, $(wc -l <"$TS") frames in all"
# Each check prints at most 10 offending frames and fails on any.
ts_directions() {
    awk -F'\t' '$7 == 47 { d[$1 " " $5 ">" $6]++ } END { for (k in d) print k, d[k]
        exit !(d["from-greway 192.0.2.1>192.0.2.2"] > 100 && d["from-ovs 192.0.2.2>192.0.2.1"] > 100 && length(d) == 2) }' "$TS"
}
ts_key() {
    awk -F'\t' -v key="$KEY_HEX" '$7 == 47 { n++; if ($9 != "1" || $12 != key) { if (bad++ < 10) print $1 " frame " $2 ": K=" $9 " key=" $12 } }
        END { print n " GRE frames, " bad + 0 " without key " key; exit bad > 0 || n == 0 }' "$TS"
}
ts_checksum() {
    awk -F'\t' '$7 == 47 { n++; if ($8 != "1" || $13 == "" || $14 != "1") {
            if (bad++ < 10) print $1 " frame " $2 ": C=" $8 " checksum=" $13 " status=" $14 } }
        END { print n " GRE frames, " bad + 0 " without a good checksum"; exit bad > 0 || n == 0 }' "$TS"
}
ts_l3() {
    awk -F'\t' '$7 == 47 { p[$1 " " $15]++
            if ($10 != "0" || $11 != "0" || ($15 != "0x0800" && $15 != "0x86dd")) {
                if (bad++ < 10) print $1 " frame " $2 ": S=" $10 " version=" $11 " protocol=" $15 } }
        END { for (k in p) print k, p[k]; exit bad > 0 || length(p) != 4 }' "$TS"
}
ts_largest() {
    awk -F'\t' '$7 == 47 { if ($16 > m[$1]) m[$1] = $16 } END { for (k in m) print k, "largest", m[k]
        exit !(m["from-greway"] == 1514 && m["from-ovs"] == 1514) }' "$TS"
}
# inner.tsv columns: 1 capture 2 frame 3 gre.proto 4 ip.src 5 ip.dst 6 ipv6.src 7 ipv6.dst 8 icmp.type
#                    9 icmpv6.type 10 tcp.srcport
ts_inner() { # every inner packet goes from the sender's host to the other host; echo and TCP both ways, both families
    awk -F'\t' '{
            if ($3 == "0x0800") { split($4, s, ","); split($5, d, ","); src = s[2]; dst = d[2]; fam = "ipv4" }
            else { src = $6; dst = $7; fam = "ipv6" }
            want_src = ($1 == "from-greway") ? "^(10\\.1\\.0\\.2|2001:db8:1::2)$" : "^(10\\.2\\.0\\.2|2001:db8:2::2)$"
            want_dst = ($1 == "from-greway") ? "^(10\\.2\\.0\\.2|2001:db8:2::2)$" : "^(10\\.1\\.0\\.2|2001:db8:1::2)$"
            if (src !~ want_src || dst !~ want_dst) { if (bad++ < 10) print $1 " frame " $2 ": inner " src " > " dst }
            t = ($8 != "") ? $8 : $9
            if (t == 8 || t == 128) seen[$1 " " fam " echo-request"]++
            if (t == 0 || t == 129) seen[$1 " " fam " echo-reply"]++
            if ($10 != "") seen[$1 " " fam " tcp"]++ }
        END { for (k in seen) print k, seen[k]; exit bad > 0 || length(seen) != 12 }' "$TS_IN"
}
ts_only_gre_arp() {
    awk -F'\t' '!($7 == 47 || $4 == "0x0806") { if (bad++ < 10) print $1 " frame " $2 ": type " $4 " proto " $7 }
        END { exit bad > 0 }' "$TS"
}
check "tshark: GRE from greway (192.0.2.1 -> 192.0.2.2) and from OVS (192.0.2.2 -> 192.0.2.1)" ts_directions
check "tshark: every GRE packet, both ways, has the key $KEY (gre.key)" ts_key
check "tshark: every GRE packet, both ways, has a checksum, verified good (gre.checksum.status == 1)" ts_checksum
check "tshark: L3 GRE both ways (version 0, no sequence number, protocol IPv4/IPv6, never Ethernet 0x6558)" ts_l3
check "tshark: the largest frames both ways are 1514 bytes (1468-byte inner packet + 32 bytes of outer IPv4 and GRE)" \
    ts_largest
check "tshark: inside the GRE packets, only hostA <-> hostB; ICMP echo and TCP both ways, IPv4 and IPv6" ts_inner
check "tshark: nothing but GRE and ARP on the wire" ts_only_gre_arp

# ------------------------------------------------------------------------------------------------------------
# Both ends' own accounting
# ------------------------------------------------------------------------------------------------------------
ovs_no_drops() { # since the neighbours were resolved: no datapath drop counter grew, no tunnel warning logged
    ovs_drop_counters >"$WORK/ovs-drops-after.txt"
    echo "datapath drop counters after the neighbours were resolved:"
    sed 's/^/  /' "$WORK/ovs-drops-before.txt"
    echo "at the end:"
    sed 's/^/  /' "$WORK/ovs-drops-after.txt"
    tail -n +"$OVS_LOG_FROM" "$OVS_D/ovs-vswitchd.log" | grep -E '\|tunnel|\|WARN\|.*(tnl|tunnel|csum|checksum)' | head -n 5 |
        grep . && return 1
    diff -q "$WORK/ovs-drops-before.txt" "$WORK/ovs-drops-after.txt" >/dev/null
}
check "OVS: no datapath drop, no tunnel warning (e.g. 'receive tunnel port not found') after the neighbours were resolved" \
    ovs_no_drops
for i in gre0 up0 in0; do say "      OVS $i statistics: $(vsctl get interface $i statistics 2>/dev/null)"; done
stop_pid "$GW_PID"
GW_PID=""
greway_stats() { # greway_stats: the tunnel carried traffic both ways; no GRE-level drop; no mbuf leaked
    jq -c '{to_ovs: .tunnels["to-ovs"], drops: (.drops | with_entries(select(.value > 0))), mempool}' \
        "$WORK/greway.json" || return 1
    jq -e '.tunnels["to-ovs"].encap > 1000 and .tunnels["to-ovs"].decap > 1000
        and ([.drops.bad_checksum, .drops.missing_checksum, .drops.key_mismatch, .drops.unknown_tunnel,
              .drops.unsupported_gre_protocol, .drops.gre_reserved_bits, .drops.bad_gre_version,
              .drops.tx_full] | add) == 0
        and .mempool.free_at_end == .mempool.free_at_start' "$WORK/greway.json" >/dev/null
}
check "greway: tunnel to-ovs encapsulated and decapsulated, no checksum/key/GRE drops, no tx_full, no mbuf leaked" \
    greway_stats

# ------------------------------------------------------------------------------------------------------------
# Teardown, then nothing left behind
# ------------------------------------------------------------------------------------------------------------
OVS_PIDS="$(pidfile "$OVS_D/vswitchd.pid") $(pidfile "$OVS_D/db.pid")"
teardown
leftovers() {
    local bad=0 p
    for p in $OVS_PIDS; do kill -0 "$p" 2>/dev/null && { echo "process $p still running"; bad=1; }; done
    ip netns list | grep -E '^eo-' && bad=1
    ip -o link show | grep -E ': eo-' && bad=1
    ls -d /var/run/dpdk/greway-e2e-ovs* 2>/dev/null && bad=1
    return $bad
}
check "teardown: no namespace, veth, TAP, OVS or greway process, or DPDK run directory left" leftovers
say "      TCP throughput:$THROUGHPUT"
finish
