//! IPv4 longest-prefix match, DIR-24-8 (the `rte_lpm` layout, in safe Rust).
//!
//! # Layout
//! - `tbl24`: 2^24 `u32` entries (64 MiB), indexed by the top 24 bits of the address. It is
//!   allocated zeroed (`calloc`), so the kernel only backs the pages that routes touch.
//! - `tbl8`: groups of 256 `u32` entries, one group per /24 that holds a prefix longer than /24,
//!   indexed by the low 8 bits of the address.
//!
//! An entry is `VALID (bit 31) | EXTENDED (bit 30) | value (bits 0..30)`. In `tbl24`, an extended
//! entry's value is a `tbl8` group index; otherwise it is a next hop. `tbl8` entries are never
//! extended. A lookup is thus one `tbl24` load and at most one `tbl8` load.
//!
//! # Build
//! Routes are sorted by (prefix length, network) and painted shortest first: every prefix
//! overwrites the whole range it covers, so longer prefixes win whatever the insertion order.
//! Because every prefix longer than /24 comes after every prefix of /24 or shorter, a range
//! painted in `tbl24` never covers an extended entry, and a new `tbl8` group starts as 256 copies
//! of the `tbl24` entry it replaces (the covering shorter route, or "no route").
//! Cost: `O(n log n)` for the sort plus, per distinct prefix of length `l`, `2^(24 - l)` writes
//! (`l <= 24`) or `2^(32 - l)` writes (`l > 24`); at most `2^24` writes per prefix length.
//!
//! # Changes in place
//! [`Lpm4::insert`] and [`Lpm4::remove`] change a built table as `rte_lpm_add` / `rte_lpm_delete`
//! do, without a rebuild. Beside the entries (not in them, so the entry format and the lookups
//! stay as they are) the table keeps the length of the rule each entry holds (`depth24`,
//! `depth8`: one byte per entry, zeroed and lazily backed like `tbl24`) and the rule set per
//! length. An insert of `/len` writes the entries of its range whose rule is no longer than
//! `len`; a remove gives the entries whose rule has length `len` to the longest rule covering the
//! prefix (found by one exact look-up per shorter length that has rules), and folds a `tbl8` group
//! left without any rule longer than /24 back into its `tbl24` entry (the group is reused later).
//! After any sequence of changes the table answers like one built afresh from its rules, with as
//! many groups. A change costs the entries of its range: `2^(24 - len)` for `len <= 24` (16M for
//! a /0, 256 for a /16, 1 for a /24, plus 256 per group beneath), `2^(32 - len)` otherwise.
//!
//! The changes need `&mut self`: a table that workers read is changed only once no worker reads
//! it any more (see [`super::update::RouteTablesWriter`]).
//!
//! # Limits
//! - Next hops are `u32 <=` [`MAX_NEXT_HOP`] (2^30 - 1); larger ones are rejected.
//! - Prefix lengths are `0..=32`; host bits beyond the length are ignored (`10.1.2.3/8` is
//!   `10.0.0.0/8`).
//! - The same prefix given twice: the last one wins (builders: `insert` replaces).
//! - Memory: 64 MiB virtual for `tbl24` and 16 MiB for its rule lengths (resident only where
//!   routes are) plus 1.25 KiB per `tbl8` group, i.e. per distinct /24 holding a longer prefix
//!   (at most 2^24 groups = 20 GiB; cap it with [`Lpm4Builder::with_max_tbl8_groups`]).
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Largest next-hop value a table can store (30 bits).
pub const MAX_NEXT_HOP: u32 = VALUE_MASK;

pub(crate) const VALID: u32 = 1 << 31;
pub(crate) const EXTENDED: u32 = 1 << 30;
pub(crate) const VALUE_MASK: u32 = EXTENDED - 1;

/// The value of a valid entry that is not extended (a next hop); `None` for any other entry. An entry less
/// `VALID` is below `EXTENDED` exactly then (an invalid entry wraps above 2^31; an extended one keeps its
/// bit), and is then the value itself: one subtraction and one compare where the two bit tests and the mask
/// took five instructions (shared by [`super::lpm6`]).
#[inline(always)]
pub(crate) fn final_value(e: u32) -> Option<u32> {
    let v = e.wrapping_sub(VALID);
    (v < EXTENDED).then_some(v)
}

/// Number of addresses (or burst slots) handled per pass by the bulk lookups.
pub const BURST: usize = 32;

const TBL24_LEN: usize = 1 << 24;

