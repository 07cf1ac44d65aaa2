//! IPv6 longest-prefix match: a 2^24-entry first level plus a multibit trie of 8-bit strides
//! (the `rte_lpm6` layout), in safe Rust.
//!
//! # Layout
//! - `root`: 2^24 `u32` entries (64 MiB of virtual memory) indexed by address bits 0..24 (most
//!   significant). It is allocated zeroed, so the kernel only backs the pages that routes touch:
//!   a few pages for typical IPv6 routes (/32../64), all of it for `::/0` (as `tbl24` for
//!   `0.0.0.0/0` in [`super::lpm::Lpm4`]).
//! - `groups`: groups of 256 `u32` entries; a group at depth `d >= 1` is indexed by address bits
//!   `24 + 8(d-1) .. 24 + 8d`. Depth 13 (bits 120..128) is the last.
//!
//! Entries are encoded as in [`super::lpm`]: `VALID | EXTENDED | value`, except that an extended
//! entry's value is its group's index times 256 (the index of the group's first entry: a lookup
//! adds the address byte without a shift). A prefix of length `l` lives in the root if `l <= 24`,
//! else in the group at depth `ceil((l - 24) / 8)`, where it fills `2^(24 + 8d - l)` entries.
//!
//! # Complexity
//! - Lookup: `1 + ceil((l - 24) / 8)` dependent loads for a best match of length `l > 24` (or
//!   for the deepest group on the address's path), so at most 14; 1 for tables of prefixes
//!   `<= /24`, 4 for `/48`, 6 for `/64`, 14 for `/128`. (A 16-bit first level, this table's
//!   first layout, took 5 loads for a /48: a 64-byte IPv6 packet into a /48 tunnel route cost
//!   162.5 against 156.4 cycles/packet, `scripts/bench-ab.sh`, 4 runs each.)
//! - Build: sort (`O(n log n)`), then shortest prefix first painting, as for [`super::lpm::Lpm4`]
//!   (longer prefixes win regardless of input order; the last duplicate wins).
//! - Memory: 64 MiB virtual + 16 MiB of rule lengths (resident where routes are) + 1.25 KiB per
//!   group. A prefix of length
//!   `l > 24` needs up to `ceil((l - 24) / 8)` groups that it does not share with other prefixes:
//!   a million random unrelated /128s would need ~13 GiB, so cap groups with
//!   [`Lpm6Builder::with_max_groups`] when the input is untrusted. Prefixes that share their upper
//!   bits share groups (a /48 site with many /64s costs one group per distinct /56 plus a few).
//!
//! # Changes in place
//! [`Lpm6::insert`] and [`Lpm6::remove`] change a built table as `rte_lpm6_add` /
//! `rte_lpm6_delete` do, with the same bookkeeping as [`super::lpm::Lpm4`] (the rule length of
//! every entry kept beside it, the rule set per length; lookups and the entry format untouched):
//! an insert writes the entries of its range, and those beneath extended ones, whose rule is no
//! longer than its own; a remove gives the entries of its rule to the longest covering rule, then
//! folds the groups on its path left without a rule of their own back into their parent entry,
//! deepest first (they are reused later). After any sequence of changes the table answers like a
//! fresh build of its rules, with as many groups. A change costs the entries of its range and the
//! groups beneath them (`2^(24 - len)` root entries for `len <= 24`, at most 256 entries per group
//! otherwise), plus up to `len` exact rule look-ups on a remove.
//!
//! # Limits
//! Next hops `<=` [`super::lpm::MAX_NEXT_HOP`] (2^30 - 1); prefix lengths `0..=128`, host bits
//! ignored; at most 2^22 groups (4 GiB of groups).
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::lpm::{check_next_hop, final_value, LpmError, BURST, EXTENDED, VALID, VALUE_MASK};

const ROOT_BITS: u32 = 24;
const ROOT_LEN: usize = 1 << ROOT_BITS;
// `Lpm6::lookup_bytes` indexes the root with the first three address bytes.
const _: () = assert!(ROOT_BITS == 24);
// An extended entry holds its group's first entry index (the group times 256) below `EXTENDED`.
const MAX_GROUPS: usize = (VALUE_MASK as usize + 1) >> 8;

