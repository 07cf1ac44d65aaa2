//! Per-stream receive accounting: duplicates and reordering from sequence numbers, without EAL.
//!
//! Each stream keeps the next expected sequence number (highest seen + 1) and a bitmap of the last
//! [`WINDOW`] sequence numbers below it. A packet at or above `next` is in order (a gap is not yet loss: the
//! missing ones may still arrive late); below `next` it is a duplicate when its bit is set, otherwise a
//! reordered (late) packet, and its bit is set. Older than the window it is counted as reordered (a duplicate
//! that old cannot be told apart). Loss is computed at the end as sent - (received - duplicates), which is
//! exact whatever the order.

/// Sequence numbers remembered below the highest one seen, per stream.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// One stream's state.
#[derive(Clone, Debug)]
pub struct StreamRx {
    next: u64,
    seen: [u64; WORDS],
    pub received: u64,
    pub reordered: u64,
    pub duplicates: u64,
}

impl Default for StreamRx {
    fn default() -> Self {
        StreamRx {
            next: 0,
            seen: [0; WORDS],
            received: 0,
            reordered: 0,
            duplicates: 0,
        }
    }
}

/// How a packet was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    Reordered,
    Duplicate,
}

impl StreamRx {
    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Account one packet with sequence number `seq`.
    #[inline]
    pub fn on_seq(&mut self, seq: u64) -> Arrival {
        self.received += 1;
        if seq >= self.next {
            // Clear the bits of the sequence numbers skipped over (they leave the window or are now missing).
            let skip = seq - self.next;
            if skip >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for s in self.next..seq {
                    let (w, m) = Self::bit(s);
                    self.seen[w] &= !m;
                }
            }
            let (w, m) = Self::bit(seq);
            self.seen[w] |= m;
            self.next = seq + 1;
            return Arrival::InOrder;
        }
        if self.next - seq > WINDOW {
            self.reordered += 1;
            return Arrival::Reordered;
        }
        let (w, m) = Self::bit(seq);
        if self.seen[w] & m != 0 {
            self.duplicates += 1;
            Arrival::Duplicate
        } else {
            self.seen[w] |= m;
            self.reordered += 1;
            Arrival::Reordered
        }
    }
}

/// Totals over all streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxTotals {
    pub received: u64,
    pub reordered: u64,
    pub duplicates: u64,
}

/// Sum the streams.
pub fn totals(streams: &[StreamRx]) -> RxTotals {
    streams.iter().fold(RxTotals::default(), |a, s| RxTotals {
        received: a.received + s.received,
        reordered: a.reordered + s.reordered,
        duplicates: a.duplicates + s.duplicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_gap_late_and_duplicate() {
        let mut s = StreamRx::default();
        for q in [0, 1, 2] {
            assert_eq!(s.on_seq(q), Arrival::InOrder);
        }
        assert_eq!(s.on_seq(5), Arrival::InOrder); // 3, 4 missing for now
        assert_eq!(s.on_seq(3), Arrival::Reordered);
        assert_eq!(s.on_seq(3), Arrival::Duplicate);
        assert_eq!(s.on_seq(5), Arrival::Duplicate);
        assert_eq!(s.on_seq(4), Arrival::Reordered);
        assert_eq!((s.received, s.reordered, s.duplicates), (8, 2, 2));
    }

    #[test]
    fn window_wraps_without_false_duplicates() {
        let mut s = StreamRx::default();
        // Skip every other sequence number over several windows, then deliver the missing ones late.
        for q in (0..3 * WINDOW).step_by(2) {
            assert_eq!(s.on_seq(q), Arrival::InOrder);
        }
        let hi = 3 * WINDOW;
        for q in (hi - WINDOW + 1..hi - 1).step_by(2) {
            assert_eq!(s.on_seq(q), Arrival::Reordered, "{q}");
        }
        // A big jump clears the window: the previous numbers are now older than it.
        assert_eq!(s.on_seq(10 * WINDOW), Arrival::InOrder);
        assert_eq!(s.on_seq(10 * WINDOW - 1), Arrival::Reordered);
        assert_eq!(s.on_seq(10 * WINDOW - 1), Arrival::Duplicate);
        assert_eq!(s.on_seq(1), Arrival::Reordered, "older than the window");
    }

    #[test]
    fn loss_is_sent_minus_unique() {
        let mut v = vec![StreamRx::default(); 2];
        for q in [0, 1, 3, 3] {
            v[0].on_seq(q);
        }
        v[1].on_seq(0);
        let t = totals(&v);
        let sent = 4 + 2;
        assert_eq!(sent - (t.received - t.duplicates), 2);
    }
}
