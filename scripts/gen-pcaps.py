#!/usr/bin/python3
"""Write the demo's input captures for dpdk-config/demo.toml (run with /usr/bin/python3: it needs scapy).

    dpdk-config/pcap/inside.pcap   plain IPv4 from host 10.0.0.2 on the inside port
    dpdk-config/pcap/outside.pcap  GRE from the tunnel peer 198.51.100.7 (tunnel "site-b") on the outside port

The script prints one line per frame saying what a gateway should do with it (the same labels are in the code
below). The output is deterministic: fixed timestamps, IP ids and payloads, so running the
script again gives byte-identical files.

Usage: /usr/bin/python3 scripts/gen-pcaps.py [OUTDIR]   (default: dpdk-config/pcap next to this script)
"""
import os
import sys

from scapy.all import ARP, GRE, ICMP, IP, UDP, Ether, Raw, raw, wrpcap

GW_INSIDE_MAC = "02:00:00:00:00:01"
GW_OUTSIDE_MAC = "02:00:00:00:00:02"
HOST_MAC = "02:00:00:00:00:0a"
UPSTREAM_MAC = "02:00:00:00:00:fe"  # the outside neighbor 192.0.2.254 (the router towards the peer)

GW_INSIDE_IP = "10.0.0.1"
HOST_IP = "10.0.0.2"
GW_OUTSIDE_IP = "192.0.2.1"
PEER_IP = "198.51.100.7"
KEY = 1001

BASE_TIME = 1_700_000_000  # 2023-11-14T22:13:20Z; every frame is 1 ms after the previous one


def pad_to(pkt, frame_len):
    """Append a deterministic payload so the Ethernet frame (without FCS) is frame_len bytes long."""
    missing = frame_len - len(raw(pkt))
    if missing < 0:
        raise ValueError(f"frame already {len(raw(pkt))} bytes > {frame_len}")
    return pkt / Raw(bytes((i * 7) & 0xFF for i in range(missing)))


def stamp(frames):
    for i, (pkt, _) in enumerate(frames):
        pkt.time = BASE_TIME + i / 1000
    return frames


def inside_frames():
    eth = Ether(src=HOST_MAC, dst=GW_INSIDE_MAC)
    f = []
    # Into the tunnel: route 10.20.0.0/16 -> tunnel site-b. UDP of several sizes, then ICMP echo.
    for n, (dst, size) in enumerate(
        [("10.20.0.5", 64), ("10.20.1.10", 128), ("10.20.0.5", 512), ("10.20.2.20", 1024), ("10.20.0.5", 1400)]
    ):
        p = eth / IP(src=HOST_IP, dst=dst, id=0x100 + n, flags="DF") / UDP(sport=40000 + n, dport=5001)
        f.append((pad_to(p, size), f"UDP {HOST_IP} -> {dst}, {size} B frame: encapsulate into site-b"))
    for n, size in enumerate([98, 1000]):
        p = eth / IP(src=HOST_IP, dst="10.20.0.5", id=0x200 + n) / ICMP(type="echo-request", id=0x4747, seq=n)
        f.append((pad_to(p, size), f"ICMP echo {HOST_IP} -> 10.20.0.5, {size} B frame: encapsulate into site-b"))
    # To the gateway itself.
    f.append(
        (
            Ether(src=HOST_MAC, dst="ff:ff:ff:ff:ff:ff")
            / ARP(op="who-has", hwsrc=HOST_MAC, psrc=HOST_IP, hwdst="00:00:00:00:00:00", pdst=GW_INSIDE_IP),
            f"ARP who-has {GW_INSIDE_IP}: answer from the inside port",
        )
    )
    p = eth / IP(src=HOST_IP, dst=GW_INSIDE_IP, id=0x300) / ICMP(type="echo-request", id=0x4748, seq=0)
    f.append((pad_to(p, 98), f"ICMP echo {HOST_IP} -> {GW_INSIDE_IP} (the gateway): echo reply on the inside port"))
    # No tunnel route for this destination.
    for n in range(2):
        p = eth / IP(src=HOST_IP, dst="172.16.0.1", id=0x400 + n) / UDP(sport=41000 + n, dport=5001)
        f.append((pad_to(p, 100), f"UDP {HOST_IP} -> 172.16.0.1: no tunnel route (drop)"))
    return stamp(f)


def gre_frame(seq, key=KEY, src=PEER_IP, inner_src="10.20.0.5", size=128, version=0, bad_checksum=False, sport=5001):
    inner = IP(src=inner_src, dst=HOST_IP, id=0x500 + seq, ttl=63) / UDP(sport=sport, dport=40000)
    gre = GRE(
        chksum_present=1, key_present=1, seqnum_present=1, version=version, key=key, sequence_number=seq, proto=0x0800
    )
    p = Ether(src=UPSTREAM_MAC, dst=GW_OUTSIDE_MAC) / IP(src=src, dst=GW_OUTSIDE_IP, id=0x600 + seq, ttl=60) / gre / inner
    p = pad_to(p, size)
    if bad_checksum:
        # Build with the right checksum (scapy fills it in), then change it by one: 0 and 0xffff are the same
        # one's complement value, so inverting would not always make it wrong.
        b = bytearray(raw(p))
        gre_off = 14 + 20
        good = int.from_bytes(b[gre_off + 4 : gre_off + 6], "big")
        b[gre_off + 4 : gre_off + 6] = ((good + 1) & 0xFFFF).to_bytes(2, "big")
        p = Ether(bytes(b))
    return p


def outside_frames():
    f = []
    sizes = [128, 64 + 36 + 14, 256, 512, 1024, 1400]
    for seq, size in enumerate(sizes):
        f.append(
            (
                gre_frame(seq, size=size),
                f"GRE key {KEY} seq {seq} from {PEER_IP}, inner UDP 10.20.0.5 -> {HOST_IP}, {size} B: decapsulate",
            )
        )
    nxt = len(sizes)
    f.append((gre_frame(2, size=200), "GRE seq 2 again (duplicate): late_sequence drop"))
    f.append((gre_frame(nxt, key=2002, size=200), "GRE key 2002 (wrong key): drop"))
    f.append((gre_frame(nxt, size=200, bad_checksum=True), "GRE with a wrong checksum: bad_checksum drop"))
    f.append((gre_frame(nxt, size=200, version=1), "GRE version 1 (PPTP): drop"))
    f.append((gre_frame(nxt, src="203.0.113.9", size=200), "GRE from unknown peer 203.0.113.9: unknown_tunnel drop"))
    f.append(
        (
            gre_frame(nxt, inner_src="10.99.0.5", size=200),
            "GRE seq 6 with inner source 10.99.0.5 (outside allowed_sources): spoofed_source drop",
        )
    )
    return stamp(f)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "dpdk-config", "pcap")
    os.makedirs(outdir, exist_ok=True)
    for name, frames in [("inside.pcap", inside_frames()), ("outside.pcap", outside_frames())]:
        path = os.path.normpath(os.path.join(outdir, name))
        wrpcap(path, [p for p, _ in frames])
        print(f"{path}: {len(frames)} frames")
        for i, (p, what) in enumerate(frames, 1):
            print(f"  {i:2} {len(raw(p)):5} B  {what}")


if __name__ == "__main__":
    main()
