//! `Mbuf`: an owned `rte_mbuf` (freed on drop) and `Burst`: up to N owned mbufs for rx/tx.
//!
//! The per-packet operations mirror `rte_pktmbuf_prepend/adj/append/trim/headroom/tailroom/mtod` but are written
//! in Rust on the mbuf fields, so the hot path makes no FFI call per packet. `tests/mbuf_vs_c.rs` checks each of
//! them against DPDK's own C versions.
use super::sys;
use crate::buf::PacketBuf;
use std::ptr::NonNull;

/// An owned packet buffer. Dropping it returns it (and its chain) to its pool.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one `Mbuf` value; moving it to another thread moves the ownership.
unsafe impl Send for Mbuf {}

/// The start of an mbuf's data buffer, known non-null: every mbuf of a pool has its buffer, so the compiler may
/// drop the null tests an `Option<&[u8]>` made from it would otherwise carry (one per header view on the fast
/// paths).
#[inline(always)]
fn data_start(m: &sys::rte_mbuf) -> *mut u8 {
    let p = m.buf_addr as *mut u8;
    // SAFETY: `buf_addr` of an mbuf we own points at its data buffer, set when the pool was created.
    unsafe { std::hint::assert_unchecked(!p.is_null()) };
    p
}

impl Mbuf {
    /// Take ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must be a valid mbuf that nothing else owns or frees.
    #[inline(always)]
    pub unsafe fn from_raw(p: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(p)
    }

    /// Give up ownership without freeing (for tx).
    #[inline(always)]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    #[inline(always)]
    fn m(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn m_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively.
        unsafe { self.0.as_mut() }
    }

    /// Raw pointer (read-only use).
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    /// Bytes in the first segment (`data_len`).
    #[inline(always)]
    pub fn data_len(&self) -> usize {
        usize::from(self.m().data_len)
    }

    /// The port the packet arrived on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.m().port
    }
}

