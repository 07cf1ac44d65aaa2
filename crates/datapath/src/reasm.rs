//! Reassembly of outer IPv4 fragments addressed to us (RFC 791 section 3.2), before decapsulation.
//!
//! A transport network with a smaller MTU than the peer expected fragments the peer's GRE packets; greway
//! collects the pieces per (source, destination, identification, protocol) and hands the whole datagram to the
//! normal decapsulation path. The table is bounded (at most [`MAX_DATAGRAMS`] datagrams in progress, at most
//! [`MAX_FRAGMENTS`] fragments each, one buffer per datagram, a deadline), so fragments that never complete cannot
//! grow memory: they expire and are counted. Overlapping fragments make the whole datagram invalid (as RFC 5722
//! requires for IPv6: a classic evasion trick), and so does a fragment beyond the end the last fragment gives.
//!
//! All of the table's memory is allocated when it is constructed: offering, completing, abandoning and expiring
//! fragments never allocate, so a fragment flood costs the worker no `malloc` (`tests/no_alloc.rs` proves it).
//! The datagram is rebuilt in the first fragment's own buffer (its tailroom), so no packet buffer is allocated
//! either, and the packets of an abandoned datagram come back in a fixed-capacity [`Spill`].
use crate::buf::PacketBuf;
use greway_wire::ipv4;

const ETH: usize = greway_wire::ethernet::HEADER_LEN;

/// Datagrams in progress per worker; a fragment of a new datagram beyond them is dropped (`outer_fragment`).
pub const MAX_DATAGRAMS: usize = 64;
/// Fragments per datagram; one more abandons the datagram (`outer_fragment`).
pub const MAX_FRAGMENTS: usize = 16;

/// What happened to an offered fragment.
pub enum Offer<B> {
    /// Kept until the rest arrives.
    Held,
    /// The last missing piece arrived: the whole datagram (Ethernet header of the first fragment, IPv4 with
    /// fragment fields cleared and a fresh header checksum), and how many fragments were merged into it.
    Complete(B, usize),
    /// Not reassembled: this fragment and the datagram's other pieces, all to be dropped and counted.
    Dropped(Spill<B>),
}

/// The packets of an abandoned datagram (the offered fragment and the ones held for it), in a fixed-capacity
/// array rather than a `Vec`, so abandoning allocates nothing. Iterate to take them (to free them in bulk, say);
/// dropping it drops whatever is left. `len()` (of [`ExactSizeIterator`]) counts them.
pub struct Spill<B> {
    pkts: [Option<B>; MAX_FRAGMENTS + 1],
    len: usize,
}

impl<B> Spill<B> {
    fn new() -> Self {
        Spill {
            pkts: std::array::from_fn(|_| None),
            len: 0,
        }
    }

    fn one(pkt: B) -> Self {
        let mut spill = Self::new();
        spill.push(pkt);
        spill
    }

    fn push(&mut self, pkt: B) {
        // At most the held fragments of one datagram plus the offered one: the array's size.
        self.pkts[self.len] = Some(pkt);
        self.len += 1;
    }
}

