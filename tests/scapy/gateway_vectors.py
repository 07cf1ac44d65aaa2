#!/usr/bin/python3
"""An independent second implementation of greway's GRE rules, in scapy.

Writes into OUTDIR:
  inside.pcap            plain IPv4/IPv6 from a host behind the gateway (to tunnel routes, plus drops)
  outside.pcap           GRE from the tunnel peer (good and malformed)
  expect-outside.pcap    what greway must send on the outside port: the encapsulations, byte for byte
  expect-inside.pcap     what greway must send on the inside port: the decapsulations, byte for byte
  expect-drops.json      drop reason -> count

The tunnel under test (see tests/gateway_pcap.rs): local 192.0.2.1, remote 198.51.100.7, key 1001, checksum,
sequence, ttl 64, tos inherit, routes 10.20.0.0/16 and 2001:db8:20::/48.
"""
import json
import sys

from scapy.all import GRE, ICMP, IP, UDP, Ether, IPv6, Raw, wrpcap
from scapy.layers.inet import TCP

out = sys.argv[1]
HOST, GWIN, GWOUT, NH = "02:00:00:00:00:0a", "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
LOCAL, REMOTE, KEY = "192.0.2.1", "198.51.100.7", 1001


def fix(p):
    """Let scapy compute lengths and checksums, then freeze the bytes."""
    return Ether(bytes(p))


def decremented(ip):
    """The inner packet after one router hop (TTL/hop limit - 1), checksums recomputed by scapy."""
    ip = ip.copy()
    if IP in ip and ip.version == 4:
        ip.ttl -= 1
        del ip.chksum
    else:
        ip.hlim -= 1
    return ip.__class__(bytes(ip))


inside, expect_out = [], []
seq = 0
ident = 0
# Encapsulation: sizes, protocols, DSCP/ECN, DF set and clear, IPv4 and IPv6 inner.
inner_packets = []
for i, size in enumerate([18, 100, 512, 1000, 1400]):
    inner_packets.append(IP(src="10.0.0.2", dst="10.20.%d.%d" % (i, i + 1), ttl=64 - i, tos=[0, 0x02, 0xb8, 0x01, 0x03][i],
                            flags="DF" if i % 2 else 0, id=100 + i) / UDP(sport=1000 + i, dport=2000) / Raw(b"x" * size))
inner_packets.append(IP(src="10.0.0.2", dst="10.20.7.7", ttl=9) / TCP(sport=555, dport=80, flags="S"))
inner_packets.append(IP(src="10.0.0.2", dst="10.20.9.9", ttl=33) / ICMP(id=7, seq=1) / Raw(b"ping"))
inner_packets.append(IPv6(src="2001:db8:1::2", dst="2001:db8:20::5", hlim=50, tc=0x02) / UDP(sport=1, dport=2) / Raw(b"six" * 20))
for ip in inner_packets:
    ip = ip.__class__(bytes(ip))
    inside.append(fix(Ether(src=HOST, dst=GWIN) / ip))
    inner = decremented(ip)
    if inner.version == 4:
        tos, df, ptype = inner.tos, inner.flags.DF, 0x0800
    else:
        tos, df, ptype = inner.tc, True, 0x86DD
    outer = IP(src=LOCAL, dst=REMOTE, ttl=64, tos=tos, id=ident, flags="DF" if df else 0, proto=47)
    gre = GRE(chksum_present=1, key_present=1, seqnum_present=1, key=KEY, sequence_number=seq, proto=ptype)
    expect_out.append(fix(Ether(src=GWOUT, dst=NH) / outer / gre / inner))
    seq += 1
    ident += 1

drops = {}


def drop(reason, n=1):
    drops[reason] = drops.get(reason, 0) + n


# Inside packets that must not leave: no route, and a non-IP frame.
inside.append(fix(Ether(src=HOST, dst=GWIN) / IP(src="10.0.0.2", dst="172.16.5.5") / UDP() / Raw(b"nowhere")))
drop("no_route")
inside.append(fix(Ether(src=HOST, dst=GWIN, type=0x88CC) / Raw(b"\x00" * 46)))
drop("unsupported_ethertype")

