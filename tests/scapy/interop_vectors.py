#!/usr/bin/python3
"""Peers that are not greway, modelled in scapy: a Linux ip6gre peer with default settings, MikroTik (EoIP,
clamp-tcp-mss) and Cisco (ip tcp adjust-mss), and the RFC 8200 option rules. An independent second
implementation of what greway must send.

Writes into OUTDIR:
  inside.pcap            plain IPv4/IPv6 from a host behind the gateway
  outside.pcap           what the peers send
  expect-outside.pcap    what greway must send on the outside port (any order), byte for byte
  expect-inside.pcap     what greway must send on the inside port (any order), byte for byte
  expect.json            drop reason -> count, and per-tunnel encap/decap counts

The gateway under test (tests/interop_pcap.rs): inside 10.0.0.1/24 + 2001:db8:1::1/64, outside 192.0.2.1/24 +
2001:db8:ffff::1/64, tunnels
  linux6  2001:db8:ffff::1 -> 2001:db8:ffff::7, no key, encap_limit = 4 (10.30.0.0/16, 2001:db8:30::/48)
  mik     192.0.2.1 -> 198.51.100.7, no key, mss_clamp = true (MTU 1476: MSS 1436 / 1416; 10.20.0.0/16,
          2001:db8:20::/48)
  cisco6  2001:db8:ffff::1 -> 2001:db8:ffff::8, key 7, mss_clamp = 1300 (10.40.0.0/16)
"""
import json
import sys

from scapy.all import GRE, IP, TCP, UDP, Ether, IPv6, Raw, wrpcap
from scapy.layers.inet6 import HBHOptUnknown, ICMPv6ParamProblem, IPv6ExtHdrDestOpt, PadN

out = sys.argv[1]
HOST, GWIN, GWOUT, NH = "02:00:00:00:00:0a", "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
LOCAL4, MIK = "192.0.2.1", "198.51.100.7"
LOCAL6, LINUX, CISCO = "2001:db8:ffff::1", "2001:db8:ffff::7", "2001:db8:ffff::8"
HOST4, HOST6, GW6IN = "10.0.0.2", "2001:db8:1::2", "2001:db8:1::1"


def fix(p):
    """Let scapy compute lengths and checksums, then freeze the bytes."""
    return Ether(bytes(p))


def decremented(ip):
    """The inner packet after one router hop (TTL/hop limit - 1), checksums recomputed by scapy."""
    ip = ip.__class__(bytes(ip))
    if ip.version == 4:
        ip.ttl -= 1
        del ip.chksum
    else:
        ip.hlim -= 1
    return ip.__class__(bytes(ip))


def clamped(ip, mss):
    """`ip` (already decremented) with its TCP MSS option set to `mss` and the TCP checksum recomputed by scapy
    from scratch (not incrementally, as greway does)."""
    ip = ip.__class__(bytes(ip))
    ip[TCP].options = [("MSS", mss) if o[0] == "MSS" else o for o in ip[TCP].options]
    del ip[TCP].chksum
    return ip.__class__(bytes(ip))


def linux_dest_opts(limit, nh=47):
    """The Destination Options header Linux's ip6_tunnel.c (init_tel_txopt) puts before GRE: the RFC 2473 Tunnel
    Encapsulation Limit (type 4, length 1) and a PadN of one zero byte, 8 bytes in all."""
    return IPv6ExtHdrDestOpt(nh=nh, options=[HBHOptUnknown(otype=4, optlen=1, optdata=bytes([limit])),
                                             PadN(optlen=1, optdata=b"\x00")])


def syn(src, dst, flags, mss, odd=False):
    """A TCP SYN/SYN-ACK the way Linux opens connections (MSS, SACK permitted, timestamps, NOP, window scale); with
    `odd` a NOP first, so the MSS value sits at an odd offset."""
    opts = [("MSS", mss), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None), ("WScale", 7)]
    if odd:
        opts = [("NOP", None)] + opts[:1] + opts[2:] + [("NOP", None)]
    l3 = IP(src=src, dst=dst, ttl=64, flags="DF") if ":" not in src else IPv6(src=src, dst=dst, hlim=64)
    p = l3 / TCP(sport=40000, dport=80, flags=flags, seq=1000, ack=0 if flags == "S" else 5000, window=64240,
                 options=opts)
    return p.__class__(bytes(p))


inside, outside, expect_in, expect_out = [], [], [], []
drops = {}
tunnels = {"linux6": {"encap": 0, "decap": 0}, "mik": {"encap": 0, "decap": 0}, "cisco6": {"encap": 0, "decap": 0}}
ident = 0  # greway numbers the IPv4 outer headers of its worker (IPv6 ones have no identification)


def drop(reason):
    drops[reason] = drops.get(reason, 0) + 1


