#!/usr/bin/env bash
# dpdk-dumpcap against a running greway: it must attach as a secondary process and capture what greway sends,
# which tshark must decode as the tunnel's GRE (key 42, outer 192.0.2.1 -> 198.51.100.7, inner IPv4/UDP), and
# the ingress port's packets as received, and a filtered capture only the packets its filter takes; then 8 more
# captures start and end while traffic flows, and greway must still exit cleanly (a crash prints gdb's backtrace
# of its core, kept in out/).
#
# Secondary processes need a hugepage primary with shared config, so this needs 2 MB hugepages: when fewer than
# 256 are free (or nothing is mounted) it runs itself through scripts/with-hugepages.sh, which reserves them
# (root) and gives them back at the end.
#
#   scripts/dumpcap.sh          (GREWAY=binary, default target/release/greway, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GREWAY=${GREWAY:-$ROOT/target/release/greway}
[[ -x $GREWAY ]] || cargo build --release --quiet
command -v dpdk-dumpcap >/dev/null || {
    echo "dumpcap check: dpdk-dumpcap not found (Debian package dpdk)" >&2
    exit 1
}

if (($(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo) < 256)) || ! grep -qs hugetlbfs /proc/mounts; then
    [[ -z ${GREWAY_DUMPCAP_RESERVED:-} ]] || {
        echo "dumpcap check: no hugepages after reserving them" >&2
        exit 1
    }
    exec env GREWAY_DUMPCAP_RESERVED=1 "$ROOT/scripts/with-hugepages.sh" "$ROOT/scripts/dumpcap.sh"
fi

dir=$(mktemp -d)
prefix="gw-dumpcap-$$"
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
    # Hugepage files of this run only (a primary without --huge-unlink leaves them for secondaries).
    for m in $(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts); do rm -f "$m/${prefix}"map_*; done
    rm -rf "/var/run/dpdk/$prefix" "$dir"
}
trap cleanup EXIT

# Inner traffic for the tunnel: IPv4/UDP from the inside host to 198.18.0.0/15, replayed forever.
/usr/bin/python3 - "$dir/in.pcap" <<'PY'
import sys
from scapy.all import IP, UDP, Ether, Raw, wrpcap
wrpcap(sys.argv[1], [
    Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:01")
    / IP(src="10.0.0.2", dst=f"198.18.0.{1 + i}", ttl=64) / UDP(sport=1024 + i, dport=9) / Raw(b"d" * 22)
    for i in range(16)
])
PY

cat >"$dir/greway.toml" <<EOF
[eal]
# Hugepages and shared config (no --no-huge, no --no-shconf, no --huge-unlink): secondaries can attach.
args = ["-l", "0-1", "--no-pci", "--file-prefix", "$prefix"]

[dataplane]
workers = [1]
# A light, steady load: capture copies every packet on the worker.
idle_sleep_us = 100

[[port]]
name = "inside"
device = "net_pcap0,rx_pcap=$dir/in.pcap,infinite_rx=1"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:01"

[[port]]
name = "outside"
device = "net_null0,no-rx=1"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"

[[tunnel]]
name = "t0"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 42
routes = ["198.18.0.0/15"]

[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"

[[route]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
port = "outside"
EOF

# A crash leaves a core file in $dir (when the kernel's core_pattern is a plain file name) for the backtrace
# printed below.
(
    cd "$dir"
    ulimit -c unlimited 2>/dev/null || true
    exec "$GREWAY" --log info run -c "$dir/greway.toml" --duration-s 60 >"$dir/greway.log" 2>&1
) &
pid=$!
for ((i = 0; i < 200; i++)); do
    grep -qs "worker 0 on core 1 as" "$dir/greway.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "worker 0 on core 1 as" "$dir/greway.log" || {
    echo "dumpcap check: greway did not start its worker:" >&2
    tail -20 "$dir/greway.log" >&2
    exit 1
}

fail=0
capture() { # port-device count file [dpdk-dumpcap options...]
    timeout 30 dpdk-dumpcap --file-prefix "$prefix" -i "$1" -c "$2" -w "$3" "${@:4}" >"$3.log" 2>&1 || {
        echo "dumpcap check: dpdk-dumpcap -i $1 failed:" >&2
        grep -vE "fbarray|release memory" "$3.log" | tail -5 >&2
        return 1
    }
}
# check LABEL PORT COUNT FILE DISPLAY-FILTER WHAT [dpdk-dumpcap options...]: a capture of at least COUNT packets
# of PORT, every one of them matching tshark's DISPLAY-FILTER (WHAT says what that is).
check() {
    local label=$1 port=$2 count=$3 file=$4 want=$5 what=$6 total match
    if capture "$port" "$count" "$file" "${@:7}"; then
        total=$(tshark -r "$file" 2>/dev/null | wc -l)
        match=$(tshark -r "$file" -Y "$want" 2>/dev/null | wc -l)
        echo "$label ($port): $total packets captured, $match $what"
        ((total >= count && match == total)) || fail=1
    else
        fail=1
    fi
}
# Egress: the encapsulated packets.
check egress net_null0 64 "$dir/out.pcapng" 'ip.src == 192.0.2.1 && ip.dst == 198.51.100.7 && gre.key == 42 &&
    ip.proto == 47 && ip.dst == 198.18.0.0/15 && udp.dstport == 9' \
    "decoded by tshark as GRE key 42 to 198.51.100.7 carrying the inner UDP"
# Ingress: the packets as received, before greway touches them.
check ingress net_pcap0 32 "$dir/in.pcapng" 'ip.src == 10.0.0.2 && udp.dstport == 9 && !gre && ip.ttl == 64' \
    "plain IPv4/UDP with TTL 64 (as sent)"
# A capture filter (libpcap syntax, run as eBPF on the worker): one destination of the sixteen.
check "filtered, dst host 198.18.0.3" net_pcap0 8 "$dir/filtered.pcapng" 'ip.dst == 198.18.0.3 && udp.dstport == 9' \
    "to 198.18.0.3" -f "udp and dst host 198.18.0.3"
# Captures ended while traffic flows, one after another: with DPDK 22.11's own capture server, about one end in a
# hundred crashed a loaded gateway (a worker still copying into the ring and mempool dpdk-dumpcap frees; see
# src/dpdk/capture.c).
for ((i = 0; i < 8; i++)); do
    capture net_null0 8 "$dir/cycle.pcapng" || { fail=1; break; }
done
echo "8 more captures of net_null0 started and ended"
# (greway may have died already: the wait below reports how.)
kill -INT "$pid" 2>/dev/null || true
rc=0
wait "$pid" || rc=$?
if ((rc != 0)); then
    echo "dumpcap check: greway exited with status $rc:" >&2
    tail -10 "$dir/greway.log" >&2
    for core in "$dir"/core*; do
        [[ -f $core ]] || continue
        if command -v gdb >/dev/null; then
            gdb -batch -ex "thread apply all bt 12" "$GREWAY" "$core" 2>/dev/null | grep -E "^#|^Thread" >&2
        fi
        # Kept for a closer look (the run's directory goes at exit).
        mkdir -p "$ROOT/out"
        mv "$core" "$ROOT/out/dumpcap-core.$pid"
        echo "dumpcap check: core file kept as out/dumpcap-core.$pid (binary $GREWAY)" >&2
    done
    fail=1
fi
pid=
[[ $fail == 0 ]] && echo "dumpcap check: ok" || echo "dumpcap check: FAILED" >&2
exit $fail