/// Why a route table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The prefix length exceeds the address width (32 for IPv4, 128 for IPv6).
    #[error("prefix length {len} exceeds {max}")]
    PrefixLen { len: u8, max: u8 },
    /// The next hop does not fit in 30 bits.
    #[error("next hop {next_hop} exceeds {}", MAX_NEXT_HOP)]
    NextHop { next_hop: u32 },
    /// More second-level groups are needed than allowed (or encodable).
    #[error("more than {max} tbl8 groups needed")]
    Tbl8Exhausted { max: usize },
}

pub(crate) fn check_next_hop(next_hop: u32) -> Result<(), LpmError> {
    if next_hop > MAX_NEXT_HOP {
        Err(LpmError::NextHop { next_hop })
    } else {
        Ok(())
    }
}

/// Network address of `addr/len` (host bits cleared); `len <= 32`.
#[inline]
fn mask4(addr: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        addr & (u32::MAX << (32 - u32::from(len)))
    }
}

/// An IPv4 longest-prefix-match table (DIR-24-8). See the module docs.
pub struct Lpm4 {
    // Read by lookups.
    tbl24: Box<[u32; TBL24_LEN]>,
    /// `group_cap * 256` entries; groups `next_group..` and those in `free_groups` are unused.
    tbl8: Box<[u32]>,
    // Read only by [`Lpm4::insert`] and [`Lpm4::remove`] (the control side).
    /// Length of the rule each `tbl24` entry holds (0 also for "no route"; an extended entry's is
    /// meaningless). Zeroed like `tbl24`, so only pages that routes touch are backed.
    depth24: Box<[u8]>,
    /// Length of the rule each `tbl8` entry holds.
    depth8: Vec<u8>,
    /// Groups ever handed out (`tbl8` holds at least this many).
    next_group: usize,
    /// Groups given back by [`Lpm4::remove`], reused before `next_group` grows.
    free_groups: Vec<u32>,
    max_groups: usize,
    /// (prefix length, network) -> next hop: the rule set, one entry per distinct prefix.
    rules: HashMap<(u8, u32), u32>,
    /// Rules per prefix length, so the search for a covering rule skips empty lengths.
    per_len: [u32; 33],
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm4")
            .field("routes", &self.rules.len())
            .field("tbl8_groups", &self.tbl8_groups())
            .finish_non_exhaustive()
    }
}

impl Lpm4 {
    /// Builds a table from `(network, prefix length, next hop)` triples, in any order.
    /// For a prefix given more than once, the last one wins.
    pub fn new(routes: &[(Ipv4Addr, u8, u32)]) -> Result<Self, LpmError> {
        let mut sorted = Vec::with_capacity(routes.len());
        for &(addr, len, nh) in routes {
            if len > 32 {
                return Err(LpmError::PrefixLen { len, max: 32 });
            }
            check_next_hop(nh)?;
            sorted.push((len, mask4(u32::from(addr), len), nh));
        }
        Self::from_unsorted(sorted, None)
    }

    /// Builds a table from `(network, next hop)` pairs, in any order; the last duplicate wins.
    pub fn from_nets(routes: &[(Ipv4Net, u32)]) -> Result<Self, LpmError> {
        let mut sorted = Vec::with_capacity(routes.len());
        for &(net, nh) in routes {
            check_next_hop(nh)?;
            let len = net.prefix_len();
            sorted.push((len, mask4(u32::from(net.addr()), len), nh));
        }
        Self::from_unsorted(sorted, None)
    }

    fn from_unsorted(
        mut routes: Vec<(u8, u32, u32)>,
        max_groups: Option<usize>,
    ) -> Result<Self, LpmError> {
        super::sort_dedup_routes(&mut routes);
        let distinct = routes.len();
        Self::build_sorted(routes.into_iter(), distinct, max_groups)
    }

    /// An empty table allowing at most `max_groups` `tbl8` groups.
    fn empty(max_groups: usize) -> Self {
        Lpm4 {
            tbl24: vec![0u32; TBL24_LEN]
                .into_boxed_slice()
                .try_into()
                .expect("tbl24 has 2^24 entries"),
            tbl8: Box::new([]),
            depth24: vec![0u8; TBL24_LEN].into_boxed_slice(),
            depth8: Vec::new(),
            next_group: 0,
            free_groups: Vec::new(),
            max_groups: max_groups.min(TBL24_LEN),
            rules: HashMap::new(),
            per_len: [0; 33],
        }
    }

