#!/usr/bin/python3
"""Inputs for tests/tunnel_addresses.rs, built by scapy (an implementation independent of greway's).

Writes into OUTDIR:
  outside.pcap   GRE (key 1001) from the tunnel peer 198.51.100.7 to 192.0.2.1 carrying: an ICMP echo request
                 169.254.100.2 -> 169.254.100.1 (id 0x4242, seq 7), an ICMPv6 echo request fd00:100::2 ->
                 fd00:100::1 (id 0x4343, seq 8), and a UDP datagram to 169.254.100.1 (port 3784, BFD)
  inside.pcap    from host 10.0.0.2: UDP to 10.60.0.5 (a route via the tunnel peer 169.254.100.2), to
                 10.61.0.5 (a route with tunnel = "tun"), to 169.254.100.2 (the tunnel's subnet), and an
                 ICMP echo request to 169.254.100.1 (id 0x4444, seq 9)
  stream.pcap    from host 10.0.0.2, for the run-time test: an ICMP echo request to 169.254.200.1 (id 0x4545,
                 seq 10; an address of a tunnel added at run time) and UDP to 10.70.0.5 (a route added at run
                 time via 169.254.100.2)
"""
import sys

from scapy.all import GRE, ICMP, IP, UDP, Ether, IPv6, Raw, wrpcap
from scapy.layers.inet6 import ICMPv6EchoRequest

out = sys.argv[1]
HOST, GWIN, GWOUT, NH = "02:00:00:00:00:0a", "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
LOCAL, REMOTE, KEY = "192.0.2.1", "198.51.100.7", 1001


def fix(p):
    """Let scapy compute lengths and checksums, then freeze the bytes."""
    return Ether(bytes(p))


def from_peer(inner):
    proto = 0x0800 if inner.version == 4 else 0x86DD
    return fix(
        Ether(src=NH, dst=GWOUT)
        / IP(src=REMOTE, dst=LOCAL, ttl=60)
        / GRE(key_present=1, key=KEY, proto=proto)
        / inner
    )


def from_host(inner):
    return fix(Ether(src=HOST, dst=GWIN) / inner)


outside = [
    from_peer(IP(src="169.254.100.2", dst="169.254.100.1", ttl=64) / ICMP(type=8, id=0x4242, seq=7) / Raw(b"health")),
    from_peer(IPv6(src="fd00:100::2", dst="fd00:100::1", hlim=64) / ICMPv6EchoRequest(id=0x4343, seq=8, data=b"v6")),
    from_peer(IP(src="169.254.100.2", dst="169.254.100.1", ttl=255) / UDP(sport=49152, dport=3784) / Raw(b"\x20" * 24)),
]
inside = [
    from_host(IP(src="10.0.0.2", dst=d, ttl=64) / UDP(sport=5000, dport=2000) / Raw(b"x" * 18))
    for d in ["10.60.0.5", "10.61.0.5", "169.254.100.2"]
] + [from_host(IP(src="10.0.0.2", dst="169.254.100.1", ttl=64) / ICMP(type=8, id=0x4444, seq=9) / Raw(b"ping"))]
stream = [
    from_host(IP(src="10.0.0.2", dst="169.254.200.1", ttl=64) / ICMP(type=8, id=0x4545, seq=10) / Raw(b"late")),
    from_host(IP(src="10.0.0.2", dst="10.70.0.5", ttl=64) / UDP(sport=5000, dport=2000) / Raw(b"y" * 18)),
]
wrpcap(f"{out}/outside.pcap", outside)
wrpcap(f"{out}/inside.pcap", inside)
wrpcap(f"{out}/stream.pcap", stream)