def encap(ip, tunnel, hop_inner=None, outer_limit=None):
    """What greway sends for inner packet `ip` from the host into `tunnel`."""
    global ident
    inner = hop_inner if hop_inner is not None else decremented(ip)
    ptype = 0x0800 if inner.version == 4 else 0x86DD
    tos = inner.tos if inner.version == 4 else inner.tc
    if tunnel == "mik":
        df = inner.flags.DF if inner.version == 4 else True
        o = IP(src=LOCAL4, dst=MIK, ttl=64, tos=tos, id=ident, flags="DF" if df else 0, proto=47) / GRE(proto=ptype)
    elif tunnel == "linux6":
        o = IPv6(src=LOCAL6, dst=LINUX, hlim=64, tc=tos, fl=0) / linux_dest_opts(outer_limit) / GRE(proto=ptype)
    else:
        o = IPv6(src=LOCAL6, dst=CISCO, hlim=64, tc=tos, fl=0) / GRE(key_present=1, key=7, proto=ptype)
    expect_out.append(fix(Ether(src=GWOUT, dst=NH) / o / inner))
    tunnels[tunnel]["encap"] += 1
    if tunnel == "mik":
        ident += 1


# ---- the inside host ----------------------------------------------------------------------------------------
def from_host(ip):
    f = fix(Ether(src=HOST, dst=GWIN) / ip)
    inside.append(f)
    return f[1]


# encap_limit = 4: IPv4 and IPv6 go out behind Linux's Destination Options header.
ip = from_host(IP(src=HOST4, dst="10.30.0.5", ttl=64, tos=0x02) / UDP(sport=1, dport=2) / Raw(b"v4 to linux" * 3))
encap(ip, "linux6", outer_limit=4)
ip = from_host(IPv6(src=HOST6, dst="2001:db8:30::5", hlim=64) / UDP(sport=1, dport=2) / Raw(b"v6 to linux"))
encap(ip, "linux6", outer_limit=4)
# An inner packet with its own limit 3: the outer header carries 2 (RFC 2473 4.1.1, as Linux).
ip = from_host(IPv6(src=HOST6, dst="2001:db8:30::6", hlim=64) / linux_dest_opts(3, nh=17) / UDP(sport=1, dport=2) /
               Raw(b"lim3"))
encap(ip, "linux6", outer_limit=2)
# Limit 0: not encapsulated; ICMPv6 Parameter Problem code 0 pointing at the limit byte (40 + 2 + 2).
ip = from_host(IPv6(src=HOST6, dst="2001:db8:30::7", hlim=64) / linux_dest_opts(0, nh=17) / UDP(sport=1, dport=2) /
               Raw(b"lim0"))
expect_in.append(fix(Ether(src=GWIN, dst=HOST) / IPv6(src=GW6IN, dst=HOST6, hlim=64) /
                     ICMPv6ParamProblem(code=0, ptr=44) / Raw(bytes(ip))))

# mss_clamp = true on mik: SYNs lowered to 1436 (IPv4) / 1416 (IPv6); smaller MSS and non-SYN untouched.
ip = from_host(syn(HOST4, "10.20.0.5", "S", 1460, odd=True))
encap(ip, "mik", hop_inner=clamped(decremented(ip), 1436))
ip = from_host(syn(HOST4, "10.20.0.5", "S", 1200))
encap(ip, "mik")
ip = from_host(syn(HOST4, "10.20.0.5", "A", 1460))
encap(ip, "mik")
ip = from_host(syn(HOST6, "2001:db8:20::5", "S", 1440))
encap(ip, "mik", hop_inner=clamped(decremented(ip), 1416))
# mss_clamp = 1300 on cisco6 (IPv6 outer).
ip = from_host(syn(HOST4, "10.40.0.5", "S", 1460))
encap(ip, "cisco6", hop_inner=clamped(decremented(ip), 1300))
# What mss_clamp leaves alone on cisco6 (UDP, a TCP ACK) takes the IPv6-outer encapsulation fast path.
ip = from_host(IP(src=HOST4, dst="10.40.0.6", ttl=64, tos=0xb9) / UDP(sport=5, dport=6) / Raw(b"v4 to cisco"))
encap(ip, "cisco6")
ip = from_host(syn(HOST4, "10.40.0.6", "A", 1460))
encap(ip, "cisco6")
# No mss_clamp on linux6: a SYN goes as it is.
ip = from_host(syn(HOST4, "10.30.0.9", "S", 1460, odd=True))
encap(ip, "linux6", outer_limit=4)


# ---- the peers ----------------------------------------------------------------------------------------------
def from_linux(payload, dst=LOCAL6, src=LINUX):
    """A Linux ip6gre peer's outer IPv6 header: hop limit 64, traffic class 0 and (net.ipv6.auto_flowlabels=1)
    a flow label hashed from the flow, here any non-zero value."""
    f = fix(Ether(src=NH, dst=GWOUT) / IPv6(src=src, dst=dst, hlim=64, tc=0, fl=0x4b2a1) / payload)
    outside.append(f)
    return f


def to_host(inner, tunnel, hop_inner=None):
    expect_in.append(fix(Ether(src=GWIN, dst=HOST) / (hop_inner if hop_inner is not None else decremented(inner))))
    tunnels[tunnel]["decap"] += 1


