//! The Rust mbuf helpers (no per-packet FFI) against DPDK's own C inline versions, on real mbufs from a real
//! mempool. EAL can be initialised once per process, so this file holds one test.
use greway::buf::PacketBuf;
use greway::dpdk::{sys, Mbuf, Mempool};

mod common;

fn alloc(pool: &Mempool) -> Mbuf {
    pool.alloc().expect("mbuf")
}

/// (data_off, data_len, pkt_len) of a raw mbuf.
fn fields(m: &Mbuf) -> (u16, u16, u32) {
    // SAFETY: test-only read of an mbuf we own.
    let r = unsafe { &*m.as_ptr() };
    (r.data_off, r.data_len, r.pkt_len)
}

#[test]
fn rust_mbuf_helpers_match_dpdk_c_versions() {
    let eal = common::init_eal("mbuftest", "0");
    let pool = Mempool::new("mbuftest", 255, 0, 2048 + 128, 0).expect("pool");
    let free0 = pool.available();

    // Each step: the same operation on two fresh mbufs, one in Rust, one in C; the fields must agree.
    for &(prep, app, adj, trim) in &[
        (0u16, 0u16, 0u16, 0u16),
        (14, 100, 0, 0),
        (128, 60, 10, 5),
        (129, 2000, 3, 70),
        (24, 1920, 60, 1),
        (1, 1921, 1, 2000),
    ] {
        let mut r = alloc(&pool);
        let c = alloc(&pool);
        let craw = c.as_ptr();
        // SAFETY: craw is an owned, valid mbuf for the duration of these calls.
        unsafe {
            assert_eq!(r.headroom(), usize::from(sys::shim_pktmbuf_headroom(craw)));
            assert_eq!(r.tailroom(), usize::from(sys::shim_pktmbuf_tailroom(craw)));
            assert_eq!(
                r.data().as_ptr(),
                sys::shim_pktmbuf_mtod(r.as_ptr()) as *const u8
            );

            let ca = sys::shim_pktmbuf_append(craw, app);
            let ra = r.append(usize::from(app)).map(|s| s.as_ptr());
            assert_eq!(ra.is_some(), !ca.is_null(), "append {app}");
            if let Some(p) = ra {
                assert_eq!(
                    p as usize - r.data().as_ptr() as usize,
                    ca as usize - sys::shim_pktmbuf_mtod(craw) as usize
                );
            }
            assert_eq!(fields(&r), fields(&c));

            let cp = sys::shim_pktmbuf_prepend(craw, prep);
            let rp = r.prepend(usize::from(prep)).map(|s| s.as_ptr());
            assert_eq!(rp.is_some(), !cp.is_null(), "prepend {prep}");
            assert_eq!(fields(&r), fields(&c));
            assert_eq!(
                r.data().as_ptr() as usize - (*r.as_ptr()).buf_addr as usize,
                (*craw).data_off as usize
            );

            let cj = sys::shim_pktmbuf_adj(craw, adj);
            assert_eq!(r.adj(usize::from(adj)), !cj.is_null(), "adj {adj}");
            assert_eq!(fields(&r), fields(&c));

            let ct = sys::shim_pktmbuf_trim(craw, trim);
            assert_eq!(r.trim(usize::from(trim)), ct == 0, "trim {trim}");
            assert_eq!(fields(&r), fields(&c));
            assert_eq!(r.headroom(), usize::from(sys::shim_pktmbuf_headroom(craw)));
            assert_eq!(r.tailroom(), usize::from(sys::shim_pktmbuf_tailroom(craw)));
            assert_eq!(
                r.data().as_ptr(),
                sys::shim_pktmbuf_mtod(r.as_ptr()) as *const u8
            );
        }
    }

    // Chained mbufs: tailroom is the last segment's, segments visit in order, append/trim refuse.
    let mut head = alloc(&pool);
    head.append(100).unwrap().fill(1);
    let mut tail = alloc(&pool);
    tail.append(51).unwrap().fill(2);
    let tail_raw = tail.into_raw();
    // SAFETY: both owned; after chaining, head owns tail.
    let rc = unsafe { sys::shim_pktmbuf_chain(head.as_ptr(), tail_raw) };
    assert_eq!(rc, 0);
    assert_eq!(head.nb_segs(), 2);
    assert_eq!(head.pkt_len(), 151);
    // SAFETY: as above.
    assert_eq!(
        head.tailroom(),
        usize::from(unsafe { sys::shim_pktmbuf_tailroom(head.as_ptr()) })
    );
    let mut seen = Vec::new();
    head.for_each_segment(&mut |s| seen.push(s.len()));
    assert_eq!(seen, vec![100, 51]);
    assert!(head.append(1).is_none());
    assert!(!head.trim(1));
    drop(head);

    // The rx IPv4 checksum offload verdict as a PMD leaves it in the mbuf: only GOOD without a parsed tunnel
    // counts (UNKNOWN, BAD, NONE = both bits, or GOOD about a tunnel's inner header do not).
    let m = alloc(&pool);
    assert!(!m.rx_ipv4_cksum_good(), "a fresh mbuf has no verdict");
    let set = |m: &Mbuf, flags: u32, ptype: u32| {
        // SAFETY: test-only write of the rx metadata of an mbuf we own, as a PMD's rx burst writes it.
        unsafe {
            let r = &mut *m.as_ptr();
            r.ol_flags = u64::from(flags);
            r.__bindgen_anon_1.packet_type = ptype;
        }
    };
    let ipv4_udp = sys::RTE_PTYPE_L2_ETHER | sys::RTE_PTYPE_L3_IPV4 | sys::RTE_PTYPE_L4_UDP;
    for (flags, ptype, good) in [
        (sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD, ipv4_udp, true),
        (sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD, 0, true),
        (
            sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD | sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD,
            ipv4_udp,
            true,
        ),
        (sys::RTE_MBUF_F_RX_IP_CKSUM_BAD, ipv4_udp, false),
        (sys::RTE_MBUF_F_RX_IP_CKSUM_NONE, ipv4_udp, false),
        (sys::RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN, ipv4_udp, false),
        (
            sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD,
            ipv4_udp | sys::RTE_PTYPE_TUNNEL_GRE,
            false,
        ),
    ] {
        set(&m, flags, ptype);
        assert_eq!(
            m.rx_ipv4_cksum_good(),
            good,
            "ol_flags {flags:#x} packet_type {ptype:#x}"
        );
    }
    drop(m);

    // Everything went back to the pool.
    assert_eq!(pool.available(), free0);
    drop(pool);
    drop(eal);
}
