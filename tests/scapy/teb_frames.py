#!/usr/bin/python3
"""Build the Ethernet frames of tests/teb_pcap.rs with scapy (an independent encoder): DIR/lan.pcap, the frames
of greway A's l2 port "lan", and DIR/trunk.pcap, those of its l2 port "trunk" (802.1Q VLANs 10, 20, 30, 31, 99
and untagged). The test reads them back by index; the comments give each frame's role."""
import sys

from scapy.all import ARP, IP, UDP, Dot1Q, Ether, Raw, wrpcap

A, B, C = "02:aa:00:00:00:01", "02:bb:00:00:00:02", "02:cc:00:00:00:03"
D, E, X = "02:dd:00:00:00:04", "02:ee:00:00:00:05", "02:aa:00:00:00:09"
T1, T2, T3, U = "02:30:00:00:00:01", "02:30:00:00:00:02", "02:30:00:00:00:03", "02:31:00:00:00:01"
BCAST = "ff:ff:ff:ff:ff:ff"


def udp(n, src="10.9.0.1", dst="10.9.0.2", tos=0):
    return IP(src=src, dst=dst, tos=tos, id=7) / UDP(sport=5000, dport=6000) / Raw(bytes(i % 251 for i in range(n)))


def arp(mac, ip, target):
    return ARP(op=1, hwsrc=mac, psrc=ip, pdst=target)


out = sys.argv[1]
lan = [
    Ether(src=A, dst=BCAST) / arp(A, "10.9.0.1", "10.9.0.2"),  # 0 broadcast: flooded
    Ether(src=A, dst=B) / udp(40, tos=0xb8),  # 1 unknown unicast: flooded
    Ether(src="01:00:5e:00:00:01", dst=B) / udp(10),  # 2 group source: dropped
    Ether(src=X, dst=A) / udp(10),  # 3 to a MAC learned on "lan": not sent back
    Ether(src=A, dst=B) / udp(1473 - 42),  # 4 1473 bytes: too big for the tunnel (copy to the trunk only)
    Ether(src=A, dst=B) / udp(1472 - 42),  # 5 1472 bytes: the largest frame the tunnel takes
]
trunk = [
    Ether(src=C, dst=A) / Dot1Q(vlan=10) / udp(20),  # 0 to A, learned on "lan": forwarded, untagged
    Ether(src=C, dst=BCAST) / Dot1Q(vlan=10) / arp(C, "10.9.0.3", "10.9.0.1"),  # 1 broadcast
    Ether(src=D, dst=E) / Dot1Q(vlan=20) / udp(30),  # 2 pseudowire
    Ether(src=E, dst=D) / Dot1Q(vlan=20) / udp(31),  # 3 pseudowire
    Ether(src=D, dst=E) / Dot1Q(vlan=99) / udp(10),  # 4 a VLAN of no bridge
    Ether(src=D, dst=E) / udp(10),  # 5 untagged: the trunk is a member by VLAN only
    Ether(src=T1, dst=BCAST) / Dot1Q(vlan=30) / arp(T1, "10.30.0.1", "10.30.0.9"),  # 6 "tiny": learned
    Ether(src=T2, dst=BCAST) / Dot1Q(vlan=30) / arp(T2, "10.30.0.2", "10.30.0.9"),  # 7 learned (table full)
    Ether(src=T3, dst=BCAST) / Dot1Q(vlan=30) / arp(T3, "10.30.0.3", "10.30.0.9"),  # 8 not learned: full
    Ether(src=U, dst=T3) / Dot1Q(vlan=31) / udp(12),  # 9 to the unlearned T3: flooded
    Ether(src=U, dst=T1) / Dot1Q(vlan=31) / udp(13),  # 10 to T1: forwarded
]
wrpcap(f"{out}/lan.pcap", lan)
wrpcap(f"{out}/trunk.pcap", trunk)
