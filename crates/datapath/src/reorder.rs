//! RFC 2890 section 2.2 reordering: a receiver "MAY" hold out-of-order packets for a short time instead of
//! dropping them. Per worker and tunnel (RSS keeps a tunnel's packets on one queue), greway holds up to
//! `window` packets that arrived ahead of a gap, for at most `timeout_ms`. They are released in sequence order:
//! as soon as the gap fills, or when the oldest one's time is up (the gap is then given up on), or when the
//! buffer is full (everything held is released in order to make room). A buffer never holds more than its
//! window: a packet that would overflow it releases the earliest one at once (see [`ReorderBuf::insert`]).

/// Held packets of one tunnel, kept sorted by sequence number (serial order relative to `last`).
pub struct ReorderBuf<B> {
    held: Vec<(u32, u64, B)>,
    flush_all: bool,
}

impl<B> Default for ReorderBuf<B> {
    fn default() -> Self {
        ReorderBuf {
            held: Vec::new(),
            flush_all: false,
        }
    }
}

impl<B> ReorderBuf<B> {
    pub fn len(&self) -> usize {
        self.held.len()
    }
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Hold `pkt` (sequence `seq`, later than `last`) until `deadline` (TSC). When `window` packets are already
    /// held, everything is marked for release in order, and the earliest of them and `pkt` is given back at
    /// once, to be delivered now: the buffer never holds more than `window` (at least 1) packets.
    #[must_use = "a packet given back must be delivered (or counted)"]
    pub fn insert(
        &mut self,
        seq: u32,
        last: u32,
        deadline: u64,
        window: usize,
        pkt: B,
    ) -> Option<(u32, B)> {
        let full = self.held.len() >= window.max(1);
        if full {
            self.flush_all = true;
        }
        let dist = seq.wrapping_sub(last);
        let at = self
            .held
            .partition_point(|(s, _, _)| s.wrapping_sub(last) < dist);
        if full && at == 0 {
            // Earlier than everything held: it goes first.
            return Some((seq, pkt));
        }
        self.held.insert(at, (seq, deadline, pkt));
        if full {
            let (s, _, b) = self.held.remove(0);
            return Some((s, b));
        }
        None
    }

    /// The next packet to deliver, if any: the one right after `last`, or the smallest held one once its time
    /// is up or the buffer overflowed.
    pub fn pop_ready(&mut self, last: u32, now: u64) -> Option<(u32, B)> {
        let (seq, deadline, _) = self.held.first()?;
        let ready = *seq == last.wrapping_add(1) || *deadline <= now || self.flush_all;
        if !ready {
            return None;
        }
        let (s, _, b) = self.held.remove(0);
        if self.held.is_empty() {
            self.flush_all = false;
        }
        Some((s, b))
    }

    /// Everything held (worker stopping).
    pub fn drain(&mut self) -> impl Iterator<Item = B> + '_ {
        self.flush_all = false;
        self.held.drain(..).map(|(_, _, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_order_when_the_gap_fills_or_time_is_up() {
        let mut r = ReorderBuf::default();
        // last = 0; 3 and 2 arrive ahead of 1.
        assert!(r.insert(3, 0, 100, 4, "three").is_none());
        assert!(r.insert(2, 0, 100, 4, "two").is_none());
        assert!(
            r.pop_ready(0, 50).is_none(),
            "1 is missing and time is not up"
        );
        // 1 arrives and is delivered directly (last = 1): 2 then 3 follow.
        assert_eq!(r.pop_ready(1, 50), Some((2, "two")));
        assert_eq!(r.pop_ready(2, 50), Some((3, "three")));
        assert!(r.is_empty());
        // A gap that never fills: released when the time is up, in order.
        assert!(r.insert(9, 3, 100, 4, "nine").is_none());
        assert!(r.insert(7, 3, 100, 4, "seven").is_none());
        assert!(r.pop_ready(3, 99).is_none());
        assert_eq!(r.pop_ready(3, 100), Some((7, "seven")));
        assert_eq!(r.pop_ready(7, 100), Some((9, "nine")));
    }

    #[test]
    fn a_full_window_releases_everything_in_order() {
        let mut r = ReorderBuf::default();
        let mut out = Vec::new();
        for s in [5u32, 3, 4] {
            // Given back at once: the earliest, when the window is full.
            out.extend(r.insert(s, 1, 1000, 2, s).map(|x| x.0));
            assert!(r.len() <= 2, "bounded by the window");
        }
        out.extend(std::iter::from_fn(|| r.pop_ready(1, 0).map(|x| x.0)));
        assert_eq!(out, vec![3, 4, 5]);
    }

    #[test]
    fn ordering_survives_the_wrap() {
        let mut r = ReorderBuf::default();
        assert!(r.insert(1, u32::MAX - 2, 0, 8, 'b').is_none());
        assert!(r.insert(u32::MAX, u32::MAX - 2, 0, 8, 'a').is_none());
        assert_eq!(r.pop_ready(u32::MAX - 2, 1).map(|x| x.1), Some('a'));
        assert_eq!(r.pop_ready(u32::MAX, 1).map(|x| x.1), Some('b'));
    }
}