/// The extended entry of group `g`: `EXTENDED` and the index of the group's first entry (`g` times 256), so
/// that a lookup adds the address byte without a shift.
#[inline(always)]
fn extended(g: usize) -> u32 {
    debug_assert!(g < MAX_GROUPS);
    EXTENDED | (g as u32) << 8
}

/// The group of extended entry `e`.
#[inline(always)]
fn group_of(e: u32) -> usize {
    ((e & VALUE_MASK) >> 8) as usize
}

/// Network address of `addr/len` (host bits cleared); `len <= 128`.
#[inline]
fn mask6(addr: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        addr & (u128::MAX << (128 - u32::from(len)))
    }
}

/// An IPv6 longest-prefix-match table. See the module docs.
pub struct Lpm6 {
    // Read by lookups.
    root: Box<[u32; ROOT_LEN]>,
    /// At least `next_group * 256` entries; groups in `free_groups` and past `next_group` are
    /// unused.
    groups: Box<[u32]>,
    // Read only by [`Lpm6::insert`] and [`Lpm6::remove`] (the control side).
    /// Length of the rule each `root` entry holds (0 also for "no route"; meaningless for an
    /// extended entry). Zeroed, so only pages that routes touch are backed.
    root_depth: Box<[u8]>,
    /// Length of the rule each `groups` entry holds.
    group_depth: Vec<u8>,
    next_group: usize,
    free_groups: Vec<u32>,
    max_groups: usize,
    /// (prefix length, network) -> next hop.
    rules: HashMap<(u8, u128), u32>,
    /// Rules per prefix length.
    per_len: [u32; 129],
}

/// An entry on a lookup's path: in the root or in a group.
#[derive(Clone, Copy)]
enum Slot {
    Root(usize),
    Group(usize),
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm6")
            .field("routes", &self.rules.len())
            .field("groups", &self.groups())
            .finish_non_exhaustive()
    }
}

impl Lpm6 {
    /// Builds a table from `(network, prefix length, next hop)` triples, in any order.
    /// For a prefix given more than once, the last one wins.
    pub fn new(routes: &[(Ipv6Addr, u8, u32)]) -> Result<Self, LpmError> {
        let mut sorted = Vec::with_capacity(routes.len());
        for &(addr, len, nh) in routes {
            if len > 128 {
                return Err(LpmError::PrefixLen { len, max: 128 });
            }
            check_next_hop(nh)?;
            sorted.push((len, mask6(u128::from(addr), len), nh));
        }
        Self::from_unsorted(sorted)
    }

    /// Builds a table from `(network, next hop)` pairs, in any order; the last duplicate wins.
    pub fn from_nets(routes: &[(Ipv6Net, u32)]) -> Result<Self, LpmError> {
        let mut sorted = Vec::with_capacity(routes.len());
        for &(net, nh) in routes {
            check_next_hop(nh)?;
            let len = net.prefix_len();
            sorted.push((len, mask6(u128::from(net.addr()), len), nh));
        }
        Self::from_unsorted(sorted)
    }

    fn from_unsorted(mut routes: Vec<(u8, u128, u32)>) -> Result<Self, LpmError> {
        super::sort_dedup_routes(&mut routes);
        let distinct = routes.len();
        Self::build_sorted(routes.into_iter(), distinct, None)
    }

    /// An empty table allowing at most `max_groups` groups.
    fn empty(max_groups: usize) -> Self {
        Lpm6 {
            root: vec![0u32; ROOT_LEN]
                .into_boxed_slice()
                .try_into()
                .expect("root has 2^24 entries"),
            groups: Box::new([]),
            root_depth: vec![0u8; ROOT_LEN].into_boxed_slice(),
            group_depth: Vec::new(),
            next_group: 0,
            free_groups: Vec::new(),
            max_groups: max_groups.min(MAX_GROUPS),
            rules: HashMap::new(),
            per_len: [0; 129],
        }
    }

