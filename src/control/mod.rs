//! The control thread's side of the stats handoff: keep the newest cumulative snapshot of each worker, sum
//! them on demand, and render the once-a-second live line.
pub mod bridges;
pub mod ctl;
pub mod http;
pub mod learned;
pub mod mirrors;
pub mod plane;
mod prefixes;
mod probes;
pub mod reload;
pub mod status;
pub mod tables;

use crate::config::Config;
use crate::stats::{new_latency_histogram, Counters, DropReason, LatencySummary, Snapshot};
use hdrhistogram::Histogram;
use std::time::Instant;

/// The newest snapshot of every worker.
pub struct Aggregator {
    latest: Vec<Counters>,
    hists: Vec<Histogram<u64>>,
}

impl Aggregator {
    pub fn new(workers: usize, ports: usize, tunnels: usize) -> Self {
        Aggregator {
            latest: (0..workers)
                .map(|_| Counters::new(ports, tunnels))
                .collect(),
            hists: (0..workers).map(|_| new_latency_histogram()).collect(),
        }
    }

    /// Take a worker's snapshot (cumulative: it replaces the previous one).
    pub fn absorb(&mut self, s: &Snapshot) {
        if let Some(c) = self.latest.get_mut(s.worker) {
            c.clone_from(&s.counters);
            self.hists[s.worker].reset();
            let _ = self.hists[s.worker].add(&s.latency_ns);
        }
    }

    /// Sum over workers (tunnels matched by id).
    pub fn total(&self) -> Counters {
        let ports = self.latest.first().map_or(0, |c| c.ports.len());
        let mut t = Counters::new(ports, 0);
        for c in &self.latest {
            t.merge(c);
        }
        t
    }

    /// Merged latency histogram.
    pub fn latency(&self) -> Histogram<u64> {
        let mut h = new_latency_histogram();
        for x in &self.hists {
            let _ = h.add(x);
        }
        h
    }
}

/// Renders `greway run`'s once-a-second line from successive totals.
pub struct LiveLine {
    names: Vec<String>,
    prev: Option<(Instant, Counters)>,
    prev_hist: Option<Histogram<u64>>,
}

impl LiveLine {
    pub fn new(cfg: &Config) -> Self {
        LiveLine {
            names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
            prev: None,
            prev_hist: None,
        }
    }

    /// One compact line: per port pps and Gbit/s in/out, drops by reason (per second), total drops.
    pub fn line(&mut self, now_total: &Counters) -> String {
        let now = Instant::now();
        let mut s = String::new();
        let (dt, prev) = match &self.prev {
            Some((t, c)) => (now.duration_since(*t).as_secs_f64().max(1e-6), c.clone()),
            None => (
                1.0,
                Counters::new(now_total.ports.len(), now_total.tunnels.len()),
            ),
        };
        for (i, name) in self.names.iter().enumerate() {
            let (a, b) = (
                now_total.ports.get(i).copied().unwrap_or_default(),
                prev.ports.get(i).copied().unwrap_or_default(),
            );
            let rx_pps = (a.rx - b.rx) as f64 / dt;
            let tx_pps = (a.tx - b.tx) as f64 / dt;
            let rx_gbps = (a.rx_bytes - b.rx_bytes) as f64 * 8.0 / dt / 1e9;
            let tx_gbps = (a.tx_bytes - b.tx_bytes) as f64 * 8.0 / dt / 1e9;
            s.push_str(&format!(
                "{name}: rx {} ({rx_gbps:.2} Gb/s) tx {} ({tx_gbps:.2} Gb/s) | ",
                fmt_rate(rx_pps),
                fmt_rate(tx_pps)
            ));
        }
        let mut drops: Vec<(&str, u64)> = DropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.name(),
                    now_total.drops[*r as usize] - prev.drops[*r as usize],
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        drops.sort_by_key(|d| std::cmp::Reverse(d.1));
        s.push_str(&format!("drops {}", now_total.total_drops()));
        for (n, d) in drops.iter().take(4) {
            s.push_str(&format!(" {n}+{d}"));
        }
        self.prev = Some((now, now_total.clone()));
        s
    }

    /// The full live line: [`LiveLine::line`], tunnels up/down, and the latency percentiles of the packets
    /// forwarded since the previous line (from the cumulative histogram `hist`).
    pub fn full(
        &mut self,
        now_total: &Counters,
        hist: &Histogram<u64>,
        tunnels_up: usize,
        tunnels_down: usize,
    ) -> String {
        let mut s = self.line(now_total);
        s.push_str(&format!(" | tunnels {tunnels_up} up {tunnels_down} down"));
        let mut delta = hist.clone();
        if let Some(p) = &self.prev_hist {
            if delta.subtract(p).is_err() {
                delta = hist.clone();
            }
        }
        self.prev_hist = Some(hist.clone());
        if delta.is_empty() {
            s.push_str(" | lat -");
            s
        } else {
            LiveLine::with_latency(s, &LatencySummary::of(&delta))
        }
    }

    /// Append latency percentiles to a line.
    pub fn with_latency(line: String, l: &LatencySummary) -> String {
        format!(
            "{line} | lat p50 {:.1}us p99 {:.1}us p99.9 {:.1}us",
            l.p50_us, l.p99_us, l.p999_us
        )
    }
}

fn fmt_rate(pps: f64) -> String {
    if pps >= 1e6 {
        format!("{:.2} Mpps", pps / 1e6)
    } else if pps >= 1e3 {
        format!("{:.1} kpps", pps / 1e3)
    } else {
        format!("{pps:.0} pps")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_latency_histogram;

    #[test]
    fn live_line_shows_rates_tunnels_and_interval_latency() {
        let cfg: Config = include_str!("../../dpdk-config/demo.toml").parse().unwrap();
        let mut live = LiveLine::new(&cfg);
        let mut c = Counters::new(2, 1);
        c.ports[0].rx = 1000;
        c.drop_pkt(DropReason::NoRoute);
        let mut h = new_latency_histogram();
        h.record_n(2_000, 100).unwrap();
        let l = live.full(&c, &h, 1, 0);
        assert!(l.contains("inside: rx"), "{l}");
        assert!(l.contains("drops 1 no_route+1"), "{l}");
        assert!(l.contains("tunnels 1 up 0 down"), "{l}");
        assert!(l.contains("lat p50 2.0us p99 2.0us p99.9 2.0us"), "{l}");
        // The next line shows only the packets of its own interval.
        h.record_n(50_000, 10).unwrap();
        let l = live.full(&c, &h, 0, 1);
        assert!(l.contains("lat p50 50.0us"), "{l}");
        assert!(l.contains("tunnels 0 up 1 down"), "{l}");
        let l = live.full(&c, &h, 0, 1);
        assert!(l.ends_with("| lat -"), "nothing forwarded: {l}");
    }

    #[test]
    fn aggregator_sums_workers_by_tunnel_id() {
        let mut agg = Aggregator::new(2, 1, 2);
        let mut c0 = Counters::new(1, 2);
        c0.tunnels[1].encap = 5;
        let mut c1 = Counters::new(1, 2);
        c1.relayout(&vec![1u64].into());
        c1.tunnels[0].encap = 7;
        for (w, c) in [(0, c0), (1, c1)] {
            agg.absorb(&Snapshot {
                worker: w,
                counters: c,
                latency_ns: new_latency_histogram(),
            });
        }
        let t = agg.total();
        assert_eq!(t.tunnel_by_id(1).unwrap().encap, 12);
        assert_eq!(t.tunnel_by_id(0).unwrap().encap, 0);
    }
}
