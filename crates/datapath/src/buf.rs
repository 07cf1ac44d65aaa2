//! The packet buffer trait the datapath is written against.
//!
//! `Mbuf` (DPDK) implements it in `dpdk/`; [`VecBuf`] implements it on a plain `Vec<u8>` so every datapath rule
//! is unit-tested without EAL. Semantics follow DPDK's `rte_pktmbuf_*` calls: `prepend`/`adj` move the start of
//! the first segment, `append`/`trim` its end. Only the first segment is writable through this trait; chained
//! packets are exposed read-only through [`PacketBuf::segments`].

/// A packet buffer with headroom (DPDK mbuf semantics).
pub trait PacketBuf {
    /// Bytes of the first segment.
    fn data(&self) -> &[u8];
    /// Bytes of the first segment, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Total packet length over all segments.
    fn pkt_len(&self) -> usize;
    /// Free bytes before the data.
    fn headroom(&self) -> usize;
    /// Free bytes after the data of the first segment (as `rte_pktmbuf_tailroom`).
    fn tailroom(&self) -> usize;
    /// Grow the packet at the front by `n` bytes; returns the new first `n` bytes, or `None` (nothing changed)
    /// when the headroom is too small.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Remove `n` bytes from the front of the first segment; `false` (nothing changed) if it is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Grow the packet at the end by `n` bytes (single-segment packets only); returns the new bytes.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Remove `n` bytes from the end (single-segment packets only); `false` (nothing changed) otherwise.
    fn trim(&mut self, n: usize) -> bool;
    /// Number of segments (1 for a contiguous packet).
    fn nb_segs(&self) -> usize {
        1
    }
    /// Visit each segment's bytes in order.
    fn for_each_segment(&self, f: &mut dyn FnMut(&[u8])) {
        f(self.data())
    }
    /// True when the whole packet is in the first segment.
    fn is_contiguous(&self) -> bool {
        self.nb_segs() == 1
    }
    /// The receiving NIC verified the checksum of this packet's IPv4 header (the one at offset 14, as received)
    /// and found it good, and parsed no tunnel inside (so the verdict is about that header, not an inner one).
    /// The fast paths then skip their own check of it; anything else (no offload, unknown, bad, a tunnel the
    /// NIC parsed) is checked in software as always. Buffers without NIC metadata: false.
    fn rx_ipv4_cksum_good(&self) -> bool {
        false
    }
    /// A new, empty buffer of the same kind (an mbuf from the same pool), for the rare paths that turn one
    /// packet into several (fragmentation). `None` when none is available.
    fn alloc_sibling(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Default headroom of a [`VecBuf`], the same as DPDK's `RTE_PKTMBUF_HEADROOM`.
pub const DEFAULT_HEADROOM: usize = 128;

/// A `PacketBuf` over a `Vec<u8>`: a fixed-size backing store with a movable data window, like an mbuf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
    /// What a NIC's rx checksum offload would have said ([`PacketBuf::rx_ipv4_cksum_good`]); tests set it.
    rx_ipv4_cksum_good: bool,
}

impl VecBuf {
    /// A buffer holding `data` with `headroom` free bytes before it and `tailroom` after it.
    pub fn with_room(data: &[u8], headroom: usize, tailroom: usize) -> Self {
        let mut storage = vec![0u8; headroom + data.len() + tailroom];
        storage[headroom..headroom + data.len()].copy_from_slice(data);
        VecBuf {
            storage,
            start: headroom,
            end: headroom + data.len(),
            rx_ipv4_cksum_good: false,
        }
    }

    /// Mark the packet as a NIC with IPv4 rx checksum offload would (see [`PacketBuf::rx_ipv4_cksum_good`]).
    pub fn set_rx_ipv4_cksum_good(&mut self, good: bool) {
        self.rx_ipv4_cksum_good = good;
    }

    /// A buffer like a fresh 2 KiB mbuf: 128 bytes of headroom, the rest tailroom.
    pub fn new(data: &[u8]) -> Self {
        let tail = 2048usize.saturating_sub(data.len());
        Self::with_room(data, DEFAULT_HEADROOM, tail)
    }

    /// The packet bytes as a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    fn rx_ipv4_cksum_good(&self) -> bool {
        self.rx_ipv4_cksum_good
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    fn pkt_len(&self) -> usize {
        self.end - self.start
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.storage[self.start..self.start + n])
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.end;
        self.end += n;
        Some(&mut self.storage[old..self.end])
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
    fn alloc_sibling(&self) -> Option<Self> {
        Some(VecBuf::new(&[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_adj_append_trim_move_the_window() {
        let mut b = VecBuf::with_room(&[1, 2, 3], 4, 2);
        assert_eq!(b.headroom(), 4);
        b.prepend(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(b.data(), &[9, 8, 1, 2, 3]);
        assert!(b.prepend(3).is_none());
        assert_eq!(b.headroom(), 2);
        assert!(b.adj(3));
        assert_eq!(b.data(), &[2, 3]);
        assert!(!b.adj(3));
        b.append(2).unwrap().copy_from_slice(&[7, 7]);
        assert_eq!(b.data(), &[2, 3, 7, 7]);
        assert!(b.append(1).is_none());
        assert!(b.trim(3));
        assert_eq!(b.data(), &[2]);
        assert!(!b.trim(2));
    }
}
