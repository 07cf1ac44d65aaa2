#!/usr/bin/python3
"""Decode ERSPAN captures with scapy (an independent decoder): for every frame of every pcap given, print one
JSON line with the outer addresses, the ERSPAN type (1, 2, 3; null when scapy finds no ERSPAN layer), the
session ID (null for type I) and the hex bytes of the mirrored Ethernet frame inside."""
import json
import sys

from scapy.all import GRE, IP, IPv6, rdpcap
from scapy.contrib.erspan import ERSPAN_I, ERSPAN_II, ERSPAN_III


def inner_of(p):
    g = p[GRE]
    if g.proto == 0x88BE and not g.seqnum_present:
        # Type I: no ERSPAN header (scapy would read the mirrored frame's first bytes as one).
        return 1, None, bytes(g.payload).hex()
    for cls, kind in ((ERSPAN_III, 3), (ERSPAN_II, 2), (ERSPAN_I, 1)):
        if cls in p:
            layer = p[cls]
            session = getattr(layer, "session_id", None) if kind != 1 else None
            return kind, session, bytes(layer.payload).hex()
    return None, None, None


for path in sys.argv[1:]:
    for p in rdpcap(path):
        ip = p[IP] if IP in p else (p[IPv6] if IPv6 in p else None)
        kind, session, inner = inner_of(p) if GRE in p else (None, None, None)
        print(json.dumps({
            "pcap": path.rsplit("/", 1)[-1],
            "src": ip.src if ip is not None else None,
            "dst": ip.dst if ip is not None else None,
            "type": kind,
            "session": session,
            "inner": inner,
        }))
