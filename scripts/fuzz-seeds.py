#!/usr/bin/python3
"""Write fuzz seed corpora from the tcpdump project's GRE captures (../shared/peer-captures).

wire_parsers gets each frame and each frame's bytes after Ethernet/IP; gateway gets each frame prefixed with the
port byte (0 inside, 1 outside), plus a few hand-made frames for the inside path."""
import hashlib
import os
import struct
import sys

root = os.path.dirname(os.path.abspath(__file__)) + "/.."
caps = os.path.join(root, "..", "shared", "peer-captures")


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        yield data[off:off + incl]
        off += incl


def put(target, blob):
    d = os.path.join(root, "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()[:16]), "wb") as f:
        f.write(blob)


n = 0
for name in sorted(os.listdir(caps)):
    if not name.endswith(".pcap"):
        continue
    for fr in frames(os.path.join(caps, name)):
        put("wire_parsers", fr)
        if len(fr) > 34:
            put("wire_parsers", fr[34:])
        put("gateway", b"\x01" + fr)
        n += 1
print("seeded %d frames" % n)
