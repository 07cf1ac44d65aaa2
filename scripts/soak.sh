#!/usr/bin/env bash
# Soak: greway (release build) at full rate for N minutes on a mix of good and hostile traffic, sampling its RSS
# and the packet mempool's mbufs in use; checks that both stay flat and prints one verdict line.
#
# Usage: scripts/soak.sh [MINUTES]        (default 10; fractions allowed: 0.5 = 30 s)
#
# Traffic: tests/scapy/hostile.py (good encap/decap traffic, truncated frames, bad GRE, spoofing, fragments,
# ARP/ND storms, garbage; without its jumbo frames, which the infinite replay cannot hold) replayed forever by net_pcap (infinite_rx=1) on both ports; tx is
# dropped by the pcap PMD (no tx file), so nothing is written. Samples every SAMPLE_S seconds (default 2):
#   RSS       VmRSS of the process (/proc/PID/status)
#   in use    mbufs of greway's packet pool taken since the start (free at start - free now; per-lcore caches
#             count as free), from
#             the newest line of `greway run --live-json` (DPDK 22.11's telemetry /mempool/info has no free
#             count). The pcap PMD's preloaded replay copies are taken before the start and not counted.
# Pass: exit 0, rx == tx + drops, mempool free at end == at start, RSS growth after warm-up < 5 %, mbufs in use
# bounded (max below MBUF_BOUND, default 4096, and the last samples no higher than the warm-up maximum + 64).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
MINUTES=${1:-10}
SAMPLE_S=${SAMPLE_S:-2}
MBUF_BOUND=${MBUF_BOUND:-4096}
DUR=$(awk -v m="$MINUTES" 'BEGIN { printf "%.1f", m * 60 }')
OUT=target/soak
BIN=target/release/greway
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release
if [ ! -s "$OUT/inside.pcap" ] || [ tests/scapy/hostile.py -nt "$OUT/inside.pcap" ]; then
    # No 9000-byte frames: net_pcap's infinite_rx replay refuses multi-segment mbufs (EINVAL at queue setup).
    /usr/bin/python3 tests/scapy/hostile.py "$OUT" 8 nojumbo >/dev/null
fi
PREFIX="greway-soak-$$"
OUTDIR=$(realpath "$OUT")
cat >"$OUT/soak.toml" <<EOF
[eal]
args = ["-l", "0-1", "--no-huge", "-m", "1024", "--no-pci", "--no-shconf", "--file-prefix", "$PREFIX", "--log-level", "3"]
[dataplane]
workers = [1]
# The replay rings of both pcap ports (about 15000 frames, jumbo ones chained) come out of this pool.
mbufs = 65535
[[port]]
name = "inside"
device = "net_pcap0,rx_pcap=$OUTDIR/inside.pcap,infinite_rx=1"
address = ["10.0.0.1/24", "2001:db8:1::1/64"]
mac = "02:00:00:00:00:01"
[[port]]
name = "outside"
device = "net_pcap1,rx_pcap=$OUTDIR/outside.pcap,infinite_rx=1"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:02"
[[tunnel]]
name = "site-b"
local = "192.0.2.1"
remote = "198.51.100.7"
key = 1001
checksum = true
routes = ["10.20.0.0/16"]
allowed_sources = ["10.20.0.0/16"]
[[neighbor]]
port = "outside"
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[[neighbor]]
port = "inside"
ip = "10.0.0.2"
mac = "02:00:00:00:00:0a"
[[route]]
prefix = "198.51.100.0/24"
via = "192.0.2.254"
port = "outside"
EOF

LIVE="$OUT/soak-live.jsonl"
rm -f "$LIVE"
"$BIN" run --quiet --config "$OUT/soak.toml" --duration-s "$DUR" --stats-json "$OUT/soak-stats.json" \
    --live-json "$LIVE" >"$OUT/soak.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