# Decapsulation.
outside, expect_in = [], []
rseq = 0


def gre_from_peer(inner, key=KEY, seqn=None, csum=True, proto=0x0800, src=REMOTE, version=0, flags=0):
    g = GRE(chksum_present=1 if csum else 0, key_present=0 if key is None else 1, seqnum_present=0 if seqn is None else 1,
            key=key or 0, sequence_number=seqn or 0, proto=proto, version=version, routing_present=flags)
    return fix(Ether(src=NH, dst=GWOUT) / IP(src=src, dst=LOCAL, ttl=60) / g / inner)


good_inner = [IP(src="10.20.3.4", dst="10.0.0.2", ttl=40 + i, tos=i) / UDP(sport=7, dport=8 + i) / Raw(b"y" * (10 + 200 * i)) for i in range(5)]
good_inner.append(IPv6(src="2001:db8:20::5", dst="2001:db8:1::2", hlim=20) / UDP() / Raw(b"v6"))
for ip in good_inner:
    ip = ip.__class__(bytes(ip))
    outside.append(gre_from_peer(ip, seqn=rseq, proto=0x0800 if ip.version == 4 else 0x86DD))
    expect_in.append(fix(Ether(src=GWIN, dst=HOST) / decremented(ip)))
    rseq += 1

bad = IP(src="10.20.3.4", dst="10.0.0.2") / UDP() / Raw(b"bad")
outside.append(gre_from_peer(bad, key=999, seqn=rseq)); drop("key_mismatch")
p = gre_from_peer(bad, seqn=rseq)
p[GRE].chksum ^= 0x1234
outside.append(Ether(bytes(p))); drop("bad_checksum")
outside.append(gre_from_peer(bad, seqn=rseq, csum=False)); drop("missing_checksum")
outside.append(gre_from_peer(bad, seqn=None)); drop("missing_sequence")
outside.append(gre_from_peer(bad, seqn=rseq - 1)); drop("late_sequence")
outside.append(gre_from_peer(bad, seqn=rseq, proto=0x2000)); drop("unsupported_gre_protocol")
outside.append(gre_from_peer(bad, src="203.0.113.9", seqn=0)); drop("unknown_tunnel")
outside.append(gre_from_peer(bad, seqn=rseq, flags=1)); drop("gre_reserved_bits")
pptp = fix(Ether(src=NH, dst=GWOUT) / IP(src=REMOTE, dst=LOCAL, proto=47) / Raw(bytes.fromhex("3001880b0000002a00000001")))
outside.append(pptp); drop("pptp")
v2 = fix(Ether(src=NH, dst=GWOUT) / IP(src=REMOTE, dst=LOCAL, proto=47) / Raw(bytes.fromhex("00020800")) / bad)
outside.append(v2); drop("bad_gre_version")
trunc = fix(Ether(src=NH, dst=GWOUT) / IP(src=REMOTE, dst=LOCAL, proto=47) / Raw(bytes.fromhex("b0000800000000")))
outside.append(trunc); drop("truncated")
outside.append(fix(Ether(src=NH, dst=GWOUT) / IP(src=REMOTE, dst="192.0.2.77") / GRE() / bad)); drop("no_route")
# One more good one after all that: the sequence continues.
ip = IP(bytes(IP(src="10.20.3.4", dst="10.0.0.2", ttl=5) / UDP() / Raw(b"last")))
outside.append(gre_from_peer(ip, seqn=rseq + 1))
expect_in.append(fix(Ether(src=GWIN, dst=HOST) / decremented(ip)))

wrpcap(out + "/inside.pcap", inside)
wrpcap(out + "/outside.pcap", outside)
wrpcap(out + "/expect-outside.pcap", expect_out)
wrpcap(out + "/expect-inside.pcap", expect_in)
with open(out + "/expect-drops.json", "w") as f:
    json.dump({"drops": drops, "encap": len(expect_out), "decap": len(expect_in)}, f)
