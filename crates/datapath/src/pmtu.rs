//! Outer path MTU discovery for our tunnels, as Linux `pmtudisc` (its default) does it.
//!
//! Contract: an ICMPv4 "fragmentation needed" (type 3 code 4, RFC 1191) or an ICMPv6 "packet too big" (type 2,
//! RFC 8201) addressed to us that quotes one of our own GRE packets ([`Quote`]: source = the tunnel's local,
//! destination = its remote, GRE, the C/K/S fields the tunnel sends, and its key when the quote reaches it)
//! lowers that tunnel's path MTU ([`PmtuState::report`]). Linux keeps the same state per route
//! (`__ip_rt_update_pmtu` in net/ipv4/route.c, `rt6_do_update_pmtu` in net/ipv6/route.c) and
//! `tnl_update_pmtu` (net/ipv4/ip_tunnel.c) turns it into the tunnel's inner MTU; greway keeps it per tunnel:
//!
//! - A report only ever lowers the path MTU: a value above the current one is ignored ([`Outcome::NotLower`]).
//!   The same value again refreshes the expiry once half of it has passed, as Linux does.
//! - The path MTU never falls below the floor plus the tunnel's overhead (outer IP + GRE header), so the inner
//!   MTU never falls below 576 (IPv4 outside) or 1280 (IPv6 outside, or a tunnel carrying IPv6 routes: RFC
//!   8200's minimum link MTU). A lower report (an old router's 0, a forged 68) sets the floor.
//! - A learned value expires after [`EXPIRES_MS`] (Linux `ip_rt_mtu_expires`, 10 minutes): the path MTU is
//!   then the configured one again ([`PmtuState::expire`], run by the control thread).
//! - Updates are rate limited per tunnel: at most one every [`UPDATE_INTERVAL_MS`], whichever worker receives
//!   the ICMP ([`Outcome::RateLimited`]). A flood of forged errors thus writes a tunnel's shared state at most
//!   ten times a second; every other error costs its checksum, a parse and a hash lookup, then is counted.
//!
//! The state ([`PmtuState`]) lives in the tunnel's `TunnelState`, which outlives table generations, so a
//! learned MTU survives runtime tunnel and route changes. Each generation's tunnel carries the resulting inner
//! MTU in an [`MtuCell`] in its hot fields, where the encapsulation already read the configured MTU: a tunnel
//! that never learned anything costs nothing more per packet. The worker that learns stores the new value
//! into the cell of the generation it reads; the control thread's periodic [`refresh`] expires old values and
//! brings the newest generation's cells in line with the state.
use crate::tunnel::table::{Tables, Tunnel};
use greway_wire::gre::{self, QuotedHeader, QuotedKey};
use greway_wire::ip::protocol;
use greway_wire::{ipv4, ipv6};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

/// How long a learned path MTU holds (Linux `net.ipv4.route.mtu_expires`, 600 s).
pub const EXPIRES_MS: u64 = 600_000;
/// At most one update of a tunnel's path MTU per this many milliseconds.
pub const UPDATE_INTERVAL_MS: u64 = 100;
/// The smallest inner MTU a learned path MTU may leave an IPv4-outside tunnel (RFC 791's 576-byte datagram).
pub const MIN_INNER_MTU_IPV4: u16 = 576;
/// The smallest inner MTU of an IPv6-outside tunnel, or of any tunnel carrying IPv6 (RFC 8200 section 5).
pub const MIN_INNER_MTU_IPV6: u16 = 1280;

/// A tunnel's inner MTU as the encapsulation reads it: one per tunnel per table generation, in the tunnel's
/// hot fields. Loads are `Relaxed` (a plain load on x86: the MTU check costs what it did with a plain `u16`);
/// stores are `Release` and [`MtuCell::get_acquire`] pairs with them, so the control thread that sees a value a
/// worker stored also sees the [`PmtuState`] the worker wrote before it.
pub struct MtuCell(AtomicU16);

