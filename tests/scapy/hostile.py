#!/usr/bin/python3
"""Hostile traffic for greway (tests/hostile.rs): thousands of malformed, foreign and abusive frames mixed with
good traffic, on both ports. Run with /usr/bin/python3 (scapy).

Usage: hostile.py OUTDIR [SEED] [nojumbo]
  nojumbo: leave out the 9000-byte frames (net_pcap's infinite_rx=1 replay refuses multi-segment mbufs: the
           soak, scripts/soak.sh, uses this)

Writes into OUTDIR:
  inside.pcap    frames arriving on the inside port (host 10.0.0.2 and others behind the gateway)
  outside.pcap   frames arriving on the outside port (the tunnel peer, strangers, garbage)
  expect.json    {"inside_frames", "outside_frames", "encap", "decap", "cases": {case: count},
                  "must_drop": {reason: minimum count}}

The gateway under test (see tests/hostile.rs): inside 10.0.0.1/24 + 2001:db8:1::1/64 (MAC 02:00:00:00:00:01),
outside 192.0.2.1/24 (MAC 02:00:00:00:00:02), tunnel site-b local 192.0.2.1 remote 198.51.100.7 key 1001,
checksum on, routes 10.20.0.0/16, allowed_sources 10.20.0.0/16.

The frames are written with a hand-made pcap writer so that any length (0 bytes, 9000 bytes, truncated headers)
goes on the wire exactly as built.
"""
import json
import random
import struct
import sys

from scapy.all import ARP, ICMP, IP, UDP, Ether, IPv6, Raw
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr

out = sys.argv[1]
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 8)
jumbo = "nojumbo" not in sys.argv[3:]
HOST, GWIN, GWOUT, NH = "02:00:00:00:00:0a", "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
LOCAL, REMOTE, KEY = "192.0.2.1", "198.51.100.7", 1001

inside, outside = [], []
cases = {}
must_drop = {}
# decap: frames that must come out of the inside port decapsulated. decap_counted_max: the tunnel's decap
# counter may also count GRE-in-GRE packets that were decapsulated and then dropped (loop, no route).
expect = {"encap": 0, "decap": 0, "decap_counted_max": 0}


def add(port, case, frame, drop=None, encap=0, decap=0, decap_counted=0):
    port.append(bytes(frame))
    expect["decap_counted_max"] += decap or decap_counted
    cases[case] = cases.get(case, 0) + 1
    if drop:
        must_drop[drop] = must_drop.get(drop, 0) + 1
    expect["encap"] += encap
    expect["decap"] += decap


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def gre(inner, key=KEY, flags_extra=0, version=0, checksum=True, bad_checksum=False, proto=0x0800, seq=None):
    """A GRE header + payload built by hand: any flag bit, any version, right or wrong checksum."""
    fl = flags_extra | version
    opt = b""
    if checksum:
        fl |= 0x8000
        opt += b"\0\0\0\0"
    if key is not None:
        fl |= 0x2000
        opt += struct.pack("!I", key)
    if seq is not None:
        fl |= 0x1000
        opt += struct.pack("!I", seq)
    h = struct.pack("!HH", fl, proto) + opt
    b = bytearray(h + bytes(inner))
    if checksum:
        c = csum(bytes(b))
        if bad_checksum:
            c ^= 0x5A5A
        b[4:6] = struct.pack("!H", c)
    return bytes(b)


def outer(payload, src=REMOTE, dst=LOCAL, **ip):
    return Ether(src=NH, dst=GWOUT) / IP(src=src, dst=dst, proto=47, ttl=60, **ip) / Raw(payload)


def good_inner(i, size=40, src="10.20.0.5", dst="10.0.0.2"):
    return IP(src=src, dst=dst, ttl=30, id=i & 0xFFFF) / UDP(sport=4000 + (i % 1000), dport=53) / Raw(b"g" * size)


def good_gre_frame(i, size=40):
    return bytes(outer(gre(good_inner(i, size))))


def from_host(ip, src_mac=HOST):
    return Ether(src=src_mac, dst=GWIN) / ip


# --- good traffic, both directions ---------------------------------------------------------------------------
for i in range(600):
    add(outside, "good_decap", good_gre_frame(i, 20 + i % 900), decap=1)
for i in range(600):
    ip = IP(src="10.0.0.2", dst="10.20.%d.%d" % (i % 200, 1 + i % 250), ttl=64) / UDP(sport=i, dport=9) / Raw(b"e" * (i % 1200))
    add(inside, "good_encap", from_host(ip), encap=1)

# --- truncation: every length 0..60 of a good GRE frame and of a good inside frame ----------------------------
g = good_gre_frame(7, 200)
u = bytes(from_host(IP(src="10.0.0.2", dst="10.20.1.1") / UDP() / Raw(b"t" * 200)))
for n in range(0, 61):
    add(outside, "truncated_gre", g[:n])
    add(inside, "truncated_ip", u[:n])
