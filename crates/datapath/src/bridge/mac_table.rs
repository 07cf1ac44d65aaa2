//! A bridge's MAC table: source MAC -> the member it was last seen on, bounded, aged, and shared by every worker.
//!
//! # Why one table for all workers
//!
//! Per-worker tables would need no atomics, but a worker would only ever learn from the frames RSS gives it. The
//! two directions of one conversation usually land on different workers: frames from an l2 port hash on their
//! own headers, frames from a TEB tunnel on the outer IP header (one tunnel, one queue). The worker that
//! forwards a reply would then never have seen the host it goes to, and would flood that host's traffic for as
//! long as the conversation lasts. So each bridge has one table, written by every worker without locks:
//!
//! * A slot is one `AtomicU64` holding the MAC (low 48 bits) and its member + 1 (high 16 bits), so a lookup reads
//!   the address and the member in one load and can never see one worker's MAC with another's member; the
//!   time it was last seen is an `AtomicU32` beside it (seconds of the TSC clock).
//! * Open addressing with linear probing over at most [`PROBE`] slots from the MAC's hash, in an array of twice
//!   `mac_table_size` slots (a power of two). Slots are never emptied again (an aged entry becomes a tombstone),
//!   so a MAC, if present, is always before the first empty slot of its window.
//! * Hot path: a known MAC costs one load of its slot (and of the time beside it), and one store of the time
//!   at most once a second per MAC (not once per frame: the line would bounce between the workers' caches).
//!   New and moved MACs take a compare-and-swap; a new one first reserves room in the shared count of entries.
//!   No locks, no allocation.
//! * Bounded: at most `mac_table_size` live entries (the count is reserved before a slot is taken). When it is
//!   reached, or when a MAC's window holds no free slot, the MAC is not learned and [`Learn::Full`] says so;
//!   nothing live is ever evicted. An entry older than `aging_s` is not used for forwarding; a new MAC may take
//!   its slot, and [`MacTable::expire`] (the control thread, once a second) turns the rest into tombstones and
//!   gives their room back.
//! * Races are benign: two workers learning the same new MAC at once contend for the same first free slot,
//!   and the loser leaves it (its frame is forwarded all the same; the next one refreshes the entry). A
//!   duplicate can only appear in the rare case where the two saw different free slots; lookups and updates
//!   take the first of the MAC's window, and the other one ages out. Every ordering is `Relaxed`: no other data
//!   is published through these words, and each word is consistent on its own.
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Slots a MAC may live in, from its hash on: four cache lines of entries.
pub const PROBE: usize = 32;

/// The largest `mac_table_size` (2^20 entries: 24 MiB of slots).
pub const MAX_SIZE: u32 = 1 << 20;

/// The longest `aging_s` (about 11.5 days; ages are compared as signed 32-bit second counts).
pub const MAX_AGING_S: u32 = 1_000_000;

/// The most members a bridge may have (a member index + 1 fits the entry's 16 bits beside the tombstone).
pub const MAX_MEMBERS: usize = 1024;

const MAC_BITS: u64 = (1 << 48) - 1;
const EMPTY: u64 = 0;
/// An entry given up by [`MacTable::expire`]: lookups go past it, a new MAC may take it.
const TOMBSTONE: u64 = u64::MAX;

/// What [`MacTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    /// The MAC was there, live, on this member (its time refreshed).
    Known,
    /// A new entry (or an aged one taken again).
    Learned,
    /// The MAC was live on another member: it moved to this one.
    Moved,
    /// The table holds `mac_table_size` entries, or the MAC's window is full of live ones: not learned.
    Full,
    /// Another worker changed the slot at the same moment: nothing was learned this time.
    Raced,
}

/// One entry as [`MacTable::entries`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    pub mac: [u8; 6],
    pub member: u16,
    /// Seconds since the MAC was last seen.
    pub age_s: u32,
}

/// See the module documentation.
#[derive(Debug)]
pub struct MacTable {
    entries: Box<[AtomicU64]>,
    seen: Box<[AtomicU32]>,
    /// Live entries (neither empty nor tombstones), at most `size`.
    len: AtomicUsize,
    size: usize,
    mask: usize,
    shift: u32,
    aging_s: u32,
}

#[inline(always)]
fn mac_u64(mac: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]])
}

#[inline(always)]
fn encode(mac: u64, member: u16) -> u64 {
    (u64::from(member) + 1) << 48 | mac
}

#[inline(always)]
fn member_of(e: u64) -> u16 {
    ((e >> 48) - 1) as u16
}

