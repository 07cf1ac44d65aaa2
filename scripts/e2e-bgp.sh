#!/usr/bin/env bash
# End-to-end: greway as a router driven by BGP. Two greways joined by a GRE tunnel with addresses on it (a /29
# from 169.254.0.0/16, as AWS Transit Gateway Connect uses); each has [host] in a namespace of its own, where FRR
# runs BGP and BFD between the tunnel addresses, through greway's host interfaces and punt path. Neither greway
# has a route to the far side in its configuration: each learns it from its namespace's kernel table, where FRR
# puts what BGP taught ([host] routes = "learn").
#
#   netns bgp-hA                                                               netns bgp-hB
#   hostA 10.1.0.2/24 (default via 10.1.0.1)                 hostB 10.2.0.2/24 (default via 10.2.0.1)
#        | veth                                                                      | veth
#    bgp-ga-in                                                                   bgp-gb-in
#   +-----------+  greway A (DPDK, root namespace)      greway B   +-----------+
#   |    gwA    |  inside 10.1.0.1/24, outside 192.0.2.1/24        |    gwB    |  inside 10.2.0.1/24, 192.0.2.2/24
#   +-----------+  tunnel tgw 169.254.100.1/29  ==GRE==  169.254.100.2/29  +-----------+
#    bgp-ga-out          |                                          |    bgp-gb-out
#        +---- ga ---[ br0 in netns bgp-wan ]--- gb ---------------------+
#   host interfaces (TUN) inside/outside/tgw in netns bgp-gwa and bgp-gwb, with FRR (AS 65001 / AS 65002) there:
#   BGP 169.254.100.1 <-> 169.254.100.2 over the tunnel, each announcing its inside /24; BFD 300 ms x 3.
#
# Checks: BGP Established over the tunnel; the learned routes in `greway ctl route show` (origin kernel); ping and
# iperf3 between the hosts over them; a withdrawal leaves greway within 2 s and its traffic is then `no_route`;
# a SYN flood to the gateway's address is limited to punt_pps and counted, and BGP and BFD stay up; BFD sees the
# far greway stop within 1 s; the far greway, restarted while FRR runs, relearns its routes and traffic flows.
# Needs root and FRR (scripts/install-deps.sh). Prints PASS/FAIL lines and "N passed, N failed"; exits non-zero on
# any failure. Everything it creates (namespaces, veths, FRR instances and their /etc/frr/NAME, processes) is
# removed on exit.
#
# Usage: scripts/e2e-bgp.sh                 (builds target/release/greway if missing)
#        E2E_KEEP_LOGS=1 scripts/e2e-bgp.sh  keep the work directory (greway logs, stats) for inspection
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$HOME/.cargo/bin:$PATH"

GREWAY="${CARGO_TARGET_DIR:-$ROOT/target}/release/greway"
NS_A=bgp-hA
NS_B=bgp-hB
NS_W=bgp-wan
WORK=$(mktemp -d /tmp/greway-e2e-bgp.XXXXXX)
PASS=0
FAIL=0
declare -A GW_PID=([a]="" [b]="")
FRR_INIT=/usr/lib/frr/frrinit.sh
BFD_RX_MS=300
BFD_MULT=3
PUNT_PPS=1000
T0=$(date +%s)

# say, pass, fail, check, stop_pid, pidfile (wait_for: its own, below)
. scripts/e2e-lib.sh
check_shown() { sed 's/^/      /' | tail -n 3; } # of a passing check: its last 3 lines
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sock() { echo "/run/greway-bgp-$1.sock"; }
ctl() { "$GREWAY" ctl --socket "$(sock "$1")" "${@:2}"; }
vty() { vtysh -N "bgp-gw$1" -c "$2"; }

links() { echo bgp-ga-in bgp-ga-out bgp-gb-in bgp-gb-out; }
namespaces() { echo "$NS_A $NS_B $NS_W bgp-gwa bgp-gwb"; }

