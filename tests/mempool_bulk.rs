//! `Mempool::alloc_bulk` (one `rte_pktmbuf_alloc_bulk` per burst, as `greway gen` allocates) on a real mempool:
//! the mbufs are valid and reset as DPDK's single allocation leaves them, and a short pool or a burst without
//! room fails cleanly (nothing taken, the burst unchanged). EAL can be initialised once per process, so this
//! file holds one test.
use greway::buf::PacketBuf;
use greway::dpdk::{sys, Burst, Mbuf, Mempool};
use std::collections::HashSet;

mod common;

/// The fields a reset mbuf must have: (data_off, data_len, pkt_len, nb_segs, refcnt, ol_flags, next is null,
/// pool).
fn state(m: &Mbuf) -> (u16, u16, u32, u16, u16, u64, bool, *mut sys::rte_mempool) {
    // SAFETY: test-only read of an mbuf we own.
    let r = unsafe { &*m.as_ptr() };
    let refcnt = r.refcnt;
    (
        r.data_off,
        r.data_len,
        r.pkt_len,
        r.nb_segs,
        refcnt,
        r.ol_flags,
        r.next.is_null(),
        r.pool,
    )
}

#[test]
fn bulk_alloc_gives_valid_reset_mbufs_and_fails_cleanly_when_short() {
    let eal = common::init_eal("bulktest", "0");
    const SIZE: u32 = 63;
    let pool = Mempool::new("bulktest", SIZE, 0, 2048 + 128, 0).expect("pool");
    assert_eq!(pool.available(), SIZE);

    // What a fresh single allocation looks like.
    let fresh = pool.alloc().expect("mbuf");
    let want = state(&fresh);
    assert_eq!(
        (want.1, want.2, want.3, want.4, want.6, want.7),
        (0, 0, 1, 1, true, pool.as_ptr())
    );
    drop(fresh);

    // Dirty every mbuf of the pool (data moved, data written, flags set), then give them back.
    let mut dirty = Vec::new();
    while let Some(mut m) = pool.alloc() {
        m.append(300).unwrap().fill(0xab);
        assert!(m.adj(17));
        // SAFETY: test-only write of the rx metadata of an mbuf we own.
        unsafe { (*m.as_ptr()).ol_flags = u64::from(sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD) };
        dirty.push(m);
    }
    assert_eq!(dirty.len(), SIZE as usize);
    drop(dirty);
    assert_eq!(pool.available(), SIZE);

    // Bulk allocations after what a burst holds: every mbuf reset, distinct, usable.
    let mut b: Burst<64> = Burst::new();
    let held = pool.alloc().expect("mbuf");
    let held_ptr = held.as_ptr();
    b.push(held).unwrap();
    assert!(pool.alloc_bulk(&mut b, 32));
    assert_eq!(b.len(), 33);
    assert_eq!(pool.available(), SIZE - 33);
    assert_eq!(b.as_slice()[0].as_ptr(), held_ptr, "held mbufs stay first");
    assert!(pool.alloc_bulk(&mut b, 0), "zero mbufs: nothing to do");
    assert_eq!(b.len(), 33);
    let mut seen = HashSet::new();
    for i in 0..b.len() {
        let m = b.get_mut(i);
        assert!(
            seen.insert(m.as_ptr() as usize),
            "mbuf {i} handed out twice"
        );
        assert_eq!(state(m), want, "mbuf {i} is reset");
        let d = m.append(1500).expect("room for a frame");
        d.fill(i as u8);
        assert_eq!(m.data().len(), 1500);
        assert!(m.data().iter().all(|&x| x == i as u8));
    }

    // A pool shorter than the request: false, nothing taken, the burst unchanged.
    let left = pool.available();
    assert_eq!(left, SIZE - 33);
    let mut c: Burst<64> = Burst::new();
    assert!(!pool.alloc_bulk(&mut c, left as usize + 1));
    assert_eq!((c.len(), pool.available()), (0, left));
    // A burst without room for the request: false, nothing taken.
    assert!(!pool.alloc_bulk(&mut b, 32));
    assert_eq!((b.len(), pool.available()), (33, left));
    // Exactly what is left: taken; then the pool is empty and both allocations fail cleanly.
    assert!(pool.alloc_bulk(&mut c, left as usize));
    assert_eq!((c.len(), pool.available()), (left as usize, 0));
    assert!(!pool.alloc_bulk(&mut c, 1));
    assert!(pool.alloc().is_none());
    assert_eq!(c.len(), left as usize);

    // truncate frees the tail; dropping the bursts frees the rest.
    c.truncate(5);
    assert_eq!((c.len(), pool.available()), (5, left - 5));
    drop(b);
    drop(c);
    assert_eq!(pool.available(), SIZE, "every mbuf back in the pool");
    drop(pool);
    drop(eal);
}