impl MacTable {
    /// A table of at most `size` entries (1..=[`MAX_SIZE`]) that age after `aging_s` seconds (at most
    /// [`MAX_AGING_S`]).
    pub fn new(size: u32, aging_s: u32) -> Self {
        let size = size.clamp(1, MAX_SIZE) as usize;
        let slots = (2 * size).next_power_of_two().max(PROBE);
        MacTable {
            entries: (0..slots).map(|_| AtomicU64::new(EMPTY)).collect(),
            seen: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            len: AtomicUsize::new(0),
            size,
            mask: slots - 1,
            shift: 64 - slots.trailing_zeros(),
            aging_s: aging_s.min(MAX_AGING_S),
        }
    }

    /// The configured bound (`mac_table_size`).
    pub fn capacity(&self) -> usize {
        self.size
    }

    /// Live entries (aged ones included until [`MacTable::expire`] removes them).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `aging_s`.
    pub fn aging_s(&self) -> u32 {
        self.aging_s
    }

    /// The MAC's first slot: Fibonacci hashing (the top bits of the product depend on every bit of the MAC,
    /// so consecutive addresses spread).
    #[inline(always)]
    fn home(&self, mac: u64) -> usize {
        (mac.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Seen more than `aging_s` before `now_s`. Signed: another worker's clock may be a second ahead of this
    /// one's, and an entry it just refreshed is not old.
    #[inline(always)]
    fn aged(&self, slot: usize, now_s: u32) -> bool {
        (now_s.wrapping_sub(self.seen[slot].load(Ordering::Relaxed)) as i32) > self.aging_s as i32
    }

    /// The member `mac` was last seen on, unless it is unknown or aged.
    #[inline]
    pub fn lookup(&self, mac: [u8; 6], now_s: u32) -> Option<u16> {
        let m = mac_u64(mac);
        let h = self.home(m);
        for i in 0..PROBE {
            let s = (h + i) & self.mask;
            let e = self.entries[s].load(Ordering::Relaxed);
            if e == EMPTY {
                return None;
            }
            if e != TOMBSTONE && e & MAC_BITS == m {
                return (!self.aged(s, now_s)).then(|| member_of(e));
            }
        }
        None
    }

    /// `mac` was seen on `member` at `now_s` (a unicast source: the caller checked).
    #[inline]
    pub fn learn(&self, mac: [u8; 6], member: u16, now_s: u32) -> Learn {
        let m = mac_u64(mac);
        let h = self.home(m);
        // The first empty slot or tombstone, and the first aged entry of another MAC, in the window.
        let mut free = None;
        let mut aged = None;
        for i in 0..PROBE {
            let s = (h + i) & self.mask;
            let e = self.entries[s].load(Ordering::Relaxed);
            if e == EMPTY {
                free = free.or(Some(s));
                break;
            }
            if e == TOMBSTONE {
                free = free.or(Some(s));
                continue;
            }
            let was_aged = self.aged(s, now_s);
            if e & MAC_BITS == m {
                if self.seen[s].load(Ordering::Relaxed) != now_s {
                    self.seen[s].store(now_s, Ordering::Relaxed);
                }
                if member_of(e) == member {
                    return if was_aged {
                        Learn::Learned
                    } else {
                        Learn::Known
                    };
                }
                return match self.entries[s].compare_exchange(
                    e,
                    encode(m, member),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) if was_aged => Learn::Learned,
                    Ok(_) => Learn::Moved,
                    Err(_) => Learn::Raced,
                };
            }
            if was_aged && aged.is_none() {
                aged = Some((s, e));
            }
        }
        // Not present. An aged entry's room is taken over as it is (it is already counted).
        if let Some((s, old)) = aged {
            return self.claim(s, old, encode(m, member), now_s);
        }
        let Some(s) = free else {
            return Learn::Full;
        };
        let reserved = self
            .len
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                (l < self.size).then_some(l + 1)
            });
        if reserved.is_err() {
            return Learn::Full;
        }
        let old = self.entries[s].load(Ordering::Relaxed);
        if old != EMPTY && old != TOMBSTONE {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Learn::Raced;
        }
        let v = self.claim(s, old, encode(m, member), now_s);
        if v != Learn::Learned {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        v
    }

