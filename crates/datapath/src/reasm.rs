//! Reassembly of outer IPv4 fragments addressed to us (RFC 791 section 3.2), before decapsulation.
//!
//! A transport network with a smaller MTU than the peer expected fragments the peer's GRE packets; greway
//! collects the pieces per (source, destination, identification, protocol) and hands the whole datagram to the
//! normal decapsulation path. The table is bounded (datagrams in progress, fragments per datagram, bytes, time),
//! so fragments that never complete cannot grow memory: they expire and are counted. Overlapping fragments make
//! the whole datagram invalid (as RFC 5722 requires for IPv6: a classic evasion trick). The datagram is rebuilt
//! in the first fragment's own buffer (its tailroom), so no buffer is allocated.
use crate::buf::PacketBuf;
use greway_wire::checksum;

const ETH: usize = 14;

/// Datagrams in progress per worker.
pub const MAX_DATAGRAMS: usize = 64;
/// Fragments per datagram.
pub const MAX_FRAGMENTS: usize = 16;

/// What happened to an offered fragment.
pub enum Offer<B> {
    /// Kept until the rest arrives.
    Held,
    /// The last missing piece arrived: the whole datagram (Ethernet header of the first fragment, IPv4 with
    /// fragment fields cleared and a fresh header checksum), and how many fragments were merged into it.
    Complete(B, usize),
    /// Not reassembled: this fragment and the datagram's other pieces, all to be dropped and counted.
    Dropped(Vec<B>),
}

struct Frag<B> {
    off: usize,
    len: usize,
    more: bool,
    pkt: B,
}

struct Datagram<B> {
    key: (u32, u32, u16, u8),
    deadline: u64,
    frags: Vec<Frag<B>>,
}

/// Per-worker reassembly table.
pub struct Reassembler<B> {
    dgrams: Vec<Datagram<B>>,
}

impl<B> Default for Reassembler<B> {
    fn default() -> Self {
        Reassembler { dgrams: Vec::new() }
    }
}

impl<B: PacketBuf> Reassembler<B> {
    /// Fragments held (all datagrams).
    pub fn is_empty(&self) -> bool {
        self.dgrams.is_empty()
    }

    /// Offer a fragment: `pkt` holds Ethernet + a valid IPv4 header (checked by the caller) with MF set or a
    /// non-zero offset, and exactly the IP packet (no padding). `deadline` is when an incomplete datagram is
    /// given up (TSC).
    pub fn offer(&mut self, pkt: B, deadline: u64) -> Offer<B> {
        let d = pkt.data();
        let ihl = usize::from(d[ETH] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([d[ETH + 2], d[ETH + 3]]));
        let word = u16::from_be_bytes([d[ETH + 6], d[ETH + 7]]);
        let more = word & 0x2000 != 0;
        let off = usize::from(word & 0x1fff) * 8;
        let len = total - ihl;
        let src = u32::from_be_bytes(d[ETH + 12..ETH + 16].try_into().expect("4"));
        let dst = u32::from_be_bytes(d[ETH + 16..ETH + 20].try_into().expect("4"));
        let key = (
            src,
            dst,
            u16::from_be_bytes([d[ETH + 4], d[ETH + 5]]),
            d[ETH + 9],
        );
        // Every fragment but the last carries a multiple of 8 bytes; nothing reaches past 65535.
        if (more && (len == 0 || len % 8 != 0)) || off + len > 65535 - ihl || !pkt.is_contiguous() {
            return self.abandon(key, pkt);
        }
        let i = match self.dgrams.iter().position(|g| g.key == key) {
            Some(i) => i,
            None => {
                if self.dgrams.len() >= MAX_DATAGRAMS {
                    return Offer::Dropped(vec![pkt]);
                }
                self.dgrams.push(Datagram {
                    key,
                    deadline,
                    frags: Vec::with_capacity(4),
                });
                self.dgrams.len() - 1
            }
        };
        let g = &mut self.dgrams[i];
        let overlaps = g
            .frags
            .iter()
            .any(|f| off < f.off + f.len && f.off < off + len);
        let second_last = !more && g.frags.iter().any(|f| !f.more);
        if overlaps || second_last || g.frags.len() >= MAX_FRAGMENTS {
            return self.abandon(key, pkt);
        }
        g.frags.push(Frag {
            off,
            len,
            more,
            pkt,
        });
        // Complete when the pieces cover 0..end without a gap and the last one is there.
        let Some(end) = g.frags.iter().find(|f| !f.more).map(|f| f.off + f.len) else {
            return Offer::Held;
        };
        let covered: usize = g.frags.iter().map(|f| f.len).sum();
        if covered != end {
            return Offer::Held;
        }
        let g = self.dgrams.swap_remove(i);
        rebuild(g.frags, end)
    }

