#!/usr/bin/python3
"""Helper of `scripts/bench.sh peers` (greway, testpmd io and Open vSwitch with DPDK on the same ports).

    bench_peers.py list                         the peers scenarios (OVS has a setup for them, bench.py a capture)
    bench_peers.py ovs-window OUT_JSON K=V...   one OVS measurement window (scripts/bench-ovs.sh) into OUT_JSON
    bench_peers.py verify-input SCENARIO OUTDIR the verification input: the scenario's capture twice
    bench_peers.py inject PCAP IFACE            send the frames of PCAP out of IFACE (raw socket), each once
    bench_peers.py check SCENARIO OUTDIR NAME OUTPUT_PCAP [NAME OUTPUT_PCAP...]
                                                check what NAME (greway, ovs) sent for the verification input: the
                                                packets the scenario's shape says, the second pass whole
    bench_peers.py summary SCENARIO OUT_JSON FILE...
                                                greway JSONs (*.greway.N.json), testpmd logs (*.testpmd.N.log), OVS
                                                windows (*.ovs.N.json), verification results (*.check.*.json):
                                                medians, the result line
    bench_peers.py merge BENCH_JSON PART...     into BENCH_JSON's "peers" section
"""
import importlib.util
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class _Bench:
    """scripts/bench.py, loaded when first used (it imports scapy, which takes seconds; inject needs neither)."""

    def __getattr__(self, name):
        spec = importlib.util.spec_from_file_location("bench", os.path.join(HERE, "bench.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        globals()["bench"] = mod
        return getattr(mod, name)


bench = _Bench()

# Scenarios OVS can be given (scripts/bench-ovs.sh), in the order they run by default; those bench.py has.
OVS_SHAPES = [
    "encap-64",
    "decap-64",
    "encap6-64",
    "decap6-64",
    "encap-teb-64",
    "decap-teb-64",
    "encap-over6-64",
    "decap-over6-64",
]


def scenarios():
    return [s for s in OVS_SHAPES if s in bench.SCENARIOS]


def ovs_window(out_json, kv):
    """The OVS window's numbers: egress tx, PMD thread CPU time, wall time, and from pmd-stats-show (cleared at the
    window's start) the packets received, the cache hits and the upcalls; the datapath flows; the egress port's
    tx drops and the datapath drops since OVS started."""
    tx, cpu_ns, wall = int(kv["tx"]), int(kv["cpu_ns"]), float(kv["wall_s"])
    pmd = {}
    section = None
    for line in open(kv["pmd_stats"]):
        if line.startswith("pmd thread"):
            section = "pmd"
        elif line.startswith("main thread"):
            section = "main"
        m = re.match(r"\s+([a-z. ]+?):\s+([0-9.]+)", line)
        if m and section == "pmd":
            pmd[m.group(1).replace(" ", "_").replace(".", "")] = float(m.group(2))
    flows = [ln.strip() for ln in open(kv["flows"]) if ln.startswith("ufid:")]

    drops = {k: int(v) for k, v in (x.split("=") for x in kv["drops"].split()) if int(v)}
    eg = open(kv["egress"]).read()
    m = re.search(r"tx pkts=\d+, bytes=[^,]*, drop=(\d+)", eg)
    egress_tx_drops = int(m.group(1)) if m else None
    res = {
        "tx_pkts": tx,
        "cpu_s": cpu_ns / 1e9,
        "window_s": wall,
        "cpu_mpps": tx / (cpu_ns / 1e9) / 1e6 if cpu_ns > 0 else 0.0,
        "wall_mpps": tx / wall / 1e6 if wall > 0 else 0.0,
        "pmd_rx_pkts": int(pmd.get("packets_received", 0)),
        "emc_hits": int(pmd.get("emc_hits", 0)),
        "smc_hits": int(pmd.get("smc_hits", 0)),
        "megaflow_hits": int(pmd.get("megaflow_hits", 0)),
        "simple_match_hits": int(pmd.get("simple_match_hits", 0)),
        "upcalls": int(pmd.get("miss_with_success_upcall", 0)),
        "failed_upcalls": int(pmd.get("miss_with_failed_upcall", 0)),
        "recirculations": int(pmd.get("packet_recirculations", 0)),
        "ovs_processing_cycles_per_pkt": pmd.get("avg_processing_cycles_per_packet", 0.0),
        "datapath_flows": flows,
        # Since OVS started (the start's failed upcalls included): see scripts/bench-ovs.sh.
        "datapath_drops_since_start": drops,
        "egress_tx_drops_since_start": egress_tx_drops,
        "memory": kv["memory"],
        "eal": kv["eal"],
    }
    with open(out_json, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")


def _ip_payload(frame):
    """The IP packet of an Ethernet frame (raw bytes)."""
    return frame[14:]


def _dec_ttl(ip):
    """The IP packet with its TTL / hop limit decremented (and the IPv4 header checksum updated), as a router
    forwards it."""
    from scapy.all import IP, IPv6

    if ip[0] >> 4 == 4:
        p = IP(ip)
        p.ttl -= 1
        del p.chksum
        return bytes(p)
    p = IPv6(ip)
    p.hlim -= 1
    return bytes(p)


def verify_input(scenario, out):
    """The verification input: the scenario's capture twice. The first pass primes the peer (OVS drops the packets
    that arrive before its bridge has taken the new port: "miss with failed upcall"); the second must come out
    whole."""
    from scapy.all import rdpcap, wrpcap

    cap = bench.SCENARIOS[scenario][0]
    frames = list(rdpcap(f"{out}/{cap}.pcap"))
    path = f"{out}/{scenario}.verify-in.pcap"
    wrpcap(path, frames + frames)
    print(path)


def inject(pcap, iface):
    """Send every frame of a pcap file out of iface (a raw AF_PACKET socket; the classic pcap format that scapy's
    wrpcap writes), in order, each once."""
    import socket
    import struct

    data = open(pcap, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    off, n = 24, 0
    while off + 16 <= len(data):
        incl = struct.unpack(order + "IIII", data[off : off + 16])[2]
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        while True:
            try:
                s.send(frame)
                break
            except BlockingIOError:
                pass
            except OSError as e:  # ENOBUFS: the veth's queue is full for a moment
                if e.errno != 105:
                    raise
        n += 1
    print(f"{n} frames sent into {iface}")


def check(scenario, out, name, output):
    """The verification input (the capture twice) went through NAME into OUTPUT: each output frame is the packet the
    scenario's shape says (encap: Ethernet from greway's outside MAC to the upstream router / IPv4 192.0.2.1 ->
    198.51.100.7, TTL 64, GRE key 42, no checksum or sequence number / the inner packet, its TTL or hop limit
    decremented; decap: Ethernet from greway's inside MAC to the host / the inner packet, TTL decremented; TEB: the
    frame itself inside, or out as it was inside), and the last frames out are the capture's second pass, whole
    and in order."""
    from scapy.all import GRE, IP, IPv6, Ether, rdpcap, raw
    from scapy.utils import checksum

    cap = bench.SCENARIOS[scenario][0]
    inputs = [raw(p) for p in rdpcap(f"{out}/{cap}.pcap")]
    teb = "-teb-" in scenario
    over6 = "-over6-" in scenario
    encap = scenario.startswith("encap")
    expected = []
    for f in inputs:
        if encap:
            expected.append(f if teb else _dec_ttl(_ip_payload(f)))
        else:
            inner = raw(Ether(f)[GRE].payload)
            expected.append(inner if teb else _dec_ttl(inner))
    got = []
    bad = []
    for p in rdpcap(output) if os.path.exists(output) and os.path.getsize(output) else []:
        f = raw(p)
        e = Ether(f)
        why = None
        if encap:
            outer = IPv6 if over6 else IP
            if e.src != bench.GW_OUTSIDE_MAC or e.dst != bench.UPSTREAM_MAC or outer not in e or GRE not in e:
                why = f"not GRE from greway's outside MAC to the upstream router: {e.summary()}"
            elif over6:
                o, g = e[IPv6], e[GRE]
                if (o.src, o.dst, o.nh, o.hlim, o.fl) != (bench.GW_OUTSIDE_IP6, bench.PEER_IP6, 47, 64, 0):
                    why = f"outer IPv6 {o.src} -> {o.dst} next header {o.nh} hop limit {o.hlim} flow {o.fl}"
                elif o.plen != len(f) - 54:
                    why = f"outer payload length {o.plen} for a {len(f) - 54}-byte payload"
                elif (g.key_present, g.key, g.proto, g.chksum_present, g.seqnum_present) != (1, 42, 0x0800, 0, 0):
                    why = f"GRE key {g.key} proto {g.proto:#x} csum {g.chksum_present} seq {g.seqnum_present}"
                else:
                    got.append(raw(g.payload))
            else:
                o, g = e[IP], e[GRE]
                want_proto = 0x6558 if teb else (0x86DD if re.match(r"(en|de)cap6-", scenario) else 0x0800)
                if (o.src, o.dst, o.proto, o.ttl) != (bench.GW_OUTSIDE_IP, bench.PEER_IP, 47, 64):
                    why = f"outer IPv4 {o.src} -> {o.dst} proto {o.proto} ttl {o.ttl}"
                elif checksum(raw(o)[: o.ihl * 4]) != 0:
                    why = "outer IPv4 header checksum"
                elif o.len != len(f) - 14:
                    why = f"outer length {o.len} for a {len(f) - 14}-byte packet"
                elif (g.key_present, g.key, g.proto, g.chksum_present, g.seqnum_present) != (1, 42, want_proto, 0, 0):
                    why = f"GRE key {g.key} proto {g.proto:#x} csum {g.chksum_present} seq {g.seqnum_present}"
                else:
                    got.append(raw(g.payload))
        elif teb:
            got.append(f)
        elif e.src != bench.GW_INSIDE_MAC or e.dst != bench.HOST_MAC:
            why = f"Ethernet {e.src} -> {e.dst}, not greway's inside MAC to the host"
        else:
            got.append(_ip_payload(f))
        if why:
            bad.append(why)
    n = len(inputs)
    tail = got[-n:]
    res = {
        "scenario": scenario,
        "program": name,
        "input_frames": 2 * n,
        "output_frames": len(got) + len(bad),
        # The second pass: frames out as expected, in order.
        "second_pass_as_expected": sum(1 for a, b in zip(tail, expected) if a == b) if len(tail) == n else 0,
        "first_pass_out": max(len(got) - n, 0),
        "unexpected": len(bad),
        "first_problems": bad[:3],
    }
    res["ok"] = res["second_pass_as_expected"] == n and not bad and len(got) <= 2 * n
    with open(f"{out}/{scenario}.check.{name}.json", "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(
        f"  verified {name}: capture twice ({2 * n} frames) in, {len(got) + len(bad)} out: second pass"
        f" {res['second_pass_as_expected']} of {n} as expected and in order, first pass {res['first_pass_out']} of"
        f" {n}, {len(bad)} unexpected{' ' + str(bad[:1]) if bad else ''}: {'ok' if res['ok'] else 'FAILED'}"
    )
    return res["ok"]


def summary(scenario, out_json, files):
    gw = [json.load(open(p)) for p in files if re.search(r"\.greway\.\d+\.json$", p)]
    tps = [bench.testpmd_window(p) for p in files if p.endswith(".log")]
    ovs = [json.load(open(p)) for p in files if re.search(r"\.ovs\.\d+\.json$", p)]
    checks = [json.load(open(p)) for p in files if ".check." in p]
    g_mpps = [r["bench"]["cpu_mpps"] for r in gw]
    t_mpps = [tx / cpu / 1e6 if cpu > 0 else 0.0 for tx, cpu, _ in tps]
    o_mpps = [r["cpu_mpps"] for r in ovs]
    tsc_hz = gw[0]["bench"]["tsc_hz"]
    gm, tm, om = (statistics.median(x) if x else 0.0 for x in (g_mpps, t_mpps, o_mpps))

    def cyc(mpps):
        return tsc_hz / (mpps * 1e6) if mpps > 0 else 0.0

    g_mid = sorted(gw, key=lambda r: r["bench"]["cpu_mpps"])[(len(gw) - 1) // 2]
    o_mid = sorted(ovs, key=lambda r: r["cpu_mpps"])[(len(ovs) - 1) // 2] if ovs else {}
    res = {
        "scenario": scenario,
        "greway_mpps": round(gm, 3),
        "ovs_mpps": round(om, 3),
        "testpmd_mpps": round(tm, 3),
        "greway_vs_ovs": round(gm / om, 3) if om > 0 else 0.0,
        "greway_vs_testpmd": round(gm / tm, 3) if tm > 0 else 0.0,
        # Each round's greway rate over the OVS rate of the same round (the two ran seconds apart, under much the
        # same load): their spread shows how far the ratio of the medians can be trusted.
        "greway_vs_ovs_per_round": [round(g / o, 3) if o > 0 else 0.0 for g, o in zip(g_mpps, o_mpps)],
        "cycles_per_pkt_greway": round(g_mid["bench"]["cycles_per_pkt"], 1),
        "cycles_per_pkt_ovs": round(cyc(om), 1),
        "cycles_per_pkt_testpmd": round(cyc(tm), 1),
        "greway_forwarded": [r["bench"]["tx_pkts"] for r in gw],
        "ovs_forwarded": [r["tx_pkts"] for r in ovs],
        "testpmd_forwarded": [tx for tx, _, _ in tps],
        "greway_runs_mpps": [round(x, 3) for x in g_mpps],
        "ovs_runs_mpps": [round(x, 3) for x in o_mpps],
        "testpmd_runs_mpps": [round(x, 3) for x in t_mpps],
        "greway_runs_wall_mpps": [round(r["bench"]["mpps"], 3) for r in gw],
        "ovs_runs_wall_mpps": [round(r["wall_mpps"], 3) for r in ovs],
        "testpmd_runs_wall_mpps": [round(tx / wall / 1e6, 3) if wall > 0 else 0.0 for tx, _, wall in tps],
        "greway_cpu_share": [round(r["bench"]["cpu_s"] / max(r["bench"]["window_s"], 1e-9), 2) for r in gw],
        "ovs_cpu_share": [round(r["cpu_s"] / max(r["window_s"], 1e-9), 2) for r in ovs],
        "testpmd_cpu_share": [round(cpu / wall, 2) if wall > 0 else 0.0 for _, cpu, wall in tps],
        "greway_drops_in_median_run": {k: v for k, v in g_mid["drops"].items() if v},
        # OVS in its median window: the PMD's own accounting (pmd-stats-show, cleared at the window's start).
        "ovs_median_run": {
            k: o_mid.get(k)
            for k in (
                "pmd_rx_pkts",
                "tx_pkts",
                "emc_hits",
                "smc_hits",
                "megaflow_hits",
                "simple_match_hits",
                "upcalls",
                "failed_upcalls",
                "recirculations",
                "ovs_processing_cycles_per_pkt",
                "egress_tx_drops_since_start",
                "datapath_drops_since_start",
                "datapath_flows",
            )
        },
        "ovs_upcalls_in_windows": [r["upcalls"] + r["failed_upcalls"] for r in ovs],
        "verified": {
            c["program"]: {k: c[k] for k in ("ok", "second_pass_as_expected", "first_pass_out", "unexpected")}
            for c in checks
        },
        "window_s": round(g_mid["bench"]["window_s"], 2),
        "tsc_hz": tsc_hz,
        "memory": os.environ.get("BENCH_MEMORY", "4k-pages"),
        "ovs_eal": o_mid.get("eal", ""),
        # The machine's load when the scenario ended (1, 5 and 15 minutes; this benchmark's own threads included).
        "loadavg_at_end": [float(x) for x in open("/proc/loadavg").read().split()[:3]],
    }
    with open(out_json, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(
        f"  per CPU-second Mpps: greway {res['greway_runs_mpps']} OVS {res['ovs_runs_mpps']}"
        f" testpmd {res['testpmd_runs_mpps']}; CPU share greway {res['greway_cpu_share']}"
        f" OVS {res['ovs_cpu_share']} testpmd {res['testpmd_cpu_share']}; greway/OVS per round"
        f" {res['greway_vs_ovs_per_round']}; load average {res['loadavg_at_end']}\n"
        f"  OVS median window: rx {o_mid.get('pmd_rx_pkts')} tx {o_mid.get('tx_pkts')}, hits emc"
        f" {o_mid.get('emc_hits')} smc {o_mid.get('smc_hits')} megaflow {o_mid.get('megaflow_hits')} simple"
        f" {o_mid.get('simple_match_hits')}, upcalls {o_mid.get('upcalls')} (failed {o_mid.get('failed_upcalls')}),"
        f" recirculations {o_mid.get('recirculations')}; since OVS started: egress tx drops"
        f" {o_mid.get('egress_tx_drops_since_start')}, datapath drops {o_mid.get('datapath_drops_since_start') or 'none'}"
    )
    print(
        f"{scenario} greway_mpps={gm:.3f} ovs_mpps={om:.3f} testpmd_mpps={tm:.3f}"
        f" greway_vs_ovs={res['greway_vs_ovs']:.3f} cycles_per_pkt_greway={res['cycles_per_pkt_greway']:.1f}"
        f" cycles_per_pkt_ovs={res['cycles_per_pkt_ovs']:.1f}"
    )


def merge(out_json, parts):
    """Merge scenario results into out_json's "peers" section (keeping what this run did not repeat)."""
    bench.merge(out_json, parts, "peers", ("machine", "command", "date", "memory", "ovs_version"))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "list":
        print(" ".join(scenarios()))
    elif cmd == "ovs-window":
        ovs_window(args[0], dict(a.split("=", 1) for a in args[1:]))
    elif cmd == "inject":
        inject(*args)
    elif cmd == "verify-input":
        verify_input(*args)
    elif cmd == "check":
        scenario, out, pairs = args[0], args[1], args[2:]
        oks = [check(scenario, out, pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]
        sys.exit(0 if all(oks) else 1)
    elif cmd == "summary":
        summary(args[0], args[1], args[2:])
    elif cmd == "merge":
        merge(args[0], args[1:])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