SAMPLES="$OUT/soak-samples.tsv"
printf 't_s\trss_kb\tmbufs_in_use\n' >"$SAMPLES"
start=$(date +%s.%N)
mempool_in_use() { # free at start - free now, from greway's newest --live-json line
    # The newest complete line (the last one may be half-written at the moment of reading).
    tail -n 2 "$LIVE" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
v = -1
for line in sys.stdin.read().splitlines():
    try:
        d = json.loads(line)
        v = d["mempool_free_at_start"] - d["mempool_free"]
    except ValueError:
        pass
print(v)' 2>/dev/null || echo -1
}
# Sampling starts with greway's first live line (EAL start and the pcap replay preload take a few seconds).
for _ in $(seq 600); do
    [ -s "$LIVE" ] || ! kill -0 $PID 2>/dev/null && break
    sleep 0.1
done
while kill -0 $PID 2>/dev/null; do
    sleep "$SAMPLE_S"
    kill -0 $PID 2>/dev/null || break
    rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$PID/status 2>/dev/null || true)
    [ -n "$rss" ] || break
    inuse=$(mempool_in_use)
    now=$(date +%s.%N)
    printf '%.1f\t%s\t%s\n' "$(echo "$now - $start" | bc)" "$rss" "$inuse" >>"$SAMPLES"
done
set +e
wait $PID
rc=$?
set -e
trap - EXIT

/usr/bin/python3 - "$OUT/soak-stats.json" "$SAMPLES" "$rc" "$MINUTES" "$MBUF_BOUND" <<'PY'
import json, sys
stats_path, samples_path, rc, minutes, bound = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rows = [l.split("\t") for l in open(samples_path).read().splitlines()[1:]]
rows = [(float(t), int(r), int(m)) for t, r, m in rows]
problems = []
if rc != 0:
    problems.append("greway exit status %d" % rc)
try:
    s = json.load(open(stats_path))
except Exception as e:
    s = None
    problems.append("no stats json: %s" % e)
if len(rows) < 4:
    problems.append("only %d samples" % len(rows))
    rows = rows or [(0.0, 0, -1)]
# Warm-up: the first 20 % of the samples (at least one).
w = max(1, len(rows) // 5)
warm, rest = rows[:w], rows[w:] or rows[-1:]
rss_warm = warm[-1][1]
rss_max = max(r for _, r, _ in rest)
growth = (rss_max - rss_warm) * 100.0 / max(rss_warm, 1)
if growth >= 5.0:
    problems.append("RSS grew %.2f %% after warm-up" % growth)
mb = [m for _, _, m in rows]
if min(mb) < 0:
    problems.append("mbuf in-use samples unavailable (--live-json)")
mb_max = max(mb)
mb_warm_max = max(m for _, _, m in warm)
mb_tail_max = max(m for _, _, m in rows[-max(1, len(rows) // 5):])
if mb_max >= bound:
    problems.append("mbufs in use reached %d (bound %d)" % (mb_max, bound))
if mb_tail_max > max(mb_warm_max, 0) + 64 and mb_tail_max > 2 * 256:
    problems.append("mbufs in use creeping: warm-up max %d, last samples max %d" % (mb_warm_max, mb_tail_max))
rx = tx = drops = 0
if s:
    rx = sum(p["rx"] for p in s["ports"].values())
    tx = sum(p["tx"] for p in s["ports"].values())
    drops = sum(s["drops"].values())
    if rx != tx + drops:
        problems.append("rx %d != tx %d + drops %d" % (rx, tx, drops))
    if s["mempool"]["free_at_start"] != s["mempool"]["free_at_end"]:
        problems.append("mempool free %d at start, %d at end" % (s["mempool"]["free_at_start"], s["mempool"]["free_at_end"]))
    if rx == 0:
        problems.append("no traffic")
dur = s["duration_s"] if s else rows[-1][0]
leaked = (s["mempool"]["free_at_start"] - s["mempool"]["free_at_end"]) if s else -1
print("soak: %s: %.0f s, %d samples, rx %d pkts (%.2f Mpps), tx %d, drops %d; RSS %d kB after warm-up, max %d kB "
      "(%+.2f %%); mbufs in use max %d (warm-up max %d, last 20 %% max %d, bound %d); mbufs leaked %d%s" % (
          "PASS" if not problems else "FAIL", dur, len(rows), rx, rx / max(dur, 1e-9) / 1e6, tx, drops, rss_warm,
          rss_max, growth, mb_max, mb_warm_max, mb_tail_max, bound, leaked,
          "" if not problems else " -- " + "; ".join(problems)))
sys.exit(1 if problems else 0)
PY