    /// Give up datagrams whose time is up; their fragments are returned to be dropped and counted.
    pub fn expire(&mut self, now: u64, out: &mut dyn FnMut(B)) {
        let mut i = 0;
        while i < self.dgrams.len() {
            if self.dgrams[i].deadline <= now {
                for f in self.dgrams.swap_remove(i).frags {
                    out(f.pkt);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Everything held (worker stopping).
    pub fn drain(&mut self, out: &mut dyn FnMut(B)) {
        for g in self.dgrams.drain(..) {
            for f in g.frags {
                out(f.pkt);
            }
        }
    }

    fn abandon(&mut self, key: (u32, u32, u16, u8), pkt: B) -> Offer<B> {
        let mut all = vec![pkt];
        if let Some(i) = self.dgrams.iter().position(|g| g.key == key) {
            all.extend(self.dgrams.swap_remove(i).frags.into_iter().map(|f| f.pkt));
        }
        Offer::Dropped(all)
    }
}

/// Rebuild the datagram in the buffer of the fragment at offset 0.
fn rebuild<B: PacketBuf>(mut frags: Vec<Frag<B>>, end: usize) -> Offer<B> {
    frags.sort_by_key(|f| f.off);
    let mut rest = frags.split_off(1);
    let mut first = frags.pop().expect("one fragment");
    let ihl = usize::from(first.pkt.data()[ETH] & 0x0f) * 4;
    if first.off != 0 || first.pkt.append(end - first.len).is_none() {
        // No room in the first buffer for the whole datagram: not reassembled.
        let mut all = vec![first.pkt];
        all.extend(rest.into_iter().map(|f| f.pkt));
        return Offer::Dropped(all);
    }
    {
        let d = first.pkt.data_mut();
        for f in &rest {
            let fihl = usize::from(f.pkt.data()[ETH] & 0x0f) * 4;
            let src = &f.pkt.data()[ETH + fihl..ETH + fihl + f.len];
            d[ETH + ihl + f.off..ETH + ihl + f.off + f.len].copy_from_slice(src);
        }
        let ip = &mut d[ETH..ETH + ihl];
        ip[2..4].copy_from_slice(&((ihl + end) as u16).to_be_bytes());
        // Fragment fields cleared; DF, if any, kept.
        ip[6] &= 0x40;
        ip[7] = 0;
        ip[10..12].fill(0);
        let ck = checksum::checksum(ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
    }
    let n = 1 + rest.len();
    rest.clear();
    Offer::Complete(first.pkt, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;

    fn datagram(payload: usize, id: u16) -> Vec<u8> {
        let mut f = vec![0u8; ETH];
        f[12] = 8;
        let total = 20 + payload;
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            (id >> 8) as u8,
            id as u8,
            0,
            0,
            60,
            47,
            0,
            0,
        ];
        ip.extend_from_slice(&[198, 51, 100, 7, 192, 0, 2, 1]);
        let ck = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        f.extend(ip);
        f.extend((0..payload).map(|i| (i * 13 + 5) as u8));
        f
    }

    /// Split a whole datagram into fragments of `chunk` payload bytes.
    fn split(whole: &[u8], chunk: usize) -> Vec<VecBuf> {
        let payload = &whole[ETH + 20..];
        let mut out = Vec::new();
        let mut at = 0;
        while at < payload.len() {
            let len = chunk.min(payload.len() - at);
            let mut f = whole[..ETH + 20].to_vec();
            f[ETH + 2..ETH + 4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
            let more = at + len < payload.len();
            let word = ((at / 8) as u16) | if more { 0x2000 } else { 0 };
            f[ETH + 6..ETH + 8].copy_from_slice(&word.to_be_bytes());
            f[ETH + 10..ETH + 12].fill(0);
            let ck = checksum::checksum(&f[ETH..ETH + 20]);
            f[ETH + 10..ETH + 12].copy_from_slice(&ck.to_be_bytes());
            f.extend_from_slice(&payload[at..at + len]);
            out.push(VecBuf::new(&f));
            at += len;
        }
        out
    }

    #[test]
    fn reassembles_in_any_order() {
        let whole = datagram(1900, 7);
        for order in [[0usize, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let frags = split(&whole, 800);
            let mut frags: Vec<Option<VecBuf>> = frags.into_iter().map(Some).collect();
            let mut r = Reassembler::default();
            let mut done = None;
            for (n, i) in order.iter().enumerate() {
                match r.offer(frags[*i].take().unwrap(), 100) {
                    Offer::Held => assert!(n < 2),
                    Offer::Complete(b, n) => {
                        assert_eq!(n, 3);
                        done = Some(b)
                    }
                    Offer::Dropped(_) => panic!("dropped"),
                }
            }
            let got = done.expect("complete").to_vec();
            assert_eq!(got, whole, "order {order:?}");
            assert!(r.is_empty());
        }
    }

    #[test]
    fn overlaps_gaps_and_expiry_never_complete() {
        let whole = datagram(1600, 9);
        let mut r = Reassembler::default();
        let mut f = split(&whole, 800);
        assert!(matches!(r.offer(f.remove(0), 100), Offer::Held));
        // The same first fragment again overlaps: the whole datagram is dropped.
        let again = split(&whole, 800).remove(0);
        match r.offer(again, 100) {
            Offer::Dropped(all) => assert_eq!(all.len(), 2),
            _ => panic!("overlap accepted"),
        }
        assert!(r.is_empty());
        // Only the last piece ever comes: held until the deadline, then expired.
        assert!(matches!(
            r.offer(split(&whole, 800).pop().unwrap(), 100),
            Offer::Held
        ));
        let mut expired = 0;
        r.expire(99, &mut |_| expired += 1);
        assert_eq!(expired, 0);
        r.expire(100, &mut |_| expired += 1);
        assert_eq!(expired, 1);
        assert!(r.is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let mut r = Reassembler::default();
        for id in 0..MAX_DATAGRAMS as u16 {
            let f = split(&datagram(1600, id), 800).remove(0);
            assert!(matches!(r.offer(f, 100), Offer::Held));
        }
        let f = split(&datagram(1600, 999), 800).remove(0);
        assert!(matches!(r.offer(f, 100), Offer::Dropped(v) if v.len() == 1));
    }
}