impl MtuCell {
    pub fn new(mtu: u16) -> Self {
        MtuCell(AtomicU16::new(mtu))
    }

    /// The current inner MTU (the per-packet read).
    #[inline(always)]
    pub fn get(&self) -> u16 {
        self.0.load(Ordering::Relaxed)
    }

    /// The current inner MTU, ordered after the store that wrote it (control side).
    pub fn get_acquire(&self) -> u16 {
        self.0.load(Ordering::Acquire)
    }

    /// Set the inner MTU (the worker that learned a path MTU).
    pub fn set(&self, mtu: u16) {
        self.0.store(mtu, Ordering::Release);
    }

    /// Replace `old` by `new` unless someone stored another value since `old` was read (control side: a
    /// worker's fresher store wins; the next refresh looks again).
    pub fn replace(&self, old: u16, new: u16) -> bool {
        self.0
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// A copy holds the value at the time of the copy (a table clone is a snapshot).
impl Clone for MtuCell {
    fn clone(&self) -> Self {
        MtuCell::new(self.get())
    }
}

impl fmt::Debug for MtuCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// A tunnel's MTU limits, decided when its table is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmtuParams {
    /// The configured inner MTU (the most the tunnel ever offers).
    pub configured: u16,
    /// The least inner MTU a learned path MTU may leave (at most `configured`).
    pub floor: u16,
    /// Bytes the encapsulation adds to an inner packet: outer IP header and GRE header.
    pub overhead: u16,
}

impl PmtuParams {
    /// The limits of a tunnel with inner MTU `configured`, IPv6 outside or not, carrying IPv6 routes or not,
    /// adding `overhead` bytes of outer IP and GRE.
    pub fn new(configured: u16, outer_v6: bool, carries_v6: bool, overhead: u16) -> Self {
        let floor = if outer_v6 || carries_v6 {
            MIN_INNER_MTU_IPV6
        } else {
            MIN_INNER_MTU_IPV4
        };
        PmtuParams {
            configured,
            floor: floor.min(configured),
            overhead,
        }
    }

    /// The configured path MTU: the configured inner MTU plus the overhead (outer packet bytes).
    pub fn configured_path(&self) -> u16 {
        self.configured + self.overhead
    }

    /// The least path MTU a report can set.
    pub fn floor_path(&self) -> u16 {
        self.floor + self.overhead
    }

    /// The inner MTU a path MTU leaves.
    pub fn inner_of(&self, path: u16) -> u16 {
        path.saturating_sub(self.overhead)
            .clamp(self.floor, self.configured)
    }
}

/// What a report did to the tunnel's path MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Lowered, or the same value refreshed.
    Learned,
    /// The reported MTU is not below the current one (nothing to do).
    NotLower,
    /// Within [`UPDATE_INTERVAL_MS`] of the tunnel's last update.
    RateLimited,
}

/// A tunnel's learned path MTU, shared by all workers and the control thread (lock-free).
#[derive(Debug, Default)]
pub struct PmtuState {
    /// The learned path MTU (low 16 bits) and when it expires (ms, the 48 bits above), in one word so that no
    /// reader sees one without the other; 0 when nothing is learned.
    learned: AtomicU64,
    /// The earliest time (ms) of the next update: the rate limit.
    next_update_ms: AtomicU64,
}

impl PmtuState {
    fn pack(path: u16, expires_ms: u64) -> u64 {
        (expires_ms << 16) | u64::from(path)
    }

    fn unpack(w: u64) -> Option<(u16, u64)> {
        (w != 0).then_some(((w & 0xffff) as u16, w >> 16))
    }

    /// The learned path MTU and when it expires (ms), if any.
    pub fn learned(&self) -> Option<(u16, u64)> {
        Self::unpack(self.learned.load(Ordering::Acquire))
    }