    fn claim(&self, s: usize, old: u64, new: u64, now_s: u32) -> Learn {
        match self.entries[s].compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                self.seen[s].store(now_s, Ordering::Relaxed);
                Learn::Learned
            }
            Err(_) => Learn::Raced,
        }
    }

    /// Give up the entries not seen for more than `aging_s` at `now_s` (they become tombstones and their room
    /// is free again); returns how many. Off the hot path: the control thread calls it once a second.
    pub fn expire(&self, now_s: u32) -> usize {
        let mut n = 0;
        for s in 0..self.entries.len() {
            let e = self.entries[s].load(Ordering::Relaxed);
            if e == EMPTY || e == TOMBSTONE || !self.aged(s, now_s) {
                continue;
            }
            if self.entries[s]
                .compare_exchange(e, TOMBSTONE, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.len.fetch_sub(1, Ordering::Relaxed);
                n += 1;
            }
        }
        n
    }

    /// The live entries at `now_s` (one per MAC, the one forwarding uses), sorted by MAC.
    pub fn entries(&self, now_s: u32) -> Vec<MacEntry> {
        let mut out: Vec<MacEntry> = Vec::new();
        for s in 0..self.entries.len() {
            let e = self.entries[s].load(Ordering::Relaxed);
            if e == EMPTY || e == TOMBSTONE || self.aged(s, now_s) {
                continue;
            }
            let b = (e & MAC_BITS).to_be_bytes();
            let mac = [b[2], b[3], b[4], b[5], b[6], b[7]];
            if self.lookup(mac, now_s) != Some(member_of(e)) {
                // A duplicate behind the MAC's first slot (see the module documentation), or changed meanwhile.
                continue;
            }
            out.push(MacEntry {
                mac,
                member: member_of(e),
                age_s: (now_s.wrapping_sub(self.seen[s].load(Ordering::Relaxed)) as i32).max(0)
                    as u32,
            });
        }
        out.sort_unstable_by_key(|e| e.mac);
        out.dedup_by_key(|e| e.mac);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn mac(i: u32) -> [u8; 6] {
        let b = i.to_be_bytes();
        [0x02, 0x00, b[0], b[1], b[2], b[3]]
    }

    #[test]
    fn learns_looks_up_moves_and_refreshes() {
        let t = MacTable::new(16, 300);
        assert_eq!(t.lookup(mac(1), 10), None);
        assert_eq!(t.learn(mac(1), 3, 10), Learn::Learned);
        assert_eq!(t.learn(mac(1), 3, 11), Learn::Known);
        assert_eq!(t.lookup(mac(1), 11), Some(3));
        assert_eq!(t.learn(mac(1), 5, 12), Learn::Moved);
        assert_eq!(t.lookup(mac(1), 12), Some(5));
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.entries(20),
            vec![MacEntry {
                mac: mac(1),
                member: 5,
                age_s: 8
            }]
        );
    }

    #[test]
    fn entries_age_out_and_expire_frees_their_room() {
        let t = MacTable::new(2, 300);
        assert_eq!(t.learn(mac(1), 0, 100), Learn::Learned);
        assert_eq!(t.learn(mac(2), 1, 200), Learn::Learned);
        // Full: a third MAC is not learned, and nothing is evicted.
        assert_eq!(t.learn(mac(3), 1, 200), Learn::Full);
        assert_eq!(
            (t.lookup(mac(1), 200), t.lookup(mac(2), 200)),
            (Some(0), Some(1))
        );
        // 301 s after it was seen, mac(1) is aged: not used for forwarding any more.
        assert_eq!(t.lookup(mac(1), 401), None);
        assert_eq!(t.lookup(mac(1), 400), Some(0));
        assert_eq!(t.expire(401), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.learn(mac(3), 1, 401), Learn::Learned);
        assert_eq!(t.lookup(mac(3), 401), Some(1));
        // An aged MAC coming back is learned again, on its new member.
        assert_eq!(t.lookup(mac(2), 600), None);
        assert_eq!(t.learn(mac(2), 0, 600), Learn::Learned);
        assert_eq!(t.lookup(mac(2), 600), Some(0));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_bound_holds_for_a_mac_flood_and_every_mac_up_to_it_is_learned() {
        let size = 4096;
        let t = MacTable::new(size, 300);
        let mut full = 0;
        for i in 0..3 * size {
            match t.learn(mac(i.wrapping_mul(2_654_435_761)), (i % 7) as u16, 1) {
                Learn::Learned => {}
                Learn::Full => full += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(t.len(), size as usize);
        assert_eq!(full, 2 * size);
        // Sequential MACs (a typical flood tool's) as well.
        let t = MacTable::new(size, 300);
        for i in 0..size {
            assert_eq!(t.learn(mac(i), 0, 1), Learn::Learned, "{i}");
        }
        assert_eq!(t.learn(mac(size), 0, 1), Learn::Full);
        assert_eq!(t.entries(1).len(), size as usize);
    }

    #[test]
    fn workers_learning_at_once_keep_the_bound_and_agree() {
        let t = Arc::new(MacTable::new(1000, 300));
        let threads: Vec<_> = (0..4u16)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for round in 0..3 {
                        for i in 0..2000 {
                            let _ = t.learn(mac(i), w, round);
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert!(t.len() <= 1000, "{}", t.len());
        let shown = t.entries(2);
        assert!(shown.len() <= 1000);
        for e in &shown {
            assert_eq!(t.lookup(e.mac, 2), Some(e.member));
        }
    }
}