must_drop["truncated"] = 2 * 14  # at least every frame shorter than an Ethernet header

# --- tiny frames (< 14 bytes) of random bytes --------------------------------------------------------------------
for i in range(200):
    add(inside if i % 2 else outside, "tiny", bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 14))))

# --- GRE versions 1..7, reserved bits, bad checksums, wrong keys, spoofed outer sources, unknown tunnels -------
for v in range(1, 8):
    for i in range(20):
        add(outside, "gre_version_%d" % v, bytes(outer(gre(good_inner(i), version=v))),
            drop="pptp" if v == 1 else "bad_gre_version")
for bit in range(1, 13):
    mask = 0x8000 >> bit
    if mask in (0x2000, 0x1000):  # K and S are defined by RFC 2890
        continue
    discard = mask in (0x4000, 0x0800, 0x0400)
    for i in range(10):
        add(outside, "gre_bit_%d" % bit, bytes(outer(gre(good_inner(i), flags_extra=mask))),
            drop="gre_reserved_bits" if discard else None, decap=0 if discard else 1)
for i in range(300):
    add(outside, "bad_gre_checksum", bytes(outer(gre(good_inner(i), bad_checksum=True))), drop="bad_checksum")
for i in range(100):
    add(outside, "no_gre_checksum", bytes(outer(gre(good_inner(i), checksum=False))), drop="missing_checksum")
for i in range(300):
    key = rng.choice([None, 0, 1000, 1002, 0xFFFFFFFF, rng.getrandbits(32) | 1 << 31])
    add(outside, "wrong_key", bytes(outer(gre(good_inner(i), key=key))),
        drop="key_mismatch")  # the peer is known, its tunnel requires key 1001
for i in range(300):
    src = "198.51.100.%d" % rng.choice([1, 6, 8, 200])
    add(outside, "spoofed_outer_source", bytes(outer(gre(good_inner(i)), src=src)), drop="unknown_tunnel")
for i in range(300):
    inner_src = rng.choice(["10.0.0.66", "192.0.2.1", "8.8.8.8", "10.21.0.1", "0.0.0.0"])
    add(outside, "spoofed_inner_source", bytes(outer(gre(good_inner(i, src=inner_src)))))
for i in range(200):
    add(outside, "gre_not_for_us", bytes(outer(gre(good_inner(i)), dst="192.0.2.%d" % rng.randrange(2, 250))))
for i in range(100):
    add(outside, "gre_from_other_subnet", bytes(outer(gre(good_inner(i)), src="203.0.113.%d" % (i % 250 + 1))),
        drop="unknown_tunnel")

# --- GRE in GRE: inner GRE to our own endpoint (a loop), to the remote, and tunnel-in-tunnel from the inside ---
for i in range(100):
    loop = IP(src="10.20.0.5", dst=LOCAL, proto=47) / Raw(gre(good_inner(i)))
    add(outside, "gre_in_gre_loop", bytes(outer(gre(loop))), decap_counted=1)
    nested = IP(src="10.20.0.5", dst=REMOTE, proto=47) / Raw(gre(good_inner(i)))
    add(outside, "gre_in_gre_to_remote", bytes(outer(gre(nested))), decap_counted=1)
    add(inside, "gre_to_our_outside_address", from_host(IP(src="10.0.0.2", dst=LOCAL, proto=47) / Raw(gre(good_inner(i)))),
        drop="unknown_tunnel")

# --- IPv4 fragments that never complete: outer GRE fragments, inner fragments, fragments to us -----------------
for i in range(200):
    add(outside, "outer_first_fragment",
        Ether(src=NH, dst=GWOUT) / IP(src=REMOTE, dst=LOCAL, proto=47, id=0x4000 + i, flags="MF") /
        Raw(gre(good_inner(i, 600))[:400]), drop="outer_fragment")
    add(outside, "outer_later_fragment",
        bytes(Ether(src=NH, dst=GWOUT) / IP(src=REMOTE, dst=LOCAL, proto=47, id=0x5000 + i, frag=50) /
              Raw(b"f" * 200)), drop="outer_fragment")
for i in range(200):
    frag = IP(src="10.20.0.5", dst="10.0.0.2", proto=17, id=0x6000 + i, flags="MF") / Raw(b"i" * 64)
    add(outside, "inner_fragment_decap", bytes(outer(gre(frag))), decap=1)
    add(inside, "fragment_to_us", from_host(IP(src="10.0.0.2", dst="10.0.0.1", proto=1, id=i, flags="MF") / Raw(b"p" * 64)))
    add(inside, "fragment_into_tunnel",
        from_host(IP(src="10.0.0.2", dst="10.20.3.3", proto=17, id=0x7000 + i, frag=100) / Raw(b"q" * 64)), encap=1)