    /// The path MTU in use: the learned one, or the configured one.
    pub fn path_mtu(&self, p: &PmtuParams) -> u16 {
        self.learned().map_or(p.configured_path(), |(path, _)| {
            path.min(p.configured_path())
        })
    }

    /// The inner MTU the tunnel offers now.
    pub fn inner_mtu(&self, p: &PmtuParams) -> u16 {
        p.inner_of(self.path_mtu(p))
    }

    /// An ICMP error reported a next-hop MTU of `reported` bytes for this tunnel's outer packets at `now_ms`.
    pub fn report(&self, p: &PmtuParams, reported: u32, now_ms: u64) -> Outcome {
        let candidate = reported.max(u32::from(p.floor_path()));
        let learned = self.learned();
        let current = learned.map_or(p.configured_path(), |(path, _)| path);
        if candidate > u32::from(current) {
            return Outcome::NotLower;
        }
        if candidate == u32::from(current) {
            // Nothing learned and the report names the configured MTU: nothing to lower. The value already
            // learned: refreshed only once half its time has passed (Linux `__ip_rt_update_pmtu`).
            match learned {
                None => return Outcome::NotLower,
                Some((_, expires)) if expires.saturating_sub(now_ms) > EXPIRES_MS / 2 => {
                    return Outcome::NotLower
                }
                Some(_) => {}
            }
        }
        // One update per interval across all workers: the one whose compare-exchange wins. Relaxed: the word
        // only gates; the learned value is published by its own Release store.
        let next = self.next_update_ms.load(Ordering::Relaxed);
        if now_ms < next
            || self
                .next_update_ms
                .compare_exchange(
                    next,
                    now_ms + UPDATE_INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Outcome::RateLimited;
        }
        // `candidate` is at most `current`, a u16.
        self.learned.store(
            Self::pack(candidate as u16, now_ms + EXPIRES_MS),
            Ordering::Release,
        );
        Outcome::Learned
    }

    /// Forget a learned path MTU whose time is up at `now_ms`; true when one was forgotten.
    pub fn expire(&self, now_ms: u64) -> bool {
        let w = self.learned.load(Ordering::Acquire);
        match Self::unpack(w) {
            // A compare-exchange: a worker's newer value stays.
            Some((_, expires)) if now_ms >= expires => self
                .learned
                .compare_exchange(w, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok(),
            _ => false,
        }
    }
}

/// The packet an ICMP error quotes, as far as the tunnel match needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub gre: QuotedHeader,
}

impl Quote {
    /// The GRE packet an ICMPv4 error quotes (its "internet header + 64 bits", or more); `None` when the quote
    /// is not GRE, is cut before the GRE base header, or is a fragment other than the first.
    pub fn from_ipv4(invoking: &[u8]) -> Option<Quote> {
        let (h, _) = ipv4::Header::split_prefix(invoking)?;
        let ihl = h.header_len();
        if h.version() != 4
            || ihl < ipv4::HEADER_LEN
            || h.protocol() != protocol::GRE
            || h.flags_frag() & ipv4::flags_frag::OFFSET_MASK != 0
        {
            return None;
        }
        Some(Quote {
            src: IpAddr::V4(h.src_addr()),
            dst: IpAddr::V4(h.dst_addr()),
            gre: QuotedHeader::parse(invoking.get(ihl..)?)?,
        })
    }

    /// The GRE packet an ICMPv6 error quotes, after any extension headers (a Destination Options header, say).
    pub fn from_ipv6(invoking: &[u8]) -> Option<Quote> {
        let (h, rest) = ipv6::Header::split_prefix(invoking)?;
        if h.version() != 6 {
            return None;
        }
        let upper = ipv6::walk_extension_headers(h.next_header(), rest).ok()?;
        if upper.protocol != protocol::GRE || upper.fragment.is_some_and(|f| f.offset != 0) {
            return None;
        }
        Some(Quote {
            src: IpAddr::V6(h.src_addr()),
            dst: IpAddr::V6(h.dst_addr()),
            gre: QuotedHeader::parse(rest.get(upper.offset..)?)?,
        })
    }