    /// Paints routes sorted by (length, network) ascending, distinct; all already validated and
    /// masked.
    fn build_sorted(
        routes: impl Iterator<Item = (u8, u128, u32)>,
        distinct: usize,
        max_groups: Option<usize>,
    ) -> Result<Self, LpmError> {
        let mut t = Lpm6::empty(max_groups.unwrap_or(MAX_GROUPS));
        t.rules.reserve(distinct);
        for (len, addr, nh) in routes {
            let entry = VALID | nh;
            let (start, n) = t.range_of(addr, len)?;
            // Shortest first: the range holds no extended entry and no longer rule yet.
            match start {
                Slot::Root(i) => {
                    t.root[i..i + n].fill(entry);
                    t.root_depth[i..i + n].fill(len);
                }
                Slot::Group(i) => {
                    t.groups[i..i + n].fill(entry);
                    t.group_depth[i..i + n].fill(len);
                }
            }
            t.rules.insert((len, addr), nh);
            t.per_len[usize::from(len)] += 1;
        }
        Ok(t)
    }

    fn get_slot(&self, s: Slot) -> (u32, u8) {
        match s {
            Slot::Root(i) => (self.root[i], self.root_depth[i]),
            Slot::Group(i) => (self.groups[i], self.group_depth[i]),
        }
    }

    fn set_slot(&mut self, s: Slot, e: u32, depth: u8) {
        match s {
            Slot::Root(i) => {
                self.root[i] = e;
                self.root_depth[i] = depth;
            }
            Slot::Group(i) => {
                self.groups[i] = e;
                self.group_depth[i] = depth;
            }
        }
    }

    /// The entries prefix `addr/len` fills: the first and how many. Makes the groups on its path
    /// that do not exist yet (each as 256 copies of the entry it replaces); on error, those made
    /// are folded back, so the table is unchanged.
    fn range_of(&mut self, addr: u128, len: u8) -> Result<(Slot, usize), LpmError> {
        let len = u32::from(len);
        let top = (addr >> (128 - ROOT_BITS)) as usize;
        if len <= ROOT_BITS {
            return Ok((Slot::Root(top), 1 << (ROOT_BITS - len)));
        }
        let mut slot = Slot::Root(top);
        let mut end = ROOT_BITS; // address bits consumed up to and including `slot`'s table
        loop {
            let (e, depth) = self.get_slot(slot);
            let group = if e & EXTENDED != 0 {
                group_of(e)
            } else {
                match self.alloc_group(e, depth) {
                    Ok(g) => {
                        self.set_slot(slot, extended(g), depth);
                        g
                    }
                    Err(err) => {
                        self.fold_path(addr);
                        return Err(err);
                    }
                }
            };
            end += 8;
            let idx = (group << 8) | ((addr >> (128 - end)) & 0xff) as usize;
            if len <= end {
                return Ok((Slot::Group(idx), 1 << (end - len)));
            }
            slot = Slot::Group(idx);
        }
    }

    /// A group of 256 copies of `e` held by a rule of length `depth`.
    fn alloc_group(&mut self, e: u32, depth: u8) -> Result<usize, LpmError> {
        let g = match self.free_groups.pop() {
            Some(g) => g as usize,
            None => {
                if self.next_group >= self.max_groups {
                    return Err(LpmError::Tbl8Exhausted {
                        max: self.max_groups,
                    });
                }
                let g = self.next_group;
                self.next_group += 1;
                if self.groups.len() < (g + 1) << 8 {
                    let cap = ((g + 1) << 8).max(self.groups.len() * 2);
                    let mut v = Vec::with_capacity(cap);
                    v.extend_from_slice(&self.groups);
                    v.resize(cap, 0);
                    self.groups = v.into_boxed_slice();
                    self.group_depth.resize(cap, 0);
                }
                g
            }
        };
        self.groups[g << 8..(g + 1) << 8].fill(e);
        self.group_depth[g << 8..(g + 1) << 8].fill(depth);
        Ok(g)
    }