impl PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len is the initialised data of the first segment, owned by us.
        unsafe {
            std::slice::from_raw_parts(
                data_start(m).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m_mut();
        // SAFETY: as in data(), and we hold the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                data_start(m).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }
    #[inline(always)]
    fn pkt_len(&self) -> usize {
        self.m().pkt_len as usize
    }
    #[inline(always)]
    fn rx_ipv4_cksum_good(&self) -> bool {
        let m = self.m();
        // SAFETY: `packet_type` is the plain-u32 view of a union of integers; every bit pattern is valid.
        let ptype = unsafe { m.__bindgen_anon_1.packet_type };
        // GOOD alone (NONE sets both bits: the data's checksum is not right); and no tunnel parsed, else DPDK's
        // IP checksum flags describe the inner header (the outer one has RTE_MBUF_F_RX_OUTER_IP_CKSUM_BAD).
        m.ol_flags & u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_MASK)
            == u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD)
            && ptype & sys::RTE_PTYPE_TUNNEL_MASK == 0
    }
    #[inline(always)]
    fn headroom(&self) -> usize {
        usize::from(self.m().data_off)
    }
    #[inline(always)]
    fn tailroom(&self) -> usize {
        // As rte_pktmbuf_tailroom: the room after this (first) segment's data.
        let m = self.m();
        usize::from(m.buf_len) - usize::from(m.data_off) - usize::from(m.data_len)
    }
    #[inline(always)]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let m = self.m_mut();
        if n > usize::from(m.data_off) {
            return None;
        }
        let n16 = n as u16;
        m.data_off -= n16;
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        // SAFETY: the n bytes before the old data are inside the buffer (n <= old data_off) and now ours.
        Some(unsafe {
            std::slice::from_raw_parts_mut(data_start(m).add(usize::from(m.data_off)), n)
        })
    }
    #[inline(always)]
    fn adj(&mut self, n: usize) -> bool {
        let m = self.m_mut();
        if n > usize::from(m.data_len) {
            return false;
        }
        let n16 = n as u16;
        m.data_off += n16;
        m.data_len -= n16;
        m.pkt_len -= u32::from(n16);
        true
    }
    #[inline(always)]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if self.nb_segs() != 1 || n > self.tailroom() {
            return None;
        }
        let m = self.m_mut();
        let old = usize::from(m.data_off) + usize::from(m.data_len);
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        // SAFETY: [old, old+n) is within buf_len (n <= tailroom) and owned by us.
        Some(unsafe { std::slice::from_raw_parts_mut(data_start(m).add(old), n) })
    }
    #[inline(always)]
    fn trim(&mut self, n: usize) -> bool {
        if self.nb_segs() != 1 {
            return false;
        }
        let m = self.m_mut();
        if n > usize::from(m.data_len) {
            return false;
        }
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }
    #[inline(always)]
    fn nb_segs(&self) -> usize {
        usize::from(self.m().nb_segs)
    }
    fn alloc_sibling(&self) -> Option<Self> {
        let pool = self.m().pool;
        // SAFETY: `pool` is the live mempool this mbuf came from; a non-null result is a fresh mbuf we own.
        let m = unsafe { sys::shim_pktmbuf_alloc(pool) };
        // SAFETY: fresh mbuf, owned by nobody else.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }
    fn for_each_segment(&self, f: &mut dyn FnMut(&[u8])) {
        let mut p = self.0.as_ptr();
        while !p.is_null() {
            // SAFETY: each segment of a chain we own is a valid mbuf with initialised data.
            unsafe {
                let m = &*p;
                f(std::slice::from_raw_parts(
                    (m.buf_addr as *const u8).add(usize::from(m.data_off)),
                    usize::from(m.data_len),
                ));
                p = m.next;
            }
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; rte_pktmbuf_free frees the whole chain.
        unsafe { sys::shim_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Up to `N` owned mbufs, in order. Dropping it frees what is left with one bulk call.
pub struct Burst<const N: usize> {
    ptrs: [*mut sys::rte_mbuf; N],
    len: usize,
    /// Sum of `pkt_len` of the mbufs added by [`Burst::push`] and still held (what a tx burst sends, counted as
    /// packets arrive instead of in a second pass over the mbufs).
    bytes: u64,
}

// SAFETY: owns its mbufs, like Mbuf.
unsafe impl<const N: usize> Send for Burst<N> {}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Burst<N> {
    /// An empty burst.
    pub const fn new() -> Self {
        Burst {
            ptrs: [std::ptr::null_mut(); N],
            len: 0,
            bytes: 0,
        }
    }
    /// Number of mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// True when full.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == N
    }
    /// Add an mbuf; gives it back when full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        // One bounds check: the slot exists iff the burst has room.
        let Some(slot) = self.ptrs.get_mut(self.len) else {
            return Err(m);
        };
        self.bytes += u64::from(m.m().pkt_len);
        *slot = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Move every mbuf of `from`, in order, to the end of this burst when they all fit (`from` is left empty);
    /// false, with nothing moved, when they do not. One copy of the pointers; `bytes` is the moved mbufs'
    /// length sum, which the caller knows (an rx burst has no `push` count).
    #[inline(always)]
    pub fn append(&mut self, from: &mut Self, bytes: u64) -> bool {
        let n = from.len;
        let Some(dst) = self.ptrs.get_mut(self.len..self.len + n) else {
            return false;
        };
        dst.copy_from_slice(&from.ptrs[..n]);
        debug_assert_eq!(bytes, from.total_len() as u64);
        self.bytes += bytes;
        self.len += n;
        from.len = 0;
        from.bytes = 0;
        true
    }

    /// Bytes held, for a burst filled with [`Burst::push`] (see the field).
    #[inline(always)]
    pub fn pushed_bytes(&self) -> u64 {
        self.bytes
    }
    /// Borrow the i-th mbuf.
    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> &mut Mbuf {
        assert!(i < self.len);
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>; slots below len hold valid non-null mbufs.
        unsafe { &mut *(self.ptrs.as_mut_ptr().add(i) as *mut Mbuf) }
    }
    /// The mbufs held, borrowed.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>; the first len slots hold valid non-null mbufs.
        unsafe { std::slice::from_raw_parts(self.ptrs.as_ptr() as *const Mbuf, self.len) }
    }

    /// The packets held, to be rewritten in place (each stays owned by the burst).
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as `as_slice`; `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr() as *mut Mbuf, self.len) }
    }
    /// Take all mbufs out, in order. Those the iterator does not yield are freed when it drops.
    pub fn drain(&mut self) -> Drain<'_, N> {
        let end = self.len;
        self.len = 0;
        self.bytes = 0;
        Drain {
            burst: self,
            next: 0,
            end,
        }
    }

    /// Receive up to N packets from a queue, replacing the contents (which must be empty).
    #[inline(always)]
    pub fn rx(&mut self, port: u16, queue: u16) -> usize {
        debug_assert!(self.len == 0);
        // SAFETY: ptrs has room for N pointers; the PMD fills the first `n` with mbufs we now own.
        let n = unsafe { sys::shim_eth_rx_burst(port, queue, self.ptrs.as_mut_ptr(), N as u16) };
        self.len = usize::from(n);
        self.len
    }

    /// Receive up to `n` (at most N) packets.
    #[inline(always)]
    pub fn rx_n(&mut self, port: u16, queue: u16, n: usize) -> usize {
        debug_assert!(self.len == 0);
        let n = n.min(N) as u16;
        // SAFETY: ptrs has room for N >= n pointers; the PMD fills the first returned count with owned mbufs.
        let got = unsafe { sys::shim_eth_rx_burst(port, queue, self.ptrs.as_mut_ptr(), n) };
        self.len = usize::from(got);
        self.len
    }

    /// Sum of the packet lengths held.
    #[inline(always)]
    pub fn total_len(&self) -> usize {
        self.ptrs[..self.len]
            .iter()
            // SAFETY: slots below len are valid owned mbufs.
            .map(|&p| unsafe { (*p).pkt_len } as usize)
            .sum()
    }

    /// Transmit as many as the queue takes; the rest stay (moved to the front) for a retry or `free_all`.
    #[inline(always)]
    pub fn tx(&mut self, port: u16, queue: u16) -> usize {
        if self.len == 0 {
            return 0;
        }
        // SAFETY: the first len slots are owned mbufs; the PMD takes ownership of the first `sent`.
        let sent = usize::from(unsafe {
            sys::shim_eth_tx_burst(port, queue, self.ptrs.as_mut_ptr(), self.len as u16)
        });
        if sent < self.len {
            self.ptrs.copy_within(sent..self.len, 0);
        }
        self.len -= sent;
        // All sent (the common case): nothing held. Else recount what stayed (rare: a full tx queue).
        self.bytes = if self.len == 0 {
            0
        } else {
            self.total_len() as u64
        };
        sent
    }

    /// Keep the first `keep` mbufs and free the rest with one bulk call.
    pub fn truncate(&mut self, keep: usize) {
        if keep >= self.len {
            return;
        }
        // SAFETY: the slots keep..len are owned mbufs; after the call none is referenced again.
        unsafe {
            sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr().add(keep), (self.len - keep) as u32)
        };
        self.len = keep;
        self.bytes = self.total_len() as u64;
    }

    /// The free slots after the held mbufs, for a bulk allocation to write into ([`Burst::free_slots`] of them).
    #[inline(always)]
    pub(super) fn spare_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        // SAFETY: len <= N, so the offset is within the array or one past its end.
        unsafe { self.ptrs.as_mut_ptr().add(self.len) }
    }

    /// Slots left.
    #[inline(always)]
    pub fn free_slots(&self) -> usize {
        N - self.len
    }

    /// Take ownership of `n` mbufs written into the spare slots.
    ///
    /// # Safety
    /// `n <= self.free_slots()`, and the `n` slots from [`Burst::spare_ptr`] hold valid mbufs owned by nobody
    /// else and with `pkt_len` 0 (fresh from the pool).
    #[inline(always)]
    pub(super) unsafe fn assume_added(&mut self, n: usize) {
        debug_assert!(n <= self.free_slots());
        self.len += n;
    }

    /// Free everything held with one bulk call; returns how many were freed.
    #[inline(always)]
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            // SAFETY: the first n slots are owned mbufs; after the call none is referenced again.
            unsafe { sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), n as u32) };
            self.len = 0;
        }
        self.bytes = 0;
        n
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Iterator of [`Burst::drain`].
pub struct Drain<'a, const N: usize> {
    burst: &'a mut Burst<N>,
    next: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;
    #[inline(always)]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let p = self.burst.ptrs[self.next];
        self.next += 1;
        // SAFETY: slots below the drained length held owned, non-null mbufs; each is yielded exactly once.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) })
    }
}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = self.end - self.next;
        if rest > 0 {
            // SAFETY: the slots not yet yielded are still owned mbufs; freed once, never used again.
            unsafe {
                sys::rte_pktmbuf_free_bulk(self.burst.ptrs.as_mut_ptr().add(self.next), rest as u32)
            };
        }
    }
}
