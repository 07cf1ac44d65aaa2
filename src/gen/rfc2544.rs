//! RFC 2544 section 26.1 throughput: the highest offered rate with no frame lost, found by a binary search on
//! rate with a bounded number of short trials. The search itself is pure (no EAL) and tested here.

/// The binary search state: `lo` passed (or 0), `hi` failed (or the maximum, not yet tried).
#[derive(Clone, Debug)]
pub struct Search {
    lo: f64,
    hi: f64,
    next: f64,
    best: Option<f64>,
    tried_max: bool,
}

impl Search {
    /// Start at `max_pps` (RFC 2544: first try the maximum rate).
    pub fn new(max_pps: f64) -> Search {
        Search {
            lo: 0.0,
            hi: max_pps,
            next: max_pps,
            best: None,
            tried_max: false,
        }
    }

    /// The rate of the next trial.
    pub fn rate(&self) -> f64 {
        self.next
    }

    /// Record the outcome of a trial at [`Search::rate`]; returns false when the search is over (the maximum
    /// passed, or the interval is below 0.1 % of the maximum).
    pub fn record(&mut self, passed: bool) -> bool {
        let r = self.next;
        let first = !self.tried_max;
        self.tried_max = true;
        if passed {
            self.best = Some(r);
            self.lo = r;
            if first {
                return false;
            }
        } else {
            self.hi = r;
        }
        self.next = (self.lo + self.hi) / 2.0;
        self.hi - self.lo > self.hi.max(1.0) * 1e-3
    }

    /// The highest rate that passed.
    pub fn best(&self) -> Option<f64> {
        self.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_on_the_threshold_within_the_trial_budget() {
        let threshold = 3_141_592.0;
        let mut s = Search::new(10_000_000.0);
        for _ in 0..16 {
            let passed = s.rate() <= threshold;
            if !s.record(passed) {
                break;
            }
        }
        let b = s.best().unwrap();
        assert!(b <= threshold && b > threshold * 0.999, "{b}");
    }

    #[test]
    fn max_passing_ends_at_once_and_nothing_passing_gives_none() {
        let mut s = Search::new(1000.0);
        assert!(!s.record(true));
        assert_eq!(s.best(), Some(1000.0));
        let mut s = Search::new(1000.0);
        for _ in 0..8 {
            s.record(false);
        }
        assert_eq!(s.best(), None);
        assert!(s.rate() < 10.0);
    }
}