    /// Whether this is a packet sent from `local` to `remote` with GRE optional fields `optional_fields` (C, K,
    /// S bits) and key `okey`: the key is compared only when the quote holds it.
    pub fn is_from(
        &self,
        local: IpAddr,
        remote: IpAddr,
        optional_fields: u16,
        okey: Option<u32>,
    ) -> bool {
        self.src == local
            && self.dst == remote
            && self.gre.optional_fields() == optional_fields
            && matches!(self.gre.protocol, gre::protocol::IPV4 | gre::protocol::IPV6)
            && match self.gre.key {
                QuotedKey::Absent => okey.is_none(),
                QuotedKey::Present(k) => okey == Some(k),
                QuotedKey::NotQuoted => okey.is_some(),
            }
    }

    /// Whether this quotes a packet of tunnel `t`.
    pub fn is_of(&self, t: &Tunnel) -> bool {
        self.is_from(t.local, t.remote, t.gre_optional_fields(), t.okey)
    }
}

/// Apply a report of `reported` bytes about the quoted packet to the tunnels of `tables` it belongs to: the one
/// tunnel of the quoted key, or, when the quote is cut before the key, every tunnel between the quoted
/// addresses with those GRE fields (they share the outer path). Returns the outcome, `None` when the quote is
/// of no tunnel of ours. A tunnel whose MTU changed gets its new inner MTU in this generation's cell.
pub fn apply(tables: &Tables, quote: &Quote, reported: u32, now_ms: u64) -> Option<Outcome> {
    let candidates = tables.outer_paths.get(&(quote.src, quote.dst))?;
    let mut result: Option<Outcome> = None;
    for &ti in candidates.iter() {
        let t = &tables.tunnels[ti as usize];
        if !quote.is_of(t) {
            continue;
        }
        let o = t.state.pmtu.report(&t.pmtu, reported, now_ms);
        if o == Outcome::Learned {
            t.mtu.set(t.state.pmtu.inner_mtu(&t.pmtu));
        }
        // Learned wins over rate limited, which wins over not lower.
        result = Some(match (result, o) {
            (Some(Outcome::Learned), _) | (_, Outcome::Learned) => Outcome::Learned,
            (Some(Outcome::RateLimited), _) | (_, Outcome::RateLimited) => Outcome::RateLimited,
            _ => Outcome::NotLower,
        });
    }
    result
}

/// The control thread's periodic pass over the newest table: expire learned path MTUs whose time is up at
/// `now_ms` and set every tunnel's cell to the inner MTU its state gives (a worker that learned while reading an
/// older generation wrote only that generation's cell). Returns the tunnels whose MTU went back up.
pub fn refresh(tables: &Tables, now_ms: u64) -> usize {
    let mut expired = 0;
    for t in &tables.tunnels {
        let before = t.mtu.get_acquire();
        if t.state.pmtu.expire(now_ms) {
            expired += 1;
        }
        let want = t.state.pmtu.inner_mtu(&t.pmtu);
        if want != before {
            t.mtu.replace(before, want);
        }
    }
    expired
}