# --- ARP storm: requests for us, for others, gratuitous replies, malformed ARP ---------------------------------
for i in range(3000):
    spa = "10.0.0.%d" % (100 + i % 150)
    mac = "02:00:00:01:%02x:%02x" % (i >> 8 & 0xFF, i & 0xFF)
    add(inside, "arp_request_for_us", Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=spa, pdst="10.0.0.1"))
for i in range(3000):
    mac = "02:00:00:02:%02x:%02x" % (i >> 8 & 0xFF, i & 0xFF)
    add(inside, "arp_request_for_others", Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
        ARP(op=1, hwsrc=mac, psrc="10.0.0.%d" % (100 + i % 150), pdst="10.0.0.%d" % (2 + i % 250 if i % 250 != 0 else 77)),
        drop="arp_ignored")
for i in range(500):
    add(outside, "arp_request_for_us_outside", Ether(src=NH, dst="ff:ff:ff:ff:ff:ff") /
        ARP(op=1, hwsrc=NH, psrc="192.0.2.%d" % (200 + i % 50), pdst=LOCAL))
    add(outside, "arp_gratuitous_reply", Ether(src=NH, dst="ff:ff:ff:ff:ff:ff") /
        ARP(op=2, hwsrc=NH, psrc="192.0.2.%d" % (100 + i % 50), pdst="192.0.2.%d" % (100 + i % 50)))
for i in range(200):
    a = bytearray(bytes(Ether(src=HOST, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=HOST, psrc="10.0.0.2", pdst="10.0.0.1")))
    a[14 + rng.choice([0, 2, 4, 5])] ^= 0x11  # hardware type, protocol type, or address lengths wrong
    add(inside, "arp_malformed", a, drop="arp_ignored")

# --- ND storm for us ----------------------------------------------------------------------------------------------
for i in range(500):
    src = "2001:db8:1::%x" % (0x100 + i)
    add(inside, "nd_solicit_for_us", Ether(src=HOST, dst="33:33:ff:00:00:01") /
        IPv6(src=src, dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="2001:db8:1::1") / ICMPv6NDOptSrcLLAddr(lladdr=HOST))

# --- pings of the gateway and TTL 1 into the tunnel (ICMP errors, rate limited) --------------------------------
for i in range(300):
    add(inside, "ping_gateway", from_host(IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(id=1, seq=i) / Raw(b"ping")))
    # Each becomes an ICMP time exceeded (a tx) while the ICMP error limiter (1000/s, burst 100) allows, then
    # ttl_expired drops.
    add(inside, "ttl1_into_tunnel", from_host(IP(src="10.0.0.2", dst="10.20.0.9", ttl=1) / UDP() / Raw(b"x" * 20)))

# --- jumbo frames: 9000 bytes (chained mbufs in the pcap PMD) ---------------------------------------------------
for i in range(30 if jumbo else 0):
    add(outside, "jumbo_gre", good_gre_frame(i, 8900))
    add(inside, "jumbo_into_tunnel", from_host(IP(src="10.0.0.2", dst="10.20.0.9", flags="DF") / UDP() / Raw(b"j" * 8958)))
    add(outside, "jumbo_garbage", bytes(rng.getrandbits(8) for _ in range(9000)))

# --- random garbage: random bytes, random bytes behind valid Ethernet/IPv4/GRE headers ---------------------------
for i in range(800):
    n = rng.randrange(14, 1515)
    add(inside if i % 2 else outside, "garbage", bytes(rng.getrandbits(8) for _ in range(n)))
for i in range(400):
    et = rng.choice([0x0800, 0x86DD, 0x0806, 0x8100, 0x88CC, 0x8847])
    n = rng.randrange(0, 300)
    f = bytes(Ether(src=HOST, dst=GWIN, type=et)) + bytes(rng.getrandbits(8) for _ in range(n))
    add(inside if i % 2 else outside, "garbage_after_ethernet", f)
for i in range(400):
    body = gre(Raw(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))))
    add(outside, "garbage_after_gre", bytes(outer(body)))


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


# Shuffle each port's frames (fixed seed) so that good and hostile traffic interleave.
rng.shuffle(inside)
rng.shuffle(outside)
write_pcap(out + "/inside.pcap", inside)
write_pcap(out + "/outside.pcap", outside)
expect.update(inside_frames=len(inside), outside_frames=len(outside), cases=cases, must_drop=must_drop)
with open(out + "/expect.json", "w") as f:
    json.dump(expect, f, indent=1, sort_keys=True)
print("inside %d frames, outside %d frames, %d cases" % (len(inside), len(outside), len(cases)))
