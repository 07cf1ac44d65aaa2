#!/usr/bin/env bash
# The greway demo: no NIC, no hugepages. Two pcap virtual ports (dpdk-config/demo.toml):
#   inside : reads dpdk-config/pcap/inside.pcap  (plain IPv4 from host 10.0.0.2) -> writes out/demo-inside.pcap
#   outside: reads dpdk-config/pcap/outside.pcap (GRE from peer 198.51.100.7)    -> writes out/demo-outside.pcap
# greway processes both files, stops when idle, writes out/demo-stats.json, and this script summarises what
# happened from that JSON and from tshark's decoding of the output captures (nothing here is assumed).
#
# Usage: scripts/demo.sh          (from any directory; installs what is missing on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PY=/usr/bin/python3 # the system python: it has scapy (apt python3-scapy), a pyenv one may not

CONFIG=dpdk-config/demo.toml
OUT=out
STATS=$OUT/demo-stats.json
LOG=$OUT/demo-greway.log

echo "== installing what is missing (scripts/install-deps.sh)"
scripts/install-deps.sh

if [ ! -s dpdk-config/pcap/inside.pcap ] || [ ! -s dpdk-config/pcap/outside.pcap ]; then
    echo "== generating the input captures (scripts/gen-pcaps.py)"
    "$PY" scripts/gen-pcaps.py
fi

echo "== cargo build --release"
cargo build --release

mkdir -p "$OUT"
rm -f "$OUT"/demo-inside.pcap "$OUT"/demo-outside.pcap "$STATS" "$LOG"

echo "== target/release/greway run --config $CONFIG --exit-idle-ms 500 --stats-json $STATS --quiet"
status=0
target/release/greway run --config "$CONFIG" --exit-idle-ms 500 --stats-json "$STATS" --quiet >"$LOG" 2>&1 ||
    status=$?
if [ "$status" -ne 0 ]; then
    echo "demo: greway failed with exit status $status; its output ($LOG):" >&2
    cat "$LOG" >&2
    exit "$status"
fi
if [ ! -s "$STATS" ]; then
    echo "demo: greway exited 0 but wrote no $STATS; its output ($LOG):" >&2
    cat "$LOG" >&2
    exit 1
fi

echo
echo "================================ greway demo summary ================================"
mode=$(sed -n 's/^[[:space:]]*mode[[:space:]]*=[[:space:]]*"\([a-z]*\)".*/\1/p' "$CONFIG" | head -n1)
echo "config: $CONFIG (dataplane.mode = ${mode:-gateway (default)})"
"$PY" - "$STATS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"ran {r['duration_s']:.2f} s with {r['workers']} worker(s)")
print("packets per port (greway's counters; hw = the device's own rte_eth_stats):")
for name, p in r["ports"].items():
    hw = p.get("hw", {})
    extra = " ".join(f"{k}={v}" for k, v in hw.items() if k not in ("ipackets", "opackets", "ibytes", "obytes") and v)
    print(f"  {name:<8} in {p['rx']:>5} pkts {p['rx_bytes']:>7} B   out {p['tx']:>5} pkts {p['tx_bytes']:>7} B"
          f"   (hw in {hw.get('ipackets', 0)} out {hw.get('opackets', 0)}{' ' + extra if extra else ''})")
drops = {k: v for k, v in r["drops"].items() if v}
print("drops by reason: " + (", ".join(f"{k}={v}" for k, v in drops.items()) if drops else "none"))
for name, t in r["tunnels"].items():
    print(f"tunnel {name}: encap {t['encap']} pkts ({t['encap_bytes']} B), decap {t['decap']} pkts "
          f"({t['decap_bytes']} B), drops {t['drops']}, keepalives rx {t['keepalives_rx']} "
          f"reflected {t['keepalives_reflected']}")
m = r["mempool"]
leak = m["free_at_start"] - m["free_at_end"]
print(f"mempool: {m['size']} mbufs, free at start {m['free_at_start']}, free at end {m['free_at_end']}"
      + (" (all returned)" if leak == 0 else f" ({leak} not returned)"))
lat = r.get("latency", {})
if lat.get("count"):
    print(f"latency: p50 {lat['p50_us']:.2f} us, p99 {lat['p99_us']:.2f} us, max {lat['max_us']:.2f} us "
          f"({lat['count']} samples)")
rx = sum(p["rx"] for p in r["ports"].values())
tx = sum(p["tx"] for p in r["ports"].values())
enc = sum(t["encap"] for t in r["tunnels"].values())
dec = sum(t["decap"] for t in r["tunnels"].values())
print(f"in total: {rx} packets in, {tx} out, {sum(drops.values())} counted drops, "
      f"{enc} encapsulated, {dec} decapsulated")
if rx and enc == 0 and dec == 0:
    print("note: no packet was encapsulated or decapsulated in this run: this build does not run the GRE "
          "gateway datapath for this config (see the captures below for what it did instead)")
EOF

echo
echo "output files:"
for f in "$STATS" "$OUT"/demo-inside.pcap "$OUT"/demo-outside.pcap "$LOG"; do
    if [ -e "$f" ]; then
        printf '  %-26s %8s bytes\n' "$f" "$(stat -c %s "$f")"
    else
        printf '  %-26s (not written)\n' "$f"
    fi
done

tshark_q() { tshark "$@" 2>/dev/null | grep -v '^Running as user' || true; }
table() { if command -v column >/dev/null 2>&1; then column -t -s $'\t'; else cat; fi; }
count() { tshark_q -r "$1" -Y "$2" -T fields -e frame.number | wc -l; }
for side in outside inside; do
    f=$OUT/demo-$side.pcap
    echo
    if [ ! -s "$f" ]; then
        echo "$f: empty or missing (nothing was sent on the $side port)"
        continue
    fi
    total=$(count "$f" "frame")
    if [ "$side" = outside ]; then
        gre=$(count "$f" "gre")
        keyed=$(count "$f" "gre.key == 1001")
        good=$(count "$f" "gre.checksum.status == 1")
        echo "$f: $total frames; $gre GRE, $keyed with key 1001, $good with a good GRE checksum (tshark)"
    else
        gre=$(count "$f" "gre")
        arp=$(count "$f" "arp.opcode == 2")
        echo_rep=$(count "$f" "icmp.type == 0")
        from_tunnel=$(count "$f" "!gre && ip.src == 10.20.0.0/16")
        echo "$f: $total frames; $from_tunnel plain IPv4 from 10.20.0.0/16, $gre still GRE, $arp ARP replies," \
            "$echo_rep ICMP echo replies (tshark)"
    fi
    echo "first packets (tshark -r $f -c 5; ip.src/ip.dst list outer,inner for GRE):"
    tshark_q -r "$f" -c 5 -T fields -E header=y -E occurrence=a -E aggregator=, \
        -e frame.number -e frame.len -e eth.src -e eth.dst -e ip.src -e ip.dst -e gre.key \
        -e gre.sequence_number -e _ws.col.Protocol -e _ws.col.Info | table | sed 's/^/  /'
done
echo "======================================================================================"