    /// Folds the groups on `addr`'s path that hold no rule of their own (no extended entry, every
    /// entry held by a rule no longer than the group's parent entry) back into their parent
    /// entry, deepest first, and keeps them for reuse: the group structure a fresh build makes.
    fn fold_path(&mut self, addr: u128) {
        let mut path: Vec<(Slot, usize)> = Vec::new(); // (parent entry, group)
        let mut slot = Slot::Root((addr >> (128 - ROOT_BITS)) as usize);
        let mut end = ROOT_BITS;
        loop {
            let (e, _) = self.get_slot(slot);
            if e & EXTENDED == 0 {
                break;
            }
            let g = group_of(e);
            path.push((slot, g));
            end += 8;
            slot = Slot::Group((g << 8) | ((addr >> (128 - end)) & 0xff) as usize);
        }
        // The group at depth `d` (1-based) is indexed by bits `24 + 8(d - 1)..`: a rule of its own
        // is longer than that.
        for (d, &(parent, g)) in path.iter().enumerate().rev() {
            let boundary = (ROOT_BITS + 8 * d as u32) as u8;
            let range = g << 8..(g + 1) << 8;
            let own_rule = self.groups[range.clone()]
                .iter()
                .zip(&self.group_depth[range.clone()])
                .any(|(&e, &depth)| e & EXTENDED != 0 || depth > boundary);
            if own_rule {
                break;
            }
            self.set_slot(
                parent,
                self.groups[range.start],
                self.group_depth[range.start],
            );
            self.free_groups.push(g as u32);
        }
    }

    /// Entries `start..start + n` of a table (and every entry beneath the extended ones) held by a
    /// rule no longer than `len` take `entry` (`replace: None`), or, with `replace: Some(len)`,
    /// those held by the rule of length `len` take `entry` of length `depth`.
    fn paint(&mut self, start: Slot, n: usize, entry: u32, depth: u8, replace: Option<u8>) {
        for k in 0..n {
            let s = match start {
                Slot::Root(i) => Slot::Root(i + k),
                Slot::Group(i) => Slot::Group(i + k),
            };
            let (e, d) = self.get_slot(s);
            if e & EXTENDED != 0 {
                let g = group_of(e);
                self.paint(Slot::Group(g << 8), 256, entry, depth, replace);
            } else if match replace {
                None => d <= depth,
                Some(len) => d == len,
            } {
                self.set_slot(s, entry, depth);
            }
        }
    }

    /// Adds or replaces `addr/len` (host bits ignored) in place, as `rte_lpm6_add` does: every
    /// entry of its range (and beneath it) held by a rule no longer than `len` takes the new next
    /// hop. Returns the replaced next hop. On error the table is unchanged.
    pub fn insert(
        &mut self,
        addr: Ipv6Addr,
        len: u8,
        next_hop: u32,
    ) -> Result<Option<u32>, LpmError> {
        if len > 128 {
            return Err(LpmError::PrefixLen { len, max: 128 });
        }
        check_next_hop(next_hop)?;
        let net = mask6(u128::from(addr), len);
        let (start, n) = self.range_of(net, len)?;
        self.paint(start, n, VALID | next_hop, len, None);
        let old = self.rules.insert((len, net), next_hop);
        if old.is_none() {
            self.per_len[usize::from(len)] += 1;
        }
        Ok(old)
    }

    /// [`Lpm6::insert`] for an [`Ipv6Net`].
    pub fn insert_net(&mut self, net: Ipv6Net, next_hop: u32) -> Result<Option<u32>, LpmError> {
        self.insert(net.addr(), net.prefix_len(), next_hop)
    }

    /// Removes `addr/len` (host bits ignored) in place, as `rte_lpm6_delete` does: its entries go
    /// to the longest rule covering it (or to "no route"), and groups on its path left without a
    /// rule of their own fold back into their parent entry. Returns the removed next hop, if the
    /// prefix was present.
    pub fn remove(&mut self, addr: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        let net = mask6(u128::from(addr), len);
        let next_hop = self.rules.remove(&(len, net))?;
        self.per_len[usize::from(len)] -= 1;
        let (entry, depth) = (0..len)
            .rev()
            .filter(|&d| self.per_len[usize::from(d)] > 0)
            .find_map(|d| {
                self.rules
                    .get(&(d, mask6(net, d)))
                    .map(|&nh| (VALID | nh, d))
            })
            .unwrap_or((0, 0));
        let (start, n) = self
            .range_of(net, len)
            .expect("a present rule's groups exist");
        self.paint(start, n, entry, depth, Some(len));
        self.fold_path(net);
        Some(next_hop)
    }

