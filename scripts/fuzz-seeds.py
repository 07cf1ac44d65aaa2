#!/usr/bin/python3
"""Write fuzz seed corpora from the tcpdump project's GRE captures (../shared/peer-captures).

wire_parsers gets each frame and each frame's bytes after Ethernet/IP; gateway gets each frame prefixed with the
port byte (0 inside, 1 outside), plus a few hand-made frames for the inside path. gateway_stateful gets operation
sequences (see fuzz/fuzz_targets/gateway_stateful.rs): each capture's frames with the clock advancing and
deferred work polled between them, and hand-made scenarios on the test kit's sequenced, reordering tunnel t1
(out-of-order sequence numbers, outer fragments complete and not, a neighbour-less inside host)."""
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


# gateway_stateful operations: frame (bit 2: port 1; 3: checksums fixed first), clock advance in ms, poll.
def op_frame(port, frame, fix=False):
    return bytes([(3 if fix else 0) | (port << 2)]) + struct.pack(">H", len(frame)) + frame


def op_wait(ms):
    return b"\x01" + struct.pack(">H", ms)


OP_POLL = b"\x02"


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return struct.pack(">H", ~s & 0xFFFF)


def ipv4(src, dst, proto, payload, ident=0, frag_word=0):
    h = struct.pack(">BBHHHBB2s4s4s", 0x45, 0, 20 + len(payload), ident, frag_word, 64, proto, b"\0\0",
                    bytes(src), bytes(dst))
    return h[:10] + csum(h) + h[12:] + payload


def eth(dst_last, src_last, payload):
    return bytes([2, 0, 0, 0, 0, dst_last, 2, 0, 0, 0, 0, src_last]) + b"\x08\x00" + payload


def udp(n):
    return struct.pack(">HHHH", 4000, 5000, 8 + n, 0) + bytes(i & 0xFF for i in range(n))


PEER, US = [198, 51, 100, 7], [192, 0, 2, 1]


def gre_t1(seq, inner_dst, n=32):
    """Outside frame: t1's peer to us, GRE with key 1001 and a sequence number, inner IPv4 UDP."""
    inner = ipv4([10, 20, 0, 5], inner_dst, 17, udp(n))
    return ipv4(PEER, US, 47, struct.pack(">HHII", 0x3000, 0x0800, 1001, seq) + inner, ident=seq)


def fragments(datagram, chunk):
    """Split an IPv4 datagram (no Ethernet) into fragments of `chunk` payload bytes (a multiple of 8)."""
    h, body = datagram[:20], datagram[20:]
    out = []
    for at in range(0, len(body), chunk):
        part = body[at:at + chunk]
        more = 0x2000 if at + chunk < len(body) else 0
        out.append(ipv4(h[12:16], h[16:20], h[9], part, ident=struct.unpack(">H", h[4:6])[0],
                        frag_word=more | (at // 8)))
    return out


def outside(ip):
    return op_frame(1, eth(2, 0xFE, ip))


def stateful_scenarios():
    known, unknown = [10, 0, 0, 2], [10, 0, 0, 3]
    inside = op_frame(0, eth(1, 0x0A, ipv4([10, 0, 0, 2], [10, 20, 1, 1], 17, udp(64))))
    yield "in-order", b"".join(outside(gre_t1(s, known)) for s in range(1, 6)) + OP_POLL
    # A gap the window waits for, then the timeout releases what is behind it.
    yield "reorder-timeout", (b"".join(outside(gre_t1(s, known)) for s in (1, 3, 4, 5)) + OP_POLL + op_wait(11)
                              + OP_POLL + outside(gre_t1(2, known)) + OP_POLL)
    yield "reorder-fill", b"".join(outside(gre_t1(s, known)) for s in (1, 3, 2, 5, 4)) + OP_POLL
    # Held for a neighbour that never comes, dropped when its time is up.
    yield "held", outside(gre_t1(1, unknown)) + outside(gre_t1(2, known)) + OP_POLL + op_wait(1001) + OP_POLL
    big = gre_t1(7, known, 1200)
    frags = fragments(big, 512)
    yield "fragments", b"".join(outside(f) for f in reversed(frags)) + OP_POLL
    yield "fragments-expire", b"".join(outside(f) for f in frags[1:]) + op_wait(1001) + OP_POLL
    yield "fragments-overlap", b"".join(outside(f) for f in frags[:2] + frags[:1]) + OP_POLL
    yield "encap", inside + inside + OP_POLL + op_wait(10) + OP_POLL
    yield "mixed", (inside + outside(gre_t1(1, known)) + outside(frags[1]) + outside(gre_t1(3, unknown))
                    + op_wait(5) + OP_POLL + outside(frags[0]) + outside(frags[2]) + op_wait(20) + OP_POLL)


n = 0
for name, seq in stateful_scenarios():
    put("gateway_stateful", seq)
for name in sorted(os.listdir(caps)):
    if not name.endswith(".pcap"):
        continue
    seq = b""
    for fr in frames(os.path.join(caps, name)):
        put("wire_parsers", fr)
        if len(fr) > 34:
            put("wire_parsers", fr[34:])
        put("gateway", b"\x01" + fr)
        put("gateway_stateful", op_frame(1, fr) + op_wait(20) + OP_POLL)
        seq += op_frame(1, fr) + op_wait(3) + OP_POLL
        n += 1
    put("gateway_stateful", seq)
print("seeded %d frames" % n)