impl<B> Iterator for Spill<B> {
    type Item = B;
    fn next(&mut self) -> Option<B> {
        self.len = self.len.checked_sub(1)?;
        self.pkts[self.len].take()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<B> ExactSizeIterator for Spill<B> {}

/// The flow a fragment belongs to (RFC 791: source, destination, identification, protocol).
type Key = (u32, u32, u16, u8);

struct Frag<B> {
    off: usize,
    len: usize,
    pkt: B,
}

/// One datagram in progress: its fragments in `frags[..n]`.
struct Slot<B> {
    key: Key,
    deadline: u64,
    n: usize,
    /// Payload bytes held (the fragments never overlap, so complete when this reaches `end`).
    covered: usize,
    /// The end of the furthest fragment held.
    max_end: usize,
    /// The datagram's payload length, once its last fragment (MF clear) is here.
    end: Option<usize>,
    frags: [Option<Frag<B>>; MAX_FRAGMENTS],
}

impl<B> Slot<B> {
    fn empty() -> Self {
        Slot {
            key: (0, 0, 0, 0),
            deadline: 0,
            n: 0,
            covered: 0,
            max_end: 0,
            end: None,
            frags: std::array::from_fn(|_| None),
        }
    }

    /// Every packet held, out; the slot is empty afterwards.
    fn take_all(&mut self, out: &mut dyn FnMut(B)) {
        for f in &mut self.frags[..self.n] {
            if let Some(f) = f.take() {
                out(f.pkt);
            }
        }
        self.n = 0;
    }
}

/// Per-worker reassembly table, all of it allocated by [`Reassembler::new`].
pub struct Reassembler<B> {
    slots: Box<[Slot<B>]>,
    /// A permutation of the slot numbers: `order[..used]` are the datagrams in progress, the rest are free (so
    /// taking and freeing a slot are O(1) swaps, with no free list to allocate).
    order: [u8; MAX_DATAGRAMS],
    used: usize,
}

impl<B> Default for Reassembler<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> Reassembler<B> {
    /// An empty table with room for [`MAX_DATAGRAMS`] datagrams of [`MAX_FRAGMENTS`] fragments (the only
    /// allocation it ever makes).
    pub fn new() -> Self {
        Reassembler {
            slots: (0..MAX_DATAGRAMS).map(|_| Slot::empty()).collect(),
            order: std::array::from_fn(|i| i as u8),
            used: 0,
        }
    }
}

// Slot numbers are kept as bytes in `order`.
const _: () = assert!(MAX_DATAGRAMS <= 256);

impl<B: PacketBuf> Reassembler<B> {
    /// Fragments held (all datagrams).
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Offer a fragment: `pkt` holds Ethernet + a valid IPv4 header (checked by the caller) with MF set or a
    /// non-zero offset, and exactly the IP packet (no padding). `deadline` is when an incomplete datagram is
    /// given up (TSC).
    pub fn offer(&mut self, pkt: B, deadline: u64) -> Offer<B> {
        let ip = ipv4::Packet::new_unchecked(&pkt.data()[ETH..]);
        let ihl = ip.header_len();
        let total = usize::from(ip.total_len());
        let more = ip.more_frags();
        let off = usize::from(ip.frag_offset()) * 8;
        let len = total - ihl;
        let key = (
            u32::from(ip.src_addr()),
            u32::from(ip.dst_addr()),
            ip.ident(),
            ip.protocol(),
        );
        // Every fragment but the last carries a multiple of 8 bytes; nothing reaches past 65535.
        if (more && (len == 0 || !len.is_multiple_of(8)))
            || off + len > 65535 - ihl
            || !pkt.is_contiguous()
        {
            return self.abandon(key, pkt);
        }
        let pos = match self.find(key) {
            Some(pos) => pos,
            None => {
                if self.used == MAX_DATAGRAMS {
                    return Offer::Dropped(Spill::one(pkt));
                }
                let s = &mut self.slots[usize::from(self.order[self.used])];
                self.used += 1;
                s.key = key;
                s.deadline = deadline;
                s.covered = 0;
                s.max_end = 0;
                s.end = None;
                self.used - 1
            }
        };
        let s = &mut self.slots[usize::from(self.order[pos])];
        let overlaps = s.frags[..s.n]
            .iter()
            .flatten()
            .any(|f| off < f.off + f.len && f.off < off + len);
        // Nothing may lie beyond the end the last fragment gives, and there is only one last fragment.
        let past_end = match s.end {
            Some(end) => !more || off + len > end,
            None => !more && s.max_end > off + len,
        };
        if overlaps || past_end || s.n == MAX_FRAGMENTS {
            return self.abandon(key, pkt);
        }
        s.frags[s.n] = Some(Frag { off, len, pkt });
        s.n += 1;
        s.covered += len;
        s.max_end = s.max_end.max(off + len);
        if !more {
            s.end = Some(off + len);
        }
        // Complete when the last piece is there and the pieces (which never overlap nor pass the end) add up
        // to it: they cover 0..end without a gap.
        let end = match s.end {
            Some(end) if s.covered == end => end,
            _ => return Offer::Held,
        };
        let done = rebuild(s, end);
        self.release(pos);
        done
    }

    /// Give up datagrams whose time is up; their fragments are returned to be dropped and counted.
    pub fn expire(&mut self, now: u64, out: &mut dyn FnMut(B)) {
        let mut pos = 0;
        while pos < self.used {
            let s = &mut self.slots[usize::from(self.order[pos])];
            if s.deadline <= now {
                s.take_all(out);
                self.release(pos);
            } else {
                pos += 1;
            }
        }
    }

    /// Everything held (worker stopping).
    pub fn drain(&mut self, out: &mut dyn FnMut(B)) {
        for &id in &self.order[..self.used] {
            self.slots[usize::from(id)].take_all(out);
        }
        self.used = 0;
    }

    /// Where in `order` the datagram `key` is in progress.
    fn find(&self, key: Key) -> Option<usize> {
        self.order[..self.used]
            .iter()
            .position(|&id| self.slots[usize::from(id)].key == key)
    }

    /// Free the slot at `order[pos]` (its fragments already taken).
    fn release(&mut self, pos: usize) {
        self.used -= 1;
        self.order.swap(pos, self.used);
    }

    /// Drop `pkt` and the datagram `key`'s held fragments, if any.
    fn abandon(&mut self, key: Key, pkt: B) -> Offer<B> {
        let Some(pos) = self.find(key) else {
            return Offer::Dropped(Spill::one(pkt));
        };
        let spill = spill_all(&mut self.slots[usize::from(self.order[pos])], Some(pkt));
        self.release(pos);
        Offer::Dropped(spill)
    }
}

/// `extra` and every packet the slot holds; the slot is empty afterwards.
fn spill_all<B>(s: &mut Slot<B>, extra: Option<B>) -> Spill<B> {
    let mut spill = Spill::new();
    if let Some(p) = extra {
        spill.push(p);
    }
    s.take_all(&mut |p| spill.push(p));
    spill
}

/// Rebuild the datagram in the buffer of the fragment at offset 0; the slot is empty afterwards.
fn rebuild<B: PacketBuf>(s: &mut Slot<B>, end: usize) -> Offer<B> {
    let n = s.n;
    let first = s.frags[..n]
        .iter()
        .position(|f| f.as_ref().is_some_and(|f| f.off == 0))
        .and_then(|i| s.frags[i].take());
    // No fragment at offset 0 cannot happen once the pieces cover 0..end; no room in the first buffer for the
    // whole datagram can: either way, not reassembled.
    let mut first = match first {
        Some(f) => f,
        None => return Offer::Dropped(spill_all(s, None)),
    };
    if first.pkt.append(end - first.len).is_none() {
        return Offer::Dropped(spill_all(s, Some(first.pkt)));
    }
    let ihl = ipv4::Packet::new_unchecked(&first.pkt.data()[ETH..]).header_len();
    let d = first.pkt.data_mut();
    for f in s.frags[..n].iter().flatten() {
        let fihl = ipv4::Packet::new_unchecked(&f.pkt.data()[ETH..]).header_len();
        let src = &f.pkt.data()[ETH + fihl..ETH + fihl + f.len];
        d[ETH + ihl + f.off..ETH + ihl + f.off + f.len].copy_from_slice(src);
    }
    let mut ip = ipv4::Packet::new_unchecked(&mut d[ETH..]);
    ip.set_total_len((ihl + end) as u16);
    // Fragment fields cleared; DF, if any, kept.
    ip.set_flags_frag(if ip.dont_frag() {
        ipv4::FLAG_DONT_FRAGMENT
    } else {
        0
    });
    ip.fill_checksum();
    // The other pieces are merged into `first`: freed here.
    s.take_all(&mut drop);
    Offer::Complete(first.pkt, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use greway_wire::checksum;

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

    /// One fragment of datagram `id`: `len` payload bytes at byte offset `off`, MF as `more`.
    fn fragment(id: u16, off: usize, len: usize, more: bool) -> VecBuf {
        let whole = datagram(off + len, id);
        let mut f = split(&whole, off + len).remove(0).to_vec();
        f.drain(ETH + 20..ETH + 20 + off);
        f[ETH + 2..ETH + 4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        let word = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[ETH + 6..ETH + 8].copy_from_slice(&word.to_be_bytes());
        VecBuf::new(&f)
    }

    #[test]
    fn a_fragment_past_the_last_ones_end_abandons_the_datagram() {
        // Regression: 0..8 and 16..24 (last) plus 32..40 add up to the end (24) with a gap at 8..16; the
        // datagram was taken as complete and the copy of 32..40 indexed past the rebuilt packet (a panic).
        for order in [[0usize, 1, 2], [0, 2, 1], [2, 1, 0]] {
            let mut r = Reassembler::default();
            let frags = [(0, 8, true), (16, 8, false), (32, 8, true)];
            let mut got = Vec::new();
            for i in order {
                let (off, len, more) = frags[i];
                got.push(match r.offer(fragment(5, off, len, more), 100) {
                    Offer::Held => 0,
                    Offer::Dropped(all) => all.len(),
                    Offer::Complete(..) => panic!("completed with a gap, order {order:?}"),
                });
            }
            let mut left = 0;
            r.drain(&mut |_| left += 1);
            assert_eq!(
                got.iter().sum::<usize>() + left,
                3,
                "order {order:?}: {got:?}"
            );
        }
        // A second last fragment, even one that agrees, abandons it too.
        let mut r = Reassembler::default();
        assert!(matches!(
            r.offer(fragment(6, 16, 8, false), 100),
            Offer::Held
        ));
        assert!(
            matches!(r.offer(fragment(6, 16, 8, false), 100), Offer::Dropped(all) if all.len() == 2)
        );
    }

    #[test]
    fn too_many_fragments_abandon_the_datagram() {
        let mut r = Reassembler::default();
        for i in 0..MAX_FRAGMENTS {
            assert!(matches!(
                r.offer(fragment(8, i * 8, 8, true), 100),
                Offer::Held
            ));
        }
        match r.offer(fragment(8, MAX_FRAGMENTS * 8, 8, false), 100) {
            Offer::Dropped(all) => assert_eq!(all.len(), MAX_FRAGMENTS + 1),
            _ => panic!("more than MAX_FRAGMENTS held"),
        }
        assert!(r.is_empty());
        // Exactly MAX_FRAGMENTS complete.
        for i in 0..MAX_FRAGMENTS - 1 {
            assert!(matches!(
                r.offer(fragment(9, i * 8, 8, true), 100),
                Offer::Held
            ));
        }
        let last = fragment(9, (MAX_FRAGMENTS - 1) * 8, 8, false);
        assert!(matches!(r.offer(last, 100), Offer::Complete(_, n) if n == MAX_FRAGMENTS));
    }
}