    /// Paints routes sorted by (length, network) ascending, distinct; all already validated and
    /// masked.
    fn build_sorted(
        routes: impl Iterator<Item = (u8, u32, u32)>,
        distinct: usize,
        max_groups: Option<usize>,
    ) -> Result<Self, LpmError> {
        let mut table = Lpm4::empty(max_groups.unwrap_or(TBL24_LEN));
        table.rules.reserve(distinct);
        for (len, addr, nh) in routes {
            let entry = VALID | nh;
            if len <= 24 {
                // Shortest first: the range holds no extended entry and no longer rule yet.
                let start = (addr >> 8) as usize;
                let n = 1usize << (24 - len);
                table.tbl24[start..start + n].fill(entry);
                table.depth24[start..start + n].fill(len);
            } else {
                let group = table.group_of(addr)?;
                let start = (group << 8) | (addr & 0xff) as usize;
                let n = 1usize << (32 - len);
                table.tbl8[start..start + n].fill(entry);
                table.depth8[start..start + n].fill(len);
            }
            table.rules.insert((len, addr), nh);
            table.per_len[usize::from(len)] += 1;
        }
        Ok(table)
    }

    /// The `tbl8` group of the /24 of `addr`, made (as 256 copies of its `tbl24` entry) if it has
    /// none.
    fn group_of(&mut self, addr: u32) -> Result<usize, LpmError> {
        let i24 = (addr >> 8) as usize;
        let e = self.tbl24[i24];
        if e & EXTENDED != 0 {
            return Ok((e & VALUE_MASK) as usize);
        }
        let group = match self.free_groups.pop() {
            Some(g) => g as usize,
            None => {
                if self.next_group >= self.max_groups {
                    return Err(LpmError::Tbl8Exhausted {
                        max: self.max_groups,
                    });
                }
                let g = self.next_group;
                self.next_group += 1;
                if self.tbl8.len() < (g + 1) << 8 {
                    // Doubling, so a run of inserts costs amortised O(1) copies per group.
                    let cap = ((g + 1) << 8).max(self.tbl8.len() * 2);
                    let mut v = Vec::with_capacity(cap);
                    v.extend_from_slice(&self.tbl8);
                    v.resize(cap, 0);
                    self.tbl8 = v.into_boxed_slice();
                    self.depth8.resize(cap, 0);
                }
                g
            }
        };
        let range = group << 8..(group + 1) << 8;
        self.tbl8[range.clone()].fill(e);
        self.depth8[range].fill(self.depth24[i24]);
        self.tbl24[i24] = EXTENDED | group as u32;
        Ok(group)
    }

    /// Adds or replaces `addr/len` (host bits ignored) in place, as `rte_lpm_add` does: every
    /// entry of the prefix's range held by a rule no longer than `len` takes the new next hop.
    /// Returns the replaced next hop. Cost: the range's entries (`2^(24 - len)` `tbl24` entries,
    /// plus 256 per `tbl8` group under them; `2^(32 - len)` for `len > 24`).
    ///
    /// On error the table is unchanged.
    pub fn insert(
        &mut self,
        addr: Ipv4Addr,
        len: u8,
        next_hop: u32,
    ) -> Result<Option<u32>, LpmError> {
        if len > 32 {
            return Err(LpmError::PrefixLen { len, max: 32 });
        }
        check_next_hop(next_hop)?;
        let net = mask4(u32::from(addr), len);
        let entry = VALID | next_hop;
        if len <= 24 {
            let start = (net >> 8) as usize;
            for i in start..start + (1usize << (24 - len)) {
                let e = self.tbl24[i];
                if e & EXTENDED != 0 {
                    let g = (e & VALUE_MASK) as usize;
                    self.paint8(g << 8, 256, entry, len);
                } else if self.depth24[i] <= len {
                    self.tbl24[i] = entry;
                    self.depth24[i] = len;
                }
            }
        } else {
            let group = self.group_of(net)?;
            self.paint8(
                (group << 8) | (net & 0xff) as usize,
                1 << (32 - len),
                entry,
                len,
            );
        }
        let old = self.rules.insert((len, net), next_hop);
        if old.is_none() {
            self.per_len[usize::from(len)] += 1;
        }
        Ok(old)
    }

    /// [`Lpm4::insert`] for an [`Ipv4Net`].
    pub fn insert_net(&mut self, net: Ipv4Net, next_hop: u32) -> Result<Option<u32>, LpmError> {
        self.insert(net.addr(), net.prefix_len(), next_hop)
    }

    /// `tbl8` entries `start..start + n` held by rules no longer than `len` take `entry`.
    fn paint8(&mut self, start: usize, n: usize, entry: u32, len: u8) {
        for j in start..start + n {
            if self.depth8[j] <= len {
                self.tbl8[j] = entry;
                self.depth8[j] = len;
            }
        }
    }

