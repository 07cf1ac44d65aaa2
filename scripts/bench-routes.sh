#!/usr/bin/env bash
# Route changes through the control socket with traffic flowing (`scripts/bench.sh routes`).
#
# greway runs encap-64's setup (one worker; net_pcap replays the capture forever into the inside port, net_null
# takes the tunnel's packets) with a control socket. A small client on one persistent connection sends ROUTES
# `route_add` requests (inner prefixes into the tunnel: /24s and /32s under 100.64.0.0/10, so both DIR-24-8 levels
# change; every fourth one an IPv6 /64) and then ROUTES `route_del` requests for them, as fast as the gateway
# answers, with PIPELINE requests in flight (as a routing feeder sends them; 1: each waits for its answer). The routes do not cover the replayed traffic, so every packet must still be
# encapsulated and sent: rx = tx + counted drops, and the inside port's rx grows during the changes.
# Prints one line:
#   route-changes changes_per_s=N routes=N traffic_mpps=X drops=D
# changes_per_s: 2 * ROUTES / the client's wall time; traffic_mpps: inside packets received per wall second over a
# status window (250 ms steps) that spans the changes (the machine is shared: control thread, client and worker
# compete for 2 cores); drops: total, then per reason in parentheses when any.
# Environment: ROUTES (default 10000), PIPELINE (default 32), QUIET (default 1: requests ask for no data in the answer; 0: each answer
# carries the tunnel list, as `greway ctl route add` prints it), GREWAY, BENCH_OUT as for scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3 # has scapy
ROUTES=${ROUTES:-10000}
QUIET=${QUIET:-1}
PIPELINE=${PIPELINE:-32}
GREWAY=${GREWAY:-$ROOT/target/release/greway}
OUT=${BENCH_OUT:-$ROOT/out/bench}
mkdir -p "$OUT"
if [[ ! -x $GREWAY ]]; then
    cargo build --release --quiet
fi
if [[ ! -f $OUT/.gen-stamp || scripts/bench.py -nt $OUT/.gen-stamp ]]; then
    $PY scripts/bench.py gen "$OUT" >"$OUT/gen.log"
    touch "$OUT/.gen-stamp"
fi

prefix="gw-routes-$$"
sock="$OUT/routes.$$.sock"
stats="$OUT/routes.greway.json"
log="$OUT/routes.greway.log"
rm -f "$sock" "$stats"
{
    sed "s/\"PREFIX\"/\"$prefix\"/" "$OUT/encap-64.toml"
    printf '\n[control]\nsocket = "%s"\n' "$sock"
} >"$OUT/routes.run.toml"
"$GREWAY" --log warn run -c "$OUT/routes.run.toml" -q --duration-s 600 --stats-json "$stats" >"$log" 2>&1 &
gw=$!
cleanup() {
    kill -INT "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true
    rm -rf "/var/run/dpdk/$prefix" "$sock"
}
trap cleanup EXIT

set +e
$PY - "$sock" "$ROUTES" "$QUIET" "$gw" "$PIPELINE" >"$OUT/routes.client.json" <<'PY'
import json, os, socket, sys, time

path, n, quiet, gw, window = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])
deadline = time.time() + 60
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        break
    except OSError:
        os.kill(gw, 0)  # greway died: fail
        if time.time() > deadline:
            sys.exit("no control socket after 60 s")
        time.sleep(0.05)
f = s.makefile("rwb", buffering=0)
r = s.makefile("rb")


def call(req):
    f.write((json.dumps(req) + "\n").encode())
    resp = json.loads(r.readline())
    if not resp.get("ok"):
        sys.exit(f"{req}: {resp}")
    return resp


def pipelined(reqs):
    """Send `reqs` with up to `window` of them in flight; every answer must be ok, in order."""
    for k in range(0, len(reqs), window):
        chunk = reqs[k:k + window]
        f.write(b"".join((json.dumps(q) + "\n").encode() for q in chunk))
        for q in chunk:
            resp = json.loads(r.readline())
            if not resp.get("ok"):
                sys.exit(f"{q}: {resp}")