# A default Linux ip6gre peer (encaplimit 4): IPv4 and IPv6 inside.
inner = IP(bytes(IP(src="10.30.1.1", dst=HOST4, ttl=63) / UDP(sport=3, dport=4) / Raw(b"from linux")))
from_linux(linux_dest_opts(4) / GRE(proto=0x0800) / inner)
to_host(inner, "linux6")
inner = IPv6(bytes(IPv6(src="2001:db8:30::1", dst=HOST6, hlim=63) / UDP(sport=3, dport=4) / Raw(b"from linux v6")))
from_linux(linux_dest_opts(4) / GRE(proto=0x86DD) / inner)
to_host(inner, "linux6")


def with_option(otype, limit=4):
    """Linux's header with an extra option of type `otype` (2 bytes of data) in front: Hdr Ext Len 1."""
    return IPv6ExtHdrDestOpt(nh=47, options=[HBHOptUnknown(otype=otype, optlen=2, optdata=b"\xaa\xbb"),
                                             HBHOptUnknown(otype=4, optlen=1, optdata=bytes([limit])),
                                             PadN(optlen=4, optdata=b"\x00" * 4)])


inner = IP(bytes(IP(src="10.30.1.1", dst=HOST4, ttl=63) / UDP(sport=3, dport=4) / Raw(b"opts")))
# RFC 8200 4.2: 00 skip.
from_linux(with_option(0x1E) / GRE(proto=0x0800) / inner)
to_host(inner, "linux6")
# 01 discard.
from_linux(with_option(0x5E) / GRE(proto=0x0800) / inner)
drop("unknown_ipv6_option")
# 10 discard and Parameter Problem code 2 pointing at the option type (offset 42), from the address the packet
# was sent to, back out to the sender.
f = from_linux(with_option(0x9E) / GRE(proto=0x0800) / inner)
expect_out.append(fix(Ether(src=GWOUT, dst=NH) / IPv6(src=LOCAL6, dst=LINUX, hlim=64) /
                      ICMPv6ParamProblem(code=2, ptr=42) / Raw(bytes(f[IPv6]))))
# 11 to a multicast destination: discarded silently.
from_linux(with_option(0xDE) / GRE(proto=0x0800) / inner, dst="ff02::1")
drop("unknown_ipv6_option")
# Malformed: PadN with non-zero data (Linux ip6_parse_tlv, RFC 4942 2.1.9.5).
bad = IPv6ExtHdrDestOpt(nh=47, options=[HBHOptUnknown(otype=4, optlen=1, optdata=b"\x04"),
                                        PadN(optlen=1, optdata=b"\x07")])
from_linux(bad / GRE(proto=0x0800) / inner)
drop("bad_ipv6_options")

# MikroTik EoIP (GRE version 1, protocol 0x6400, frame length, tunnel id 100 little-endian) and PPTP.
eoip_payload = bytes(Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP(src="10.99.0.1", dst="10.99.0.2"))
eoip = bytes.fromhex("20016400") + len(eoip_payload).to_bytes(2, "big") + (100).to_bytes(2, "little") + eoip_payload
outside.append(fix(Ether(src=NH, dst=GWOUT) / IP(src=MIK, dst=LOCAL4, proto=47) / Raw(eoip)))
drop("eoip")
outside.append(fix(Ether(src=NH, dst=GWOUT) / IP(src=MIK, dst=LOCAL4, proto=47) / Raw(bytes.fromhex("3001880b0000002a00000001"))))
drop("pptp")

# MSS clamping leaving the tunnel: SYN-ACKs from the far side.
inner = syn("10.20.3.4", HOST4, "SA", 1460)
outside.append(fix(Ether(src=NH, dst=GWOUT) / IP(src=MIK, dst=LOCAL4, ttl=60) / GRE(proto=0x0800) / inner))
to_host(inner, "mik", clamped(decremented(inner), 1436))
inner = syn("2001:db8:20::4", HOST6, "SA", 1440, odd=True)
outside.append(fix(Ether(src=NH, dst=GWOUT) / IP(src=MIK, dst=LOCAL4, ttl=60) / GRE(proto=0x86DD) / inner))
to_host(inner, "mik", clamped(decremented(inner), 1416))
# Both features at once: the Cisco-side tunnel over IPv6, its packet behind Linux's Destination Options.
inner = syn("10.40.3.4", HOST4, "S", 1460)
from_linux(linux_dest_opts(4) / GRE(key_present=1, key=7, proto=0x0800) / inner, src=CISCO)
to_host(inner, "cisco6", clamped(decremented(inner), 1300))

wrpcap(out + "/inside.pcap", inside)
wrpcap(out + "/outside.pcap", outside)
wrpcap(out + "/expect-outside.pcap", expect_out)
wrpcap(out + "/expect-inside.pcap", expect_in)
with open(out + "/expect.json", "w") as fh:
    json.dump({"drops": drops, "tunnels": tunnels}, fh)