/// Milliseconds from TSC ticks (the clock both workers and the control thread read).
pub fn ticks_to_ms(ticks: u64, tsc_hz: u64) -> u64 {
    ticks / (tsc_hz / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use greway_wire::gre::GreRepr;
    use greway_wire::ipv4::Ipv4Repr;
    use greway_wire::ipv6::Ipv6Repr;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const KEY: u16 = gre::flags::KEY;
    const CK: u16 = gre::flags::CHECKSUM | gre::flags::KEY;

    /// One of our IPv4 GRE packets from `src` to `dst` (1400 bytes of inner IPv4), as an ICMP error quotes it:
    /// the first `quote` bytes; `edit` changes the outer header first.
    fn quoted4_with(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        g: GreRepr,
        quote: usize,
        edit: impl FnOnce(&mut Ipv4Repr),
    ) -> Vec<u8> {
        let inner = 1400;
        let mut ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: protocol::GRE,
            payload_len: (g.header_len() + inner) as u16,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        edit(&mut ip);
        let mut b = vec![0u8; ip.header_len() + g.header_len() + inner];
        let at = ip.emit(&mut b);
        g.emit(&mut b[at..]);
        b.truncate(quote);
        b
    }

    fn quoted4(src: Ipv4Addr, dst: Ipv4Addr, g: GreRepr, quote: usize) -> Vec<u8> {
        quoted4_with(src, dst, g, quote, |_| {})
    }

    fn keyed(key: u32) -> GreRepr {
        GreRepr {
            checksum: false,
            key: Some(key),
            sequence: None,
            protocol: gre::protocol::IPV4,
        }
    }

    fn v4(a: Ipv4Addr) -> IpAddr {
        IpAddr::V4(a)
    }

    #[test]
    fn the_right_tunnel_matches_its_own_quoted_packet() {
        // RFC 792's minimum quote: the IP header and 8 bytes, which hold a key without a checksum.
        let q = Quote::from_ipv4(&quoted4(LOCAL, REMOTE, keyed(1001), 28)).unwrap();
        assert_eq!(q.gre.key, QuotedKey::Present(1001));
        assert!(q.is_from(v4(LOCAL), v4(REMOTE), KEY, Some(1001)));
    }

    #[test]
    fn a_wrong_key_remote_local_or_field_set_is_not_ours() {
        let q = Quote::from_ipv4(&quoted4(LOCAL, REMOTE, keyed(1001), 28)).unwrap();
        assert!(!q.is_from(v4(LOCAL), v4(REMOTE), KEY, Some(1002)), "key");
        assert!(
            !q.is_from(
                v4(LOCAL),
                v4(Ipv4Addr::new(198, 51, 100, 8)),
                KEY,
                Some(1001)
            ),
            "remote"
        );
        assert!(
            !q.is_from(v4(Ipv4Addr::new(192, 0, 2, 9)), v4(REMOTE), KEY, Some(1001)),
            "local"
        );
        // A tunnel without key, or one that also sends checksums, never sent this packet.
        assert!(!q.is_from(v4(LOCAL), v4(REMOTE), 0, None));
        assert!(!q.is_from(v4(LOCAL), v4(REMOTE), CK, Some(1001)));
        // The quote of a keyless packet is not of a keyed tunnel.
        let plain = GreRepr {
            key: None,
            ..keyed(0)
        };
        let q = Quote::from_ipv4(&quoted4(LOCAL, REMOTE, plain, 28)).unwrap();
        assert!(q.is_from(v4(LOCAL), v4(REMOTE), 0, None));
        assert!(!q.is_from(v4(LOCAL), v4(REMOTE), KEY, Some(1001)));
    }

    #[test]
    fn a_quote_cut_before_the_key_matches_on_the_rest() {
        // Checksum and key: the 8 bytes after the IP header end before the key (bytes 8..12).
        let ck = GreRepr {
            checksum: true,
            ..keyed(1001)
        };
        let q = Quote::from_ipv4(&quoted4(LOCAL, REMOTE, ck, 28)).unwrap();
        assert_eq!(q.gre.key, QuotedKey::NotQuoted);
        assert!(q.is_from(v4(LOCAL), v4(REMOTE), CK, Some(1001)));
        assert!(q.is_from(v4(LOCAL), v4(REMOTE), CK, Some(5)), "any key");
        assert!(!q.is_from(v4(LOCAL), v4(REMOTE), CK, None), "but a key");
        // A longer quote holds the key, which must match then.
        let q = Quote::from_ipv4(&quoted4(LOCAL, REMOTE, ck, 32)).unwrap();
        assert!(q.is_from(v4(LOCAL), v4(REMOTE), CK, Some(1001)));
        assert!(!q.is_from(v4(LOCAL), v4(REMOTE), CK, Some(5)));
        // Cut inside the GRE base header, or inside the IP header: no quote of ours.
        assert!(Quote::from_ipv4(&quoted4(LOCAL, REMOTE, ck, 23)).is_none());
        assert!(Quote::from_ipv4(&quoted4(LOCAL, REMOTE, ck, 19)).is_none());
    }

    #[test]
    fn quotes_that_are_not_gre_or_not_a_first_fragment_are_refused() {
        let udp = quoted4_with(LOCAL, REMOTE, keyed(1), 48, |ip| {
            ip.protocol = protocol::UDP
        });
        assert!(Quote::from_ipv4(&udp).is_none());
        // Fragment offset 185 (8-byte units): the bytes after the header are the middle of the datagram.
        let later = quoted4_with(LOCAL, REMOTE, keyed(1), 48, |ip| ip.frag_offset = 185);
        assert!(Quote::from_ipv4(&later).is_none());
        let first = quoted4_with(LOCAL, REMOTE, keyed(1), 48, |ip| ip.more_frags = true);
        assert!(
            Quote::from_ipv4(&first).is_some(),
            "a first fragment starts with GRE"
        );
    }

    #[test]
    fn ipv6_quotes_are_read_past_extension_headers() {
        let (l, r): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:ff::1".parse().unwrap(),
            "2001:db8:ee::7".parse().unwrap(),
        );
        let g = keyed(42);
        let ip = Ipv6Repr {
            src_addr: l,
            dst_addr: r,
            next_header: protocol::DESTINATION_OPTIONS,
            payload_len: 8 + 8 + 1000,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut b = vec![0u8; 40 + 8 + 8 + 1000];
        let at = ip.emit(&mut b);
        // RFC 2473 tunnel encapsulation limit 4, then PadN: next header GRE, length 0 (8 bytes).
        b[at..at + 8].copy_from_slice(&[protocol::GRE, 0, 4, 1, 4, 1, 2, 0]);
        g.emit(&mut b[at + 8..]);
        let q = Quote::from_ipv6(&b[..200]).unwrap();
        assert!(q.is_from(IpAddr::V6(l), IpAddr::V6(r), KEY, Some(42)));
        // Cut inside the extension header: nothing to match.
        assert!(Quote::from_ipv6(&b[..45]).is_none());
    }

    fn params() -> PmtuParams {
        // IPv4 outside, IPv4 routes only, a 1472-byte inner MTU and 28 bytes of IPv4 + GRE with a key.
        PmtuParams::new(1472, false, false, 28)
    }

    #[test]
    fn the_floor_keeps_576_or_1280_inner_bytes() {
        let p = params();
        assert_eq!(
            (p.floor, p.floor_path(), p.configured_path()),
            (576, 604, 1500)
        );
        let s = PmtuState::default();
        // An old router's 0 and a forged 68 both set the floor, not less.
        assert_eq!(s.report(&p, 0, 1_000), Outcome::Learned);
        assert_eq!(s.path_mtu(&p), 604);
        assert_eq!(s.inner_mtu(&p), 576);
        // IPv6 outside, or IPv6 carried: 1280 inner.
        let p6 = PmtuParams::new(1452, true, false, 48);
        assert_eq!((p6.floor, p6.floor_path()), (1280, 1328));
        let s6 = PmtuState::default();
        assert_eq!(s6.report(&p6, 68, 1_000), Outcome::Learned);
        assert_eq!(s6.inner_mtu(&p6), 1280);
        assert_eq!(PmtuParams::new(1472, false, true, 28).floor, 1280);
        // A configured MTU at the floor cannot be lowered at all.
        let low = PmtuParams::new(576, false, false, 28);
        assert_eq!(
            PmtuState::default().report(&low, 300, 1_000),
            Outcome::NotLower
        );
    }

    #[test]
    fn reports_only_lower_the_path_mtu_and_never_above_the_configured_one() {
        let p = params();
        let s = PmtuState::default();
        assert_eq!(s.report(&p, 9000, 1_000), Outcome::NotLower);
        assert_eq!(
            s.report(&p, 1500, 1_000),
            Outcome::NotLower,
            "the configured MTU itself"
        );
        assert_eq!(s.learned(), None);
        assert_eq!(s.report(&p, 1400, 1_000), Outcome::Learned);
        assert_eq!((s.path_mtu(&p), s.inner_mtu(&p)), (1400, 1372));
        // Higher than what was learned: ignored (only an expiry raises it again).
        assert_eq!(s.report(&p, 1450, 5_000), Outcome::NotLower);
        assert_eq!(s.report(&p, 1300, 5_000), Outcome::Learned);
        assert_eq!(s.inner_mtu(&p), 1272);
    }

    #[test]
    fn updates_are_rate_limited_per_tunnel() {
        let p = params();
        let s = PmtuState::default();
        assert_eq!(s.report(&p, 1400, 10_000), Outcome::Learned);
        // A flood inside the interval changes nothing, however low it claims.
        for i in 0..UPDATE_INTERVAL_MS {
            assert_eq!(s.report(&p, 700, 10_000 + i), Outcome::RateLimited);
        }
        assert_eq!(s.path_mtu(&p), 1400);
        assert_eq!(
            s.report(&p, 1300, 10_000 + UPDATE_INTERVAL_MS),
            Outcome::Learned
        );
        assert_eq!(s.path_mtu(&p), 1300);
        // Another tunnel's state has its own limit.
        let other = PmtuState::default();
        assert_eq!(other.report(&p, 1400, 10_001), Outcome::Learned);
    }

    #[test]
    fn a_learned_value_expires_after_ten_minutes_and_refreshes_past_half_time() {
        let p = params();
        let s = PmtuState::default();
        let t0 = 1_000;
        assert_eq!(s.report(&p, 1400, t0), Outcome::Learned);
        assert_eq!(s.learned(), Some((1400, t0 + EXPIRES_MS)));
        // The same value before half time: nothing to write.
        assert_eq!(s.report(&p, 1400, t0 + 1_000), Outcome::NotLower);
        assert!(!s.expire(t0 + EXPIRES_MS - 1));
        assert_eq!(s.path_mtu(&p), 1400);
        // Past half time the same value pushes the expiry out.
        let t1 = t0 + EXPIRES_MS / 2 + 1;
        assert_eq!(s.report(&p, 1400, t1), Outcome::Learned);
        assert!(!s.expire(t0 + EXPIRES_MS));
        assert!(s.expire(t1 + EXPIRES_MS));
        assert_eq!(s.learned(), None);
        assert_eq!((s.path_mtu(&p), s.inner_mtu(&p)), (1500, 1472));
        assert!(!s.expire(t1 + 2 * EXPIRES_MS), "nothing left to expire");
    }

    #[test]
    fn the_cell_copies_its_value_and_replace_keeps_a_fresher_store() {
        let c = MtuCell::new(1472);
        assert_eq!(c.clone().get(), 1472);
        c.set(1372);
        assert!(!c.replace(1472, 1500), "a worker stored since");
        assert!(c.replace(1372, 1472));
        assert_eq!(c.get(), 1472);
        assert_eq!(format!("{c:?}"), "1472");
    }

    #[test]
    fn ticks_convert_to_milliseconds() {
        assert_eq!(ticks_to_ms(2_300_000_000, 2_300_000_000), 1_000);
        assert_eq!(ticks_to_ms(5, 0), 5);
    }
}
