#!/usr/bin/python3
"""Outer path MTU discovery on pcap ports, modelled in scapy (see tests/pmtu_pcap.rs).

  pmtu.py gen OUTDIR     writes outside.pcap (ICMP errors from a router about greway's GRE packets, and ones
                         about packets greway never sent) and inside.pcap (big inner packets after them), plus
                         expect.json (drop reason -> count, the path MTU each tunnel must end with)
  pmtu.py check OUTDIR   decodes what greway sent (out-inside.pcap, out-outside.pcap) and prints it as JSON

The tunnels (tests/pmtu_pcap.rs): site-b 192.0.2.1 -> 198.51.100.7 key 1001 (10.20.0.0/16, 2001:db8:20::/48;
inner MTU 1472 = 1500 - IPv4 20 - GRE 8), site-c 192.0.2.1 -> 198.51.100.8 key 2002 (10.30.0.0/16; 1472) and
site-v6 2001:db8:ff::1 -> 2001:db8:ee::7 without key (10.40.0.0/16; 1456 = 1500 - IPv6 40 - GRE 4).
"""
import json
import sys

from scapy.all import GRE, ICMP, IP, UDP, Ether, IPv6, Raw, rdpcap, wrpcap
from scapy.layers.inet6 import ICMPv6PacketTooBig

HOST, GWIN, GWOUT, NH = "02:00:00:00:00:0a", "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
LOCAL, LOCAL6 = "192.0.2.1", "2001:db8:ff::1"
ROUTER, ROUTER6 = "192.0.2.254", "2001:db8:ff::fe"


def fix(p):
    """Let scapy compute lengths and checksums, then freeze the bytes."""
    return Ether(bytes(p))


def udp_to(dst, total, df=True, src="10.0.0.2"):
    """An inner IPv4/UDP packet of `total` bytes."""
    return IP(src=src, dst=dst, ttl=64, flags="DF" if df else 0, id=77) / UDP(sport=4000, dport=5000) / Raw(
        b"p" * (total - 28))


def ours(remote, key, inner_dst, local=LOCAL):
    """A 1400-byte outer packet as greway sends it into a tunnel (DF copied from the inner packet)."""
    inner = udp_to(inner_dst, 1400 - 20 - (8 if key is not None else 4))
    g = GRE(key_present=1, key=key, proto=0x0800) if key is not None else GRE(proto=0x0800)
    return IP(src=local, dst=remote, ttl=64, flags="DF", proto=47) / g / inner


def frag_needed(mtu, quoted, bad_checksum=False):
    """A router's ICMP fragmentation needed (RFC 1191) quoting as much of `quoted` as fits in 576 bytes."""
    icmp = ICMP(type=3, code=4, nexthopmtu=mtu) / Raw(bytes(quoted)[:576 - 28])
    p = fix(Ether(src=NH, dst=GWOUT) / IP(src=ROUTER, dst=LOCAL, ttl=60) / icmp)
    if bad_checksum:
        p[ICMP].chksum ^= 0x0101
        p = Ether(bytes(p))
    return p


def gen(out):
    outside, drops = [], {}

    def expect(reason, frame):
        outside.append(frame)
        drops[reason] = drops.get(reason, 0) + 1

    # site-b's packet: the path MTU drops to 1400.
    expect("pmtu_learned", frag_needed(1400, ours("198.51.100.7", 1001, "10.20.1.1")))
    # Again within 100 ms: rate limited.
    expect("pmtu_rate_limited", frag_needed(1300, ours("198.51.100.7", 1001, "10.20.1.1")))
    # Packets greway never sent: a key no tunnel sends, a remote no tunnel has.
    expect("pmtu_no_tunnel", frag_needed(1300, ours("198.51.100.7", 999, "10.20.1.1")))
    expect("pmtu_no_tunnel", frag_needed(1300, ours("198.51.100.99", 1001, "10.20.1.1")))
    # site-c's packet, but an MTU above its own: nothing to lower.
    expect("pmtu_not_lower", frag_needed(9000, ours("198.51.100.8", 2002, "10.30.1.1")))
    # A corrupted ICMP checksum is never read further.
    expect("bad_checksum", frag_needed(1000, ours("198.51.100.8", 2002, "10.30.1.1"), bad_checksum=True))
    # site-v6: an ICMPv6 packet too big quoting its IPv6 GRE packet (as much as fits in 1280 bytes).
    quoted6 = IPv6(src=LOCAL6, dst="2001:db8:ee::7", hlim=64, nh=47) / GRE(proto=0x0800) / udp_to("10.40.1.1", 1356)
    ptb = ICMPv6PacketTooBig(mtu=1400) / Raw(bytes(quoted6)[:1280 - 48])
    expect("pmtu_learned", fix(Ether(src=NH, dst=GWOUT) / IPv6(src=ROUTER6, dst=LOCAL6, hlim=64) / ptb))

    # The inside traffic, after the errors (greway polls the outside port first).
    inside = [
        udp_to("10.20.1.1", 1400),  # site-b, DF, over 1372: fragmentation needed
        udp_to("10.20.1.2", 1400, df=False),  # site-b, no DF: fragmented to fit 1372
        IPv6(src="2001:db8:1::2", dst="2001:db8:20::9", hlim=64) / UDP(sport=1, dport=2) / Raw(b"s" * 1352),  # 1400
        udp_to("10.20.1.3", 1372),  # site-b, exactly the learned MTU: encapsulated
        udp_to("10.30.1.1", 1472),  # site-c, its configured MTU: encapsulated (nothing changed it)
        udp_to("10.40.1.1", 1400),  # site-v6, DF, over 1356: fragmentation needed
    ]
    wrpcap(out + "/outside.pcap", outside)
    wrpcap(out + "/inside.pcap", [fix(Ether(src=HOST, dst=GWIN) / p) for p in inside])
    with open(out + "/expect.json", "w") as f:
        json.dump({"drops": drops, "pmtu": {"site-b": 1400, "site-c": 1500, "site-v6": 1400}}, f)


def check(out):
    """What greway sent, decoded by scapy."""
    inside = []
    for p in rdpcap(out + "/out-inside.pcap"):
        if ICMP in p:
            q = IP(bytes(p[ICMP].payload))
            icmp = ICMP(bytes(p[ICMP]))
            again = icmp.copy()
            del again.chksum
            inside.append({"kind": "frag_needed" if (icmp.type, icmp.code) == (3, 4) else "icmp",
                           "mtu": icmp.nexthopmtu, "to": p[IP].dst, "quoted_dst": q.dst,
                           "checksum_ok": ICMP(bytes(again)).chksum == icmp.chksum})
        elif ICMPv6PacketTooBig in p:
            inside.append({"kind": "packet_too_big", "mtu": p[ICMPv6PacketTooBig].mtu, "to": p[IPv6].dst,
                           "quoted_dst": IPv6(bytes(p[ICMPv6PacketTooBig].payload)).dst})
        else:
            inside.append({"kind": "other", "summary": p.summary()})
    outside = []
    for p in rdpcap(out + "/out-outside.pcap"):
        g = p[GRE]
        inner = IP(bytes(g.payload))
        outside.append({"src": p[IP].src, "dst": p[IP].dst, "len": p[IP].len, "df": bool(p[IP].flags.DF),
                        "key": g.key if g.key_present else None, "inner_dst": inner.dst, "inner_len": inner.len,
                        "inner_mf": bool(inner.flags.MF), "inner_frag": inner.frag})
    print(json.dumps({"inside": inside, "outside": outside}))


if __name__ == "__main__":
    {"gen": gen, "check": check}[sys.argv[1]](sys.argv[2])