    /// [`Lpm6::remove`] for an [`Ipv6Net`].
    pub fn remove_net(&mut self, net: Ipv6Net) -> Option<u32> {
        self.remove(net.addr(), net.prefix_len())
    }

    /// Next hop of exactly `addr/len`, if present (no longest-prefix match).
    pub fn get(&self, addr: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.rules
            .get(&(len, mask6(u128::from(addr), len)))
            .copied()
    }

    /// A table with the same rules built afresh (only the pages that routes touch are backed).
    pub fn rebuilt(&self) -> Lpm6 {
        let mut routes: Vec<(u8, u128, u32)> = self
            .rules
            .iter()
            .map(|(&(len, addr), &nh)| (len, addr, nh))
            .collect();
        routes.sort_unstable();
        let distinct = routes.len();
        Lpm6::build_sorted(routes.into_iter(), distinct, Some(self.max_groups))
            .expect("the same rules fit the same group cap")
    }

    /// Next hop of the longest prefix containing `addr` (as a big-endian `u128`), if any.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.lookup_bytes(&addr.to_be_bytes())
    }

    /// [`Lpm6::lookup`] on an [`Ipv6Addr`].
    #[inline]
    pub fn lookup_addr(&self, addr: Ipv6Addr) -> Option<u32> {
        self.lookup(u128::from(addr))
    }

    /// [`Lpm6::lookup`] on the 16 address bytes as found in a packet.
    ///
    /// The walk indexes each group with the address byte of its depth (the strides are byte-aligned), which
    /// takes a byte load per level instead of 128-bit shifts: a /48 lookup went from 59 to 47 instructions
    /// (callgrind, encap6-64), 147.1 to 143.3 cycles/packet (`scripts/bench-ab.sh`, 5 runs each). The walk is
    /// unrolled, each level with its byte's constant offset (no index register), and the root is indexed by
    /// the first four bytes read as one big-endian word: 56 to 44 instructions for a /48 (encap6-64 own 185.5 to
    /// 173.9).
    #[inline(always)]
    pub fn lookup_bytes(&self, addr: &[u8; 16]) -> Option<u32> {
        // One load for the root's index (its three bytes and the fourth, level 3's, from the same word: read
        // byte by byte, 13 instructions where this takes 3).
        let word = u32::from_be_bytes(*addr.first_chunk::<4>().expect("16 bytes"));
        let mut e = self.root[(word >> (32 - ROOT_BITS)) as usize];
        // One level: the group of extended entry `e`, at address byte `$byte` (groups at depth 13, byte 15, never
        // hold extended entries).
        macro_rules! walk {
            ($($byte:expr),*) => {$(
                if e & EXTENDED == 0 {
                    return final_value(e);
                }
                e = self.groups[(e & VALUE_MASK) as usize | usize::from($byte)];
            )*};
        }
        // Inline down to a /64 (bytes 3 to 7); a longer walk out of line.
        walk!(word as u8, addr[4], addr[5], addr[6], addr[7]);
        if e & EXTENDED == 0 {
            return final_value(e);
        }
        self.lookup_deep(addr, e)
    }

    /// The rest of [`Lpm6::lookup_bytes`]'s walk from extended entry `e` at depth 6 (address bytes 8 to 15).
    #[inline(never)]
    fn lookup_deep(&self, addr: &[u8; 16], mut e: u32) -> Option<u32> {
        macro_rules! walk {
            ($($k:literal)*) => {$(
                e = self.groups[(e & VALUE_MASK) as usize | usize::from(addr[$k])];
                if e & EXTENDED == 0 {
                    return final_value(e);
                }
            )*};
        }
        walk!(8 9 10 11 12 13 14);
        e = self.groups[(e & VALUE_MASK) as usize | usize::from(addr[15])];
        final_value(e)
    }

    /// Looks up every address of `addrs` into the same position of `out`, [`BURST`] at a time,
    /// level by level: all root loads of a burst, then the depth-1 group loads of those still
    /// extended, and so on, so the cache misses of the burst's walks overlap instead of forming
    /// one dependent chain per address.
    ///
    /// # Panics
    /// If `addrs` and `out` differ in length.
    pub fn lookup_bulk(&self, addrs: &[u128], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: length mismatch");
        for (a, o) in addrs.chunks(BURST).zip(out.chunks_mut(BURST)) {
            let mut e = [0u32; BURST];
            let mut extended = false;
            for (e, &addr) in e.iter_mut().zip(a) {
                *e = self.root[(addr >> (128 - ROOT_BITS)) as usize];
                extended |= *e & EXTENDED != 0;
            }
            let mut shift = 128 - ROOT_BITS;
            while extended {
                // Groups at depth 13 (shift 0) never hold extended entries.
                shift -= 8;
                extended = false;
                for (e, &addr) in e.iter_mut().zip(a) {
                    if *e & EXTENDED != 0 {
                        let i = (*e & VALUE_MASK) as usize | ((addr >> shift) & 0xff) as usize;
                        *e = self.groups[i];
                        extended |= *e & EXTENDED != 0;
                    }
                }
            }
            for (o, &e) in o.iter_mut().zip(&e) {
                *o = if e & VALID != 0 {
                    Some(e & VALUE_MASK)
                } else {
                    None
                };
            }
        }
    }

    /// Number of distinct prefixes in the table.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of 256-entry groups (1 KiB each) in use.
    pub fn groups(&self) -> usize {
        self.next_group - self.free_groups.len()
    }

    /// Bytes allocated for the table, with the rule lengths kept beside the entries (1 byte each).
    pub fn memory_bytes(&self) -> usize {
        (ROOT_LEN + self.groups.len()) * (std::mem::size_of::<u32>() + 1)
    }
}

