//! The outer reassembly table allocates nothing after construction: a fragment flood (datagrams that complete,
//! stay incomplete, overlap, pass the end, have too many pieces, overflow the table, expire) costs the worker no
//! `malloc`. A counting global allocator, armed on this thread only while the flood runs, proves it. Every
//! packet is built before the flood; freeing packets (dropped fragments, merged pieces) is not an allocation.
use greway_datapath::buf::VecBuf;
use greway_datapath::reasm::{Offer, Reassembler, MAX_DATAGRAMS, MAX_FRAGMENTS};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without a destructor, so reading it never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        // Relaxed: only this thread reads the count, after disarming.
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches no allocated memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is the one `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// An outer IPv4 fragment of datagram (`src`, `id`): `len` payload bytes at `off`, MF as `more`. The table reads
/// only the header fields, so the checksum is left zero.
fn fragment(src: u32, id: u16, off: usize, len: usize, more: bool) -> VecBuf {
    let mut f = vec![0u8; 14 + 20 + len];
    f[12] = 0x08;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    f[18..20].copy_from_slice(&id.to_be_bytes());
    let word = (off / 8) as u16 | if more { 0x2000 } else { 0 };
    f[20..22].copy_from_slice(&word.to_be_bytes());
    f[22] = 64;
    f[23] = 47;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[30..34].copy_from_slice(&[192, 0, 2, 1]);
    VecBuf::new(&f)
}

/// What a round of the flood did with its packets.
#[derive(Default, Debug, PartialEq)]
struct Outcome {
    offered: usize,
    completed: usize,
    merged: usize,
    dropped: usize,
    expired: usize,
}

#[test]
fn a_fragment_flood_allocates_nothing_after_construction() {
    // The probe counts at all.
    assert!(allocations_in(|| drop(std::hint::black_box(Box::new(1u64)))) > 0);

    const ROUNDS: usize = 20;
    let mut r: Reassembler<VecBuf> = Reassembler::new();
    let mut outcomes = Vec::with_capacity(ROUNDS);
    // Each round's packets, in the order they are offered (built before the flood).
    let rounds: Vec<Vec<VecBuf>> = (0..ROUNDS)
        .map(|round| {
            let src = 0xc633_6400 + round as u32;
            let mut p = Vec::new();
            // Complete datagrams, pieces out of order.
            for id in 0..8 {
                p.push(fragment(src, id, 800, 800, true));
                p.push(fragment(src, id, 1600, 300, false));
                p.push(fragment(src, id, 0, 800, true));
            }
            // Overlapping: the second piece overlaps the first.
            p.push(fragment(src, 100, 0, 800, true));
            p.push(fragment(src, 100, 792, 800, true));
            // Past the end the last piece gives.
            p.push(fragment(src, 101, 0, 8, true));
            p.push(fragment(src, 101, 16, 8, false));
            p.push(fragment(src, 101, 32, 8, true));
            // Too many pieces.
            for i in 0..=MAX_FRAGMENTS {
                p.push(fragment(src, 102, i * 8, 8, true));
            }
            // Incomplete datagrams fill the table; the rest overflow it; all that stayed expire.
            for id in 200..200 + MAX_DATAGRAMS as u16 + 40 {
                p.push(fragment(src, id, 8, 8, true));
            }
            p
        })
        .collect();

    let n = allocations_in(|| {
        for (round, pkts) in rounds.into_iter().enumerate() {
            let mut o = Outcome::default();
            for pkt in pkts {
                o.offered += 1;
                match r.offer(pkt, round as u64 + 1) {
                    Offer::Held => {}
                    Offer::Complete(whole, merged) => {
                        o.completed += 1;
                        o.merged += merged;
                        drop(whole);
                    }
                    Offer::Dropped(all) => o.dropped += all.len(),
                }
            }
            r.expire(round as u64 + 1, &mut |pkt| {
                drop(pkt);
                o.expired += 1;
            });
            outcomes.push(o);
        }
    });

    assert_eq!(n, 0, "allocations on the worker's reassembly path");
    assert!(r.is_empty());
    for o in outcomes {
        let expect = Outcome {
            offered: 8 * 3 + 2 + 3 + MAX_FRAGMENTS + 1 + MAX_DATAGRAMS + 40,
            completed: 8,
            merged: 8 * 3,
            dropped: 2 + 3 + MAX_FRAGMENTS + 1 + 40,
            expired: MAX_DATAGRAMS,
        };
        assert_eq!(o, expect);
    }
}