def snapshot():
    """(inside rx, uptime) of the published status (rebuilt every 250 ms)."""
    d = call({"cmd": "stats"})["data"]
    # The status before the first build has no ports yet.
    return d["ports"].get("inside", {}).get("rx", 0), d["uptime_s"]


def prefix(i):
    if i % 4 == 3:
        return f"2001:db8:{0x100 + i // 65536:x}:{i % 65536:x}::/64"
    a = (100 << 24) | (64 << 16) | (i << 8)  # 100.64.0.0/10 holds 2^14 /24s: i < 16384 stays inside
    if i % 4 == 1:
        a |= 7
        return ".".join(str((a >> k) & 0xFF) for k in (24, 16, 8, 0)) + "/32"
    return ".".join(str((a >> k) & 0xFF) for k in (24, 16, 8)) + ".0/24"


# Traffic first: the capture replays from the start.
t0 = time.time()
while snapshot()[0] == 0:
    if time.time() - t0 > 30:
        sys.exit("no traffic after 30 s")
    time.sleep(0.05)
prefixes = [prefix(i) for i in range(n)]
rx0, up0 = snapshot()
t0 = time.perf_counter()
pipelined([{"cmd": "route_add", "prefix": p, "tunnel": "t0", "quiet": quiet} for p in prefixes])
t1 = time.perf_counter()
shown = call({"cmd": "route_show"})["data"]["tunnel_routes"]
pipelined([{"cmd": "route_del", "prefix": p, "quiet": quiet} for p in prefixes])
t2 = time.perf_counter()
left = call({"cmd": "route_show"})["data"]["tunnel_routes"]
# The first status built after the changes: the traffic window spans them.
_, up_end = snapshot()
while True:
    rx1, up1 = snapshot()
    if up1 > up_end:
        break
    time.sleep(0.02)
print(json.dumps({
    "routes": n, "add_s": t1 - t0, "del_s": t2 - t1, "rx": rx1 - rx0, "rx_window_s": up1 - up0,
    "shown_after_adds": len(shown), "left_after_dels": len(left),
}))
PY
rc=$?
set -e
kill -INT "$gw"
wait "$gw" || { echo "greway failed: see $log" >&2; tail -20 "$log" >&2; exit 1; }
trap - EXIT
rm -rf "/var/run/dpdk/$prefix" "$sock"
[[ $rc -eq 0 ]] || { echo "route client failed (rc $rc)" >&2; exit 1; }
$PY - "$OUT/routes.client.json" "$stats" <<'PY'
import json, sys

c = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
n = c["routes"]
secs = c["add_s"] + c["del_s"]
drops = {k: v for k, v in s["drops"].items() if v}
rx = s["ports"]["inside"]["rx"]
tx = s["ports"]["outside"]["tx"]
ok = True
# The tunnel list held the base routes plus every added one, and only the base routes after the deletes.
if c["shown_after_adds"] - c["left_after_dels"] != n:
    print(f"route show: {c['shown_after_adds']} tunnel routes after the adds, {c['left_after_dels']} after", file=sys.stderr)
    ok = False
if c["rx"] <= 0:
    print("no traffic during the changes", file=sys.stderr)
    ok = False
if rx != tx + sum(drops.values()):
    print(f"unaccounted packets: rx {rx} != tx {tx} + drops {drops}", file=sys.stderr)
    ok = False
reasons = "(" + ",".join(f"{k}:{v}" for k, v in sorted(drops.items())) + ")" if drops else ""
print(f"route-changes changes_per_s={2 * n / secs:.0f} routes={n} traffic_mpps={c['rx'] / c['rx_window_s'] / 1e6:.3f} "
      f"drops={sum(drops.values())}{reasons}")
print(f"  adds {n / c['add_s']:.0f}/s, deletes {n / c['del_s']:.0f}/s; greway rx {rx} tx {tx}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
