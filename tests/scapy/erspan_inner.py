#!/usr/bin/python3
"""Decode ERSPAN captures with scapy (an independent decoder): for every frame of every pcap given, print one
JSON line with the outer addresses, the ERSPAN type (1, 2, 3; null when scapy finds no ERSPAN layer), the
session ID (null for type I), the GRE sequence number (null without one), the header fields of types II (index,
T) and III (hardware ID, direction, timestamp, T), and the hex bytes of the mirrored Ethernet frame inside."""
import json
import sys

from scapy.all import GRE, IP, IPv6, rdpcap
from scapy.contrib.erspan import ERSPAN_I, ERSPAN_II, ERSPAN_III


def fields_of(p):
    """The ERSPAN header fields beyond the session, by type."""
    if ERSPAN_III in p:
        e = p[ERSPAN_III]
        return {"hwid": e.hw, "d": e.d, "timestamp": e.timestamp, "t": e.t, "gra": e.gra, "ft": e.ft}
    if ERSPAN_II in p:
        e = p[ERSPAN_II]
        return {"index": e.index, "t": e.t, "en": e.en, "vlan": e.vlan}
    return {}


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
        seq = p[GRE].sequence_number if GRE in p and p[GRE].seqnum_present else None
        extra = fields_of(p) if kind in (2, 3) else {}
        print(json.dumps({
            **extra,
            "seq": seq,
            "pcap": path.rsplit("/", 1)[-1],
            "src": ip.src if ip is not None else None,
            "dst": ip.dst if ip is not None else None,
            "type": kind,
            "session": session,
            "inner": inner,
        }))