/// Collects IPv6 routes (insert, replace, remove) and builds [`Lpm6`] tables from them.
#[derive(Debug, Clone, Default)]
pub struct Lpm6Builder {
    /// (prefix length, network) -> next hop; iterates in build order.
    routes: BTreeMap<(u8, u128), u32>,
    max_groups: Option<usize>,
}

impl Lpm6Builder {
    /// An empty builder with no group cap (beyond the 2^30 encodable).
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes [`Lpm6Builder::build`] fail with [`LpmError::Tbl8Exhausted`] if more than `max`
    /// groups (1 KiB each) would be needed.
    pub fn with_max_groups(mut self, max: usize) -> Self {
        self.max_groups = Some(max);
        self
    }

    /// Adds or replaces `addr/len` (host bits ignored); returns the replaced next hop.
    pub fn insert(
        &mut self,
        addr: Ipv6Addr,
        len: u8,
        next_hop: u32,
    ) -> Result<Option<u32>, LpmError> {
        if len > 128 {
            return Err(LpmError::PrefixLen { len, max: 128 });
        }
        check_next_hop(next_hop)?;
        Ok(self
            .routes
            .insert((len, mask6(u128::from(addr), len)), next_hop))
    }

    /// [`Lpm6Builder::insert`] for an [`Ipv6Net`].
    pub fn insert_net(&mut self, net: Ipv6Net, next_hop: u32) -> Result<Option<u32>, LpmError> {
        self.insert(net.addr(), net.prefix_len(), next_hop)
    }

    /// Removes `addr/len` (host bits ignored); returns its next hop if it was present.
    pub fn remove(&mut self, addr: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.routes.remove(&(len, mask6(u128::from(addr), len)))
    }

    /// Next hop of exactly `addr/len`, if present (no longest-prefix match).
    pub fn get(&self, addr: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.routes
            .get(&(len, mask6(u128::from(addr), len)))
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
    pub fn build(&self) -> Result<Lpm6, LpmError> {
        Lpm6::build_sorted(
            self.routes
                .iter()
                .map(|(&(len, addr), &nh)| (len, addr, nh)),
            self.routes.len(),
            self.max_groups,
        )
    }
}

#[cfg(test)]
mod tests;