    /// `tbl8` entries `start..start + n` held by the rule of length `len` take `entry` of length
    /// `depth`.
    fn replace8(&mut self, start: usize, n: usize, len: u8, entry: u32, depth: u8) {
        for j in start..start + n {
            if self.depth8[j] == len {
                self.tbl8[j] = entry;
                self.depth8[j] = depth;
            }
        }
    }

    /// Removes `addr/len` (host bits ignored) in place, as `rte_lpm_delete` does: the entries it
    /// held go to the longest rule covering it (or to "no route"), and a `tbl8` group left with no
    /// rule longer than /24 folds back into its `tbl24` entry and is reused later. Returns the
    /// removed next hop, if the prefix was present. Cost: as [`Lpm4::insert`], plus up to `len`
    /// rule look-ups for the covering rule.
    pub fn remove(&mut self, addr: Ipv4Addr, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        let net = mask4(u32::from(addr), len);
        let next_hop = self.rules.remove(&(len, net))?;
        self.per_len[usize::from(len)] -= 1;
        let (entry, depth) = (0..len)
            .rev()
            .filter(|&d| self.per_len[usize::from(d)] > 0)
            .find_map(|d| {
                self.rules
                    .get(&(d, mask4(net, d)))
                    .map(|&nh| (VALID | nh, d))
            })
            .unwrap_or((0, 0));
        if len <= 24 {
            let start = (net >> 8) as usize;
            for i in start..start + (1usize << (24 - len)) {
                let e = self.tbl24[i];
                if e & EXTENDED != 0 {
                    let g = (e & VALUE_MASK) as usize;
                    self.replace8(g << 8, 256, len, entry, depth);
                } else if self.depth24[i] == len {
                    self.tbl24[i] = entry;
                    self.depth24[i] = depth;
                }
            }
        } else {
            let i24 = (net >> 8) as usize;
            let e = self.tbl24[i24];
            debug_assert!(e & EXTENDED != 0, "a rule longer than /24 has a group");
            let g = (e & VALUE_MASK) as usize;
            self.replace8(
                (g << 8) | (net & 0xff) as usize,
                1 << (32 - len),
                len,
                entry,
                depth,
            );
            let range = g << 8..(g + 1) << 8;
            if self.depth8[range.clone()].iter().all(|&d| d <= 24) {
                // No rule longer than /24 left in this /24: every entry holds the same covering
                // rule (or none), as a fresh build would have it in `tbl24`.
                self.tbl24[i24] = self.tbl8[range.start];
                self.depth24[i24] = self.depth8[range.start];
                self.free_groups.push(g as u32);
            }
        }
        Some(next_hop)
    }

    /// [`Lpm4::remove`] for an [`Ipv4Net`].
    pub fn remove_net(&mut self, net: Ipv4Net) -> Option<u32> {
        self.remove(net.addr(), net.prefix_len())
    }

    /// Next hop of exactly `addr/len`, if present (no longest-prefix match).
    pub fn get(&self, addr: Ipv4Addr, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        self.rules.get(&(len, mask4(u32::from(addr), len))).copied()
    }

    /// A table with the same rules built afresh (a copy that, unlike `clone`, backs only the
    /// `tbl24` pages that routes touch).
    pub fn rebuilt(&self) -> Lpm4 {
        let mut routes: Vec<(u8, u32, u32)> = self
            .rules
            .iter()
            .map(|(&(len, addr), &nh)| (len, addr, nh))
            .collect();
        routes.sort_unstable();
        let distinct = routes.len();
        Lpm4::build_sorted(routes.into_iter(), distinct, Some(self.max_groups))
            .expect("the same rules fit the same group cap")
    }