cleanup() {
    set +e
    [ -f "$WORK/iperf-s.pid" ] && kill "$(cat "$WORK/iperf-s.pid")" 2>/dev/null
    stop_pid "${GW_PID[a]}"
    stop_pid "${GW_PID[b]}"
    for g in a b; do
        [ -d "/etc/frr/bgp-gw$g" ] && "$FRR_INIT" stop "bgp-gw$g" >/dev/null 2>&1
        rm -rf "/etc/frr/bgp-gw$g" "/var/run/frr/bgp-gw$g"
        rm -f "$(sock $g)"
        rm -rf "/var/run/dpdk/greway-bgp-$g"
    done
    for l in $(links); do ip link del "$l" 2>/dev/null; done
    for n in $(namespaces); do ip netns del "$n" 2>/dev/null; done
    if [ "${E2E_KEEP_LOGS:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
    say "e2e-bgp took $(($(date +%s) - T0)) s"
    say "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

# wait_for SECONDS command...: poll the command every 50 ms until it succeeds; fails after SECONDS, silently (the
# checks pass it to subshells with declare -f; it replaces e2e-lib.sh's, which polls every 100 ms and shows the last
# try's output)
wait_for() {
    local limit=$1
    shift
    local end=$(($(now_ms) + limit * 1000))
    until "$@" >/dev/null 2>&1; do
        [ "$(now_ms)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

if [ "$(id -u)" != 0 ]; then
    fail "e2e-bgp needs root (network namespaces, veth, af_packet, TUN)"
    finish
fi
for t in ip ethtool ping iperf3 jq vtysh python3 "$FRR_INIT"; do
    command -v "$t" >/dev/null || { fail "missing tool: $t (run scripts/install-deps.sh)"; finish; }
done
if [ ! -x "$GREWAY" ]; then
    say "== cargo build --release"
    cargo build --release || { fail "cargo build --release"; finish; }
fi

# Leftovers of an interrupted earlier run would make the setup fail.
for g in a b; do [ -d "/etc/frr/bgp-gw$g" ] && "$FRR_INIT" stop "bgp-gw$g" >/dev/null 2>&1; done
for l in $(links); do ip link del "$l" 2>/dev/null; done
for n in $(namespaces); do ip netns del "$n" 2>/dev/null; done

# ------------------------------------------------------------------------------------------------------------
# Topology, FRR configuration
# ------------------------------------------------------------------------------------------------------------
setup() {
    set -e
    for n in $(namespaces); do
        ip netns add "$n"
        ip netns exec "$n" ip link set lo up
    done
    ip netns exec "$NS_W" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add bgp-ga-in type veth peer name eth0 netns "$NS_A"
    ip link add bgp-gb-in type veth peer name eth0 netns "$NS_B"
    ip link add bgp-ga-out type veth peer name ga netns "$NS_W"
    ip link add bgp-gb-out type veth peer name gb netns "$NS_W"
    for l in $(links); do
        # The root ends belong to DPDK (af_packet): no addresses, no IPv6 of the kernel's own, no offloads.
        sysctl -qw "net.ipv6.conf.$l.disable_ipv6=1"
        ethtool -K "$l" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
        ip link set "$l" mtu 1500 up
    done
    ip netns exec "$NS_W" ip link add br0 type bridge stp_state 0 mcast_snooping 0
    for l in ga gb; do
        ip netns exec "$NS_W" ethtool -K "$l" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
        ip netns exec "$NS_W" ip link set "$l" master br0 up
    done
    ip netns exec "$NS_W" ip link set br0 up
    local ns n
    for n in 1 2; do
        if [ $n = 1 ]; then ns=$NS_A; else ns=$NS_B; fi
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" ethtool -K eth0 rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
        ip netns exec "$ns" ip link set eth0 mtu 1500 up
        ip netns exec "$ns" ip addr add "10.$n.0.2/24" dev eth0
        ip netns exec "$ns" ip route add default via "10.$n.0.1"
    done
    for g in a b; do ip netns exec "bgp-gw$g" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
    set +e
}

# frr_config a|b: /etc/frr/bgp-gwX for FRR in namespace bgp-gwX (watchfrr --netns enters it)
frr_config() {
    local g=$1 me peer as peer_as net
    if [ "$g" = a ]; then me=1 peer=2 as=65001 peer_as=65002 net=10.1.0.0/24; else
        me=2 peer=1 as=65002 peer_as=65001 net=10.2.0.0/24
    fi
    local d=/etc/frr/bgp-gw$g
    mkdir -p "$d" "$WORK/frr"
    chmod 755 "$WORK"
    chown frr:frr "$WORK/frr"
    cat >"$d/daemons" <<EOF
bgpd=yes
bfdd=yes
vtysh_enable=yes
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   -A 127.0.0.1"
bfdd_options="   -A 127.0.0.1"
staticd_options="-A 127.0.0.1"
watchfrr_options="--netns"
EOF
    cat >"$d/vtysh.conf" <<EOF
service integrated-vtysh-config
EOF
    # The recipe's configuration (docs/recipes/aws-tgw-connect.md), with this test's addresses.
    cat >"$d/frr.conf" <<EOF
frr defaults traditional
hostname bgp-gw$g
log file $WORK/frr/bgp-gw$g.log informational
no zebra nexthop kernel enable
!
bfd
 profile tunnel
  receive-interval $BFD_RX_MS
  transmit-interval $BFD_RX_MS
  detect-multiplier $BFD_MULT
 exit
exit
!
router bgp $as
 bgp router-id 169.254.100.$me
 no bgp ebgp-requires-policy
 neighbor 169.254.100.$peer remote-as $peer_as
 neighbor 169.254.100.$peer bfd profile tunnel
 neighbor 169.254.100.$peer timers 3 9
 neighbor 169.254.100.$peer timers connect 1
 address-family ipv4 unicast
  network $net
 exit-address-family
exit
EOF
    chown -R frr:frr "$d"
    chmod 640 "$d"/*
}

start_gw() { # start_gw a|b
    local g=$1 cfg="$ROOT/dpdk-config/e2e/bgp-$1.toml" log="$WORK/gw-$1.log" pid from
    touch "$log"
    for _ in 1 2 3; do
        from=$(($(wc -l <"$log") + 1))
        "$GREWAY" --log info run --config "$cfg" --quiet --stats-json "$WORK/gw-$g.json" >>"$log" 2>&1 &
        pid=$!
        GW_PID[$g]=$pid
        for _ in $(seq 100); do
            tail -n +"$from" "$log" 2>/dev/null | grep -q "worker 0 on core" && [ -S "$(sock "$g")" ] && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        # DPDK 22.11's af_packet PMD names its PACKET_FANOUT group pid ^ ifindex; a collision with the other
        # gateway's group is refused by the kernel: a new pid is a new group (see scripts/e2e.sh).
        if kill -0 "$pid" 2>/dev/null || ! tail -n +"$from" "$log" | grep -q "could not set PACKET_FANOUT"; then
            break
        fi
        wait "$pid" 2>/dev/null
    done
    say "greway $g did not start; its log:"
    sed 's/^/      /' "$log" | tail -n 20
    return 1
}

# learned G PREFIX: greway G has PREFIX as a route into tunnel tgw, origin kernel
learned() {
    ctl "$1" route show | jq -e --arg p "$2" \
        '[.. | objects | select(.prefix? == $p and .tunnel? == "tgw" and .origin? == "kernel")] | length == 1'
}
not_learned() { ! learned "$@"; }
bgp_up() { vty "$1" "show bgp summary json" | jq -e '.ipv4Unicast.peers[].state == "Established"'; }
bfd_state() { vty "$1" "show bfd peers json" | jq -r '.[] | select(.peer | startswith("169.254.100.")) | .status'; }
bfd_is() { [ "$(bfd_state "$1")" = "$2" ]; }
stat() { ctl "$1" stats | jq -r "$2"; }

if ! (setup) >"$WORK/setup.log" 2>&1; then
    fail "topology setup (namespaces, veth, bridge)"
    sed 's/^/      /' "$WORK/setup.log"
    finish
fi
pass "topology: hosts, wan bridge, gateway namespaces bgp-gwa and bgp-gwb"

if start_gw a && start_gw b; then
    pass "greway A and B started, host interfaces in bgp-gwa / bgp-gwb"
else
    fail "greway A and B started"
    finish
fi
check "host interfaces inside, outside, tgw exist with greway's addresses (tgw 169.254.100.1/29 in bgp-gwa)" \
    bash -c "ip -n bgp-gwa -br addr show dev tgw | grep -q 169.254.100.1/29 &&
             ip -n bgp-gwa -br addr show dev inside | grep -q 10.1.0.1/24 &&
             ip -n bgp-gwb -br addr show dev tgw | grep -q 169.254.100.2/29"

for g in a b; do frr_config "$g"; done
if "$FRR_INIT" start bgp-gwa >"$WORK/frr.log" 2>&1 && "$FRR_INIT" start bgp-gwb >>"$WORK/frr.log" 2>&1; then
    pass "FRR started in bgp-gwa and bgp-gwb (frrinit.sh, watchfrr --netns; no systemd)"
else
    fail "FRR started"
    sed 's/^/      /' "$WORK/frr.log" | tail -n 20
    finish
fi

# ------------------------------------------------------------------------------------------------------------
# BGP over the tunnel; routes only BGP taught
# ------------------------------------------------------------------------------------------------------------
t=$(now_ms)
check "BGP Established between 169.254.100.1 and .2, over the GRE tunnel, within 60 s" \
    bash -c "$(declare -f wait_for now_ms bgp_up vty); wait_for 60 bgp_up a && wait_for 60 bgp_up b"
say "      BGP up after $(($(now_ms) - t)) ms"
check "BFD up on both ends (${BFD_RX_MS} ms x ${BFD_MULT})" \
    bash -c "$(declare -f wait_for now_ms bfd_is bfd_state vty); wait_for 20 bfd_is a up && wait_for 20 bfd_is b up"
check "neither greway config has a route to the far inside subnet" \
    bash -c "! grep -q '10\.2\.0' dpdk-config/e2e/bgp-a.toml && ! grep -q '10\.1\.0' dpdk-config/e2e/bgp-b.toml"
check "kernel of bgp-gwa has 10.2.0.0/24 via 169.254.100.2 dev tgw proto bgp (from FRR)" \
    bash -c "$(declare -f wait_for now_ms); wait_for 10 sh -c 'ip -n bgp-gwa route show 10.2.0.0/24 | grep -q \"via 169.254.100.2 dev tgw proto bgp\"'"
export GREWAY
check "greway A learned 10.2.0.0/24 into tgw, greway B 10.1.0.0/24 (ctl route show: origin kernel)" \
    bash -c "$(declare -f wait_for now_ms learned ctl sock); wait_for 10 learned a 10.2.0.0/24 && wait_for 10 learned b 10.1.0.0/24"
ctl a route show | jq -c '.tunnel_routes' | sed 's/^/      greway A: /'

ping_ok() { # ping_ok NS COUNT MIN ARGS...
    local ns=$1 count=$2 min=$3
    shift 3
    local out got
    out=$(ip netns exec "$ns" ping -n -c "$count" -i 0.2 -W 1 "$@" 2>&1)
    got=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
    printf '%s\n' "$out" | tail -n 2
    [ "${got:-0}" -ge "$min" ] || { echo "only ${got:-0} of $count replies (need $min)"; return 1; }
}
check "ping hostA -> hostB over the learned routes" ping_ok "$NS_A" 5 4 10.2.0.2
check "ping hostB -> hostA over the learned routes" ping_ok "$NS_B" 5 4 10.1.0.2

iperf_ok() {
    ip netns exec "$NS_B" iperf3 -s -D -1 -I "$WORK/iperf-s.pid" || return 1
    wait_for 5 ip netns exec "$NS_B" sh -c 'ss -ltn | grep -q :5201'
    ip netns exec "$NS_A" timeout 20 iperf3 -c 10.2.0.2 -t 3 -J >"$WORK/iperf.json" 2>&1
    jq -r '"\(.end.sum_received.bits_per_second / 1e6 | floor) Mbit/s received, \(.end.sum_sent.retransmits) retransmits"' \
        "$WORK/iperf.json"
    [ "$(jq -r '.end.sum_received.bytes' "$WORK/iperf.json")" -gt 0 ]
}
check "iperf3 TCP hostA -> hostB for 3 s over the learned routes" iperf_ok
check "BGP and BFD still up after iperf3" bash -c "$(declare -f bgp_up bfd_is bfd_state vty); bgp_up a && bfd_is a up"

# ------------------------------------------------------------------------------------------------------------
# Withdrawal
# ------------------------------------------------------------------------------------------------------------
withdraw() {
    vtysh -N bgp-gwb -c 'configure terminal' -c 'router bgp 65002' -c 'address-family ipv4 unicast' \
        -c "$1 network 10.2.0.0/24" >/dev/null
}
t=$(now_ms)
withdraw no
if wait_for 2 not_learned a 10.2.0.0/24; then
    pass "withdrawal of 10.2.0.0/24 by B's BGP left greway A within 2 s ($(($(now_ms) - t)) ms)"
else
    fail "withdrawal of 10.2.0.0/24 left greway A within 2 s"
fi
no_route_before=$(stat a '.drops.no_route')
ip netns exec "$NS_A" ping -n -c 3 -i 0.2 -W 1 10.2.0.2 >/dev/null 2>&1
no_route_drop() { [ "$(stat a '.drops.no_route')" -ge $((no_route_before + 3)) ]; }
check "then hostA -> 10.2.0.2 is dropped by greway A as no_route (3 pings counted)" \
    bash -c "$(declare -f wait_for now_ms no_route_drop stat ctl sock); no_route_before=$no_route_before; wait_for 3 no_route_drop"
withdraw ""
check "announced again: greway A relearns 10.2.0.0/24 and traffic flows" \
    bash -c "$(declare -f wait_for now_ms learned ctl sock ping_ok); wait_for 10 learned a 10.2.0.0/24 && ping_ok $NS_A 3 2 10.2.0.2"

# ------------------------------------------------------------------------------------------------------------
# SYN flood to the gateway's address: limited to punt_pps, counted; BGP and BFD survive
# ------------------------------------------------------------------------------------------------------------
cat >"$WORK/synflood.py" <<'EOF'
import random, socket, struct, sys, time
src, dst, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, 20)
# Paced at `rate` SYNs a second (many times punt_pps): a flood from elsewhere, not one that takes this 2-core
# machine's CPU from the routing daemons it is aimed at.
rate = float(sys.argv[5])
n, start = 0, time.time()
end = start + secs
while time.time() < end:
    ahead = n / rate - (time.time() - start)
    if ahead > 0:
        time.sleep(ahead)
    for _ in range(100):
        tcp = struct.pack("!HHIIBBHHH", random.randint(1024, 65535), port, random.getrandbits(32), 0, 5 << 4, 0x02,
                          64240, 0, 0)
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        s.sendto(tcp, (dst, 0))
        n += 1
print(n)
EOF
snap() { ctl a stats | jq -r '"\(.uptime_s) \(.drops.punt_rate_limited) \(.host.interfaces.inside.to_kernel)"'; }
bgp_uptime() { vty a "show bgp summary json" | jq '[.ipv4Unicast.peers[].peerUptimeMsec] | first'; }
bfd_uptime() { vty a "show bfd peers json" | jq '[.[] | select(.peer == "169.254.100.2") | .uptime] | first'; }
read -r u0 l0 k0 <<<"$(snap)"
bgp_before=$(bgp_uptime)
FLOOD_S=4
FLOOD_PPS=$((PUNT_PPS * 20))
sent=$(ip netns exec "$NS_A" nice -n 19 python3 "$WORK/synflood.py" 10.1.0.2 10.1.0.1 179 "$FLOOD_S" "$FLOOD_PPS")
sleep 1.2 # the status is refreshed once a second
read -r u1 l1 k1 <<<"$(snap)"
limited=$((l1 - l0))
to_kernel=$((k1 - k0))
# One worker: at most punt_pps a second over the window between the two status snapshots, plus the token bucket's
# burst (a tenth of a second's worth) and 0.2 s for the workers' snapshot cadence.
bound=$(awk -v u0="$u0" -v u1="$u1" -v pps="$PUNT_PPS" 'BEGIN { printf "%d", pps * (u1 - u0 + 0.2) + pps / 10 }')
say "      SYN flood (paced at $FLOOD_PPS/s, nice 19): $sent SYNs to 10.1.0.1:179 in ${FLOOD_S} s; over $(awk -v a="$u0" -v b="$u1" 'BEGIN{print b-a}') s to the kernel $to_kernel (bound $bound), punt_rate_limited $limited"
check "SYN flood limited to punt_pps = $PUNT_PPS and the excess counted as punt_rate_limited" \
    bash -c "[ $limited -gt 0 ] && [ $to_kernel -gt 0 ] && [ $to_kernel -le $bound ]"
bgp_after=$(bgp_uptime)
bfd_after=$(bfd_uptime)
say "      BGP uptime before/after the flood: $bgp_before / $bgp_after ms; BFD uptime after: $bfd_after s"
check "BGP session survived the flood (not reset) and BFD stayed up" \
    bash -c "$(declare -f bgp_up bfd_is bfd_state vty); bgp_up a && bfd_is a up && [ $bgp_after -gt $bgp_before ] && [ $bfd_after -ge $FLOOD_S ]"

# ------------------------------------------------------------------------------------------------------------
# BFD sees the far greway stop; that greway, restarted while FRR runs, relearns its routes
# ------------------------------------------------------------------------------------------------------------
t=$(now_ms)
kill -KILL "${GW_PID[b]}"
if wait_for 5 bfd_is a down; then
    dt=$(($(now_ms) - t))
    say "      BFD on A saw greway B stop after $dt ms (timers ${BFD_RX_MS} ms x ${BFD_MULT})"
    if [ "$dt" -le 1000 ]; then pass "BFD detected the far gateway stopping within 1 s ($dt ms)"; else
        fail "BFD detected the far gateway stopping within 1 s ($dt ms)"
    fi
else
    fail "BFD on A saw greway B stop"
fi
wait "${GW_PID[b]}" 2>/dev/null
check "BGP withdrew 10.2.0.0/24 after BFD went down: gone from greway A" \
    bash -c "$(declare -f wait_for now_ms not_learned learned ctl sock); wait_for 10 not_learned a 10.2.0.0/24"
t=$(now_ms)
if start_gw b; then pass "greway B restarted (FRR in bgp-gwb kept running)"; else fail "greway B restarted"; fi
check "restarted greway B relearned 10.1.0.0/24 (dump and changes), greway A relearned 10.2.0.0/24" \
    bash -c "$(declare -f wait_for now_ms learned ctl sock); wait_for 60 learned b 10.1.0.0/24 && wait_for 30 learned a 10.2.0.0/24"
say "      routes back $(($(now_ms) - t)) ms after greway B's restart"
diag() { # the routing state, when a check after the restart fails
    for g in a b; do
        say "      --- bgp-gw$g"
        vty "$g" "show bgp summary" | sed 's/^/      /' | tail -n 6
        vty "$g" "show bfd peers brief" | sed 's/^/      /' | tail -n 3
        ip -n "bgp-gw$g" route | sed 's/^/      /'
        ip -n "bgp-gw$g" -br addr | sed 's/^/      /'
    done
}
[ "$FAIL" -eq 0 ] || diag
check "after the restart: ping hostA -> hostB and back" \
    bash -c "$(declare -f ping_ok); ping_ok $NS_A 5 4 10.2.0.2 && ping_ok $NS_B 5 4 10.1.0.2"
check "greway B's status: route learning followed table 254, routes learned" \
    bash -c "$(declare -f stat ctl sock); stat b '.host.routes.table' | grep -qx 254 && [ \$(stat b '.host.routes.learned') -ge 1 ]"

stop_pid "${GW_PID[a]}"
stop_pid "${GW_PID[b]}"
check "greway A stopped cleanly; stats JSON shows the learned routes' traffic and no mbuf leaked" \
    jq -e '.mempool.free_at_end == .mempool.free_at_start and .drops.no_route >= 3' "$WORK/gw-a.json"
finish
