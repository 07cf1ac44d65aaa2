#!/usr/bin/python3
"""The far side of greway's host interfaces (tests/host.rs). Run with /usr/bin/python3 (scapy).

Usage:
  host_peer.py listen-udp ADDR PORT       (in greway's host namespace) bind ADDR:PORT, print "ready", receive one
                                          datagram, print {"ttl", "from", "data"} and answer b"pong" to its sender
  host_peer.py listen-tcp ADDR PORT       (in greway's host namespace) listen on ADDR:PORT, print "ready", then
                                          wait (the kernel answers SYNs with SYN-ACKs)
  host_peer.py syn IFACE                  (on the inside wire) send a TCP SYN 10.0.0.2:40000 -> 10.0.0.1:179 with
                                          TTL 255 to greway and print what comes back, decoded by scapy
  host_peer.py udp-gre IFACE              (on the outside wire) send UDP 169.254.100.2 -> 169.254.100.1:3784 with
                                          TTL 255 inside GRE from the tunnel peer 192.0.2.7 and print the GRE
                                          packet that comes back, decoded
  host_peer.py flood IFACE N              (on the inside wire) send N TCP SYNs to 10.0.0.1:179, print the count

Every result is one JSON line on stdout.
"""
import json
import socket
import sys

GW_IN_MAC = "02:00:00:00:00:01"
GW_OUT_MAC = "02:00:00:00:00:02"
HOST_MAC = "02:00:00:00:00:0a"
PEER_MAC = "02:00:00:00:00:0b"


def listen_udp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # IP_RECVTTL / IP_TTL from linux/in.h (Python's socket module lacks the first).
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
    s.bind((addr, port))
    s.settimeout(20)
    print("ready", flush=True)
    data, anc, _, src = s.recvmsg(2048, socket.CMSG_SPACE(4))
    ttl = None
    for level, kind, val in anc:
        if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
            ttl = int.from_bytes(val[:4], sys.byteorder)
    print(json.dumps({"ttl": ttl, "from": list(src), "data": data.decode()}), flush=True)
    s.sendto(b"pong", src)


def listen_tcp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    print("ready", flush=True)
    s.settimeout(30)
    try:
        s.accept()
    except OSError:
        pass


def syn(iface):
    from scapy.all import IP, TCP, Ether, srp1

    q = Ether(dst=GW_IN_MAC, src=HOST_MAC) / IP(src="10.0.0.2", dst="10.0.0.1", ttl=255) / TCP(
        sport=40000, dport=179, flags="S", seq=1000
    )
    a = srp1(q, iface=iface, timeout=5, retry=2, verbose=False)
    if a is None:
        print(json.dumps({"answer": None}))
        return
    print(
        json.dumps(
            {
                "answer": True,
                "eth_src": a[Ether].src,
                "eth_dst": a[Ether].dst,
                "src": a[IP].src,
                "dst": a[IP].dst,
                "sport": a[TCP].sport,
                "dport": a[TCP].dport,
                "flags": str(a[TCP].flags),
                "ack": a[TCP].ack,
            }
        )
    )


def udp_gre(iface):
    from scapy.all import GRE, IP, UDP, AsyncSniffer, Ether, Raw, sendp

    q = (
        Ether(dst=GW_OUT_MAC, src=PEER_MAC)
        / IP(src="192.0.2.7", dst="192.0.2.1")
        / GRE()
        / IP(src="169.254.100.2", dst="169.254.100.1", ttl=255)
        / UDP(sport=3784, dport=3784)
        / Raw(b"ping")
    )

    def is_answer(p):
        return GRE in p and p[IP].src == "192.0.2.1" and UDP in p and bytes(p[UDP].payload) == b"pong"

    # Sent once the sniffer's socket is open; the answer is awaited for at most 10 s.
    sn = AsyncSniffer(
        iface=iface,
        lfilter=is_answer,
        count=1,
        timeout=10,
        started_callback=lambda: sendp(q, iface=iface, verbose=False),
    )
    sn.start()
    sn.join()
    got = sn.results
    if not got:
        print(json.dumps({"answer": None}))
        return
    a = got[0]
    inner = a[GRE].payload
    print(
        json.dumps(
            {
                "answer": True,
                "outer_src": a[IP].src,
                "outer_dst": a[IP].dst,
                "gre_proto": a[GRE].proto,
                "inner_src": inner.src,
                "inner_dst": inner.dst,
                "sport": a[UDP].sport,
                "dport": a[UDP].dport,
                "data": bytes(a[UDP].payload).decode(),
            }
        )
    )


def flood(iface, n):
    from scapy.all import IP, TCP, Ether, sendp

    frames = [
        Ether(dst=GW_IN_MAC, src=HOST_MAC)
        / IP(src="10.0.0.2", dst="10.0.0.1", ttl=255)
        / TCP(sport=10000 + (i % 50000), dport=179, flags="S", seq=i)
        for i in range(n)
    ]
    sendp(frames, iface=iface, verbose=False)
    print(json.dumps({"sent": n}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "listen-udp":
        listen_udp(sys.argv[2], int(sys.argv[3]))
    elif mode == "listen-tcp":
        listen_tcp(sys.argv[2], int(sys.argv[3]))
    elif mode == "syn":
        syn(sys.argv[2])
    elif mode == "udp-gre":
        udp_gre(sys.argv[2])
    elif mode == "flood":
        flood(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")