    /// Next hop of the longest prefix containing `addr` (host byte order), if any.
    #[inline(always)]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        self.resolve(self.tbl24[(addr >> 8) as usize], addr)
    }

    /// Start loading the `tbl24` entry of `addr` into the cache (a batched lookup's first phase, for a caller
    /// that works on other packets meanwhile). Never faults.
    #[inline(always)]
    pub fn prefetch(&self, addr: u32) {
        // The index is below TBL24_LEN; a prefetch never faults anyway.
        greway_wire::cpu::prefetch(self.tbl24.as_ptr().wrapping_add((addr >> 8) as usize));
    }

    /// [`Lpm4::lookup`] on an [`Ipv4Addr`].
    #[inline]
    pub fn lookup_addr(&self, addr: Ipv4Addr) -> Option<u32> {
        self.lookup(u32::from(addr))
    }

    /// Second half of a lookup, given the `tbl24` entry of `addr`.
    #[inline(always)]
    fn resolve(&self, e24: u32, addr: u32) -> Option<u32> {
        if let Some(v) = final_value(e24) {
            return Some(v);
        }
        if e24 & EXTENDED == 0 {
            return None;
        }
        final_value(self.tbl8[(((e24 & VALUE_MASK) as usize) << 8) | (addr & 0xff) as usize])
    }

    /// Looks up every address of `addrs` into the same position of `out`, [`BURST`] at a time:
    /// all `tbl24` loads of a burst are issued before any `tbl8` load, so their cache misses
    /// overlap.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    pub fn lookup_bulk(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: length mismatch");
        for (a, o) in addrs.chunks(BURST).zip(out.chunks_mut(BURST)) {
            let mut e24 = [0u32; BURST];
            for (e, &addr) in e24.iter_mut().zip(a) {
                *e = self.tbl24[(addr >> 8) as usize];
            }
            for ((o, &e), &addr) in o.iter_mut().zip(&e24).zip(a) {
                *o = self.resolve(e, addr);
            }
        }
    }

    /// Fixed-size burst lookup (e.g. `N = 32`), same two-phase order as [`Lpm4::lookup_bulk`].
    #[inline]
    pub fn lookup_burst<const N: usize>(&self, addrs: &[u32; N]) -> [Option<u32>; N] {
        let e24: [u32; N] = std::array::from_fn(|i| self.tbl24[(addrs[i] >> 8) as usize]);
        std::array::from_fn(|i| self.resolve(e24[i], addrs[i]))
    }

    /// Number of distinct prefixes in the table.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of `tbl8` groups (1 KiB each) in use.
    pub fn tbl8_groups(&self) -> usize {
        self.next_group - self.free_groups.len()
    }

    /// Bytes allocated (virtual; `tbl24` pages not touched by any route stay unbacked), with the
    /// rule lengths the in-place changes keep beside the entries (1 byte per entry).
    pub fn memory_bytes(&self) -> usize {
        (TBL24_LEN + self.tbl8.len()) * (std::mem::size_of::<u32>() + 1)
    }
}

/// Collects IPv4 routes (insert, replace, remove) and builds [`Lpm4`] tables from them.
#[derive(Debug, Clone, Default)]
pub struct Lpm4Builder {
    /// (prefix length, network) -> next hop; iterates in build order.
    routes: BTreeMap<(u8, u32), u32>,
    max_tbl8_groups: Option<usize>,
}

impl Lpm4Builder {
    /// An empty builder with no `tbl8` group cap (beyond the 2^24 that can exist).
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes [`Lpm4Builder::build`] fail with [`LpmError::Tbl8Exhausted`] if more than `max`
    /// `tbl8` groups (1 KiB each) would be needed.
    pub fn with_max_tbl8_groups(mut self, max: usize) -> Self {
        self.max_tbl8_groups = Some(max);
        self
    }

    /// Adds or replaces `addr/len` (host bits ignored); returns the replaced next hop.
    pub fn insert(
        &mut self,
        addr: Ipv4Addr,
        len: u8,
        next_hop: u32,
    ) -> Result<Option<u32>, LpmError> {
        if len > 32 {
            return Err(LpmError::PrefixLen { len, max: 32 });
        }
        check_next_hop(next_hop)?;
        Ok(self
            .routes
            .insert((len, mask4(u32::from(addr), len)), next_hop))
    }

    /// [`Lpm4Builder::insert`] for an [`Ipv4Net`].
    pub fn insert_net(&mut self, net: Ipv4Net, next_hop: u32) -> Result<Option<u32>, LpmError> {
        self.insert(net.addr(), net.prefix_len(), next_hop)
    }

    /// Removes `addr/len` (host bits ignored); returns its next hop if it was present.
    pub fn remove(&mut self, addr: Ipv4Addr, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        self.routes.remove(&(len, mask4(u32::from(addr), len)))
    }

    /// Next hop of exactly `addr/len`, if present (no longest-prefix match).
    pub fn get(&self, addr: Ipv4Addr, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        self.routes
            .get(&(len, mask4(u32::from(addr), len)))
            .copied()
    }

    /// Number of distinct prefixes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True if no route was inserted.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Builds an immutable table from the current routes (the builder is left as is).
    pub fn build(&self) -> Result<Lpm4, LpmError> {
        Lpm4::build_sorted(
            self.routes
                .iter()
                .map(|(&(len, addr), &nh)| (len, addr, nh)),
            self.routes.len(),
            self.max_tbl8_groups,
        )
    }
}

#[cfg(test)]
mod tests;
