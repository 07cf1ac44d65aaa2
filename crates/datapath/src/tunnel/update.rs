//! Route changes published without rebuilding: double buffering with the `Arc` reference count as
//! the grace period.
//!
//! # Contract
//! Workers read [`RouteTables`] through an `Arc` inside the published `Tables` (loaded from an
//! `ArcSwap` once per poll round) and never see a table change under them: a table is changed in
//! place only while no one but the writer holds it. Lookups stay plain loads (no atomics, no
//! `unsafe`). A lookup made during a change answers from the generation before it or the one
//! after it, never from a half-made state; a change is visible to a worker from its first poll
//! round after the new `Tables` is published.
//!
//! # How
//! [`RouteTablesWriter`] (owned by the control thread) keeps two generations of the route tables:
//! `current`, the one it last handed out for publication, and `spare`, the one before it, with the
//! list of changes `spare` lacks (`behind`: the changes that made `current` from it). To apply a
//! batch of changes ([`RouteTablesWriter::apply`]):
//! 1. It takes `spare` for writing with `Arc::get_mut`, which succeeds once every reference to it
//!    is gone, i.e. once every worker has moved to the `Tables` that hold `current` and dropped the
//!    one before (that is the grace period; workers pick a new table up every poll round, so it is
//!    over within microseconds under load, or within `idle_sleep_us` for idle workers). While it
//!    does not succeed the writer waits (yielding, then sleeping in short steps) up to
//!    [`RouteTablesWriter::GRACE_TIMEOUT`]; a worker that holds the old generation longer (stopped,
//!    or a test's gateway that is never polled) costs one full copy instead: the writer leaves
//!    `spare` to its holders and builds a fresh copy of `current` from its rules.
//! 2. It replays `behind` on it, then applies the batch: it now equals `current` plus the batch.
//! 3. It hands the result out as the new `current` (the caller publishes it in a new `Tables`); the
//!    old `current` becomes `spare`, and the batch becomes `behind`.
//!
//! While `current` has not been handed out since the last change (no one but the writer holds it:
//! several batches between two publications), a batch is applied to it in place and added to
//! `behind`; no grace period is waited for.
//!
//! Each change is thus applied twice (once per generation) and costs what the LPM's in-place
//! change costs (see [`super::lpm`]): no table is rebuilt or copied. Changes that arrive while
//! one is applied are batched by the caller into the next [`RouteTablesWriter::apply`].
//! [`RouteTablesWriter::replace`] installs a table built afresh (tunnel additions and removals,
//! whose route values are tunnel indices that shift); the next change then builds the spare copy
//! once.
//!
//! # Costs
//! Memory: two generations of every route table (each LPM's first level is 64 MiB + 16 MiB of
//! virtual memory, resident only where routes are). The old generation is never freed on a worker
//! (the writer holds it), so no worker pays for unmapping a table.
use super::lpm::LpmError;
use super::table::{Route, RouteTables};
use ipnet::IpNet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One change to [`RouteTables`], replayed identically on both generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// Inner prefix -> tunnel index (`encap4` / `encap6`): set, or removed with `None`.
    Encap(IpNet, Option<u32>),
    /// Destination prefix -> index into `routes` (`routes4` / `routes6`): set, or removed with
    /// `None`.
    Route(IpNet, Option<u32>),
    /// `routes[index] = route`, growing `routes` as needed (new slots are filled with `route`).
    Slot(u32, Route),
}

impl RouteTables {
    /// Applies one change in place.
    pub fn apply(&mut self, c: &RouteChange) -> Result<(), LpmError> {
        match *c {
            RouteChange::Encap(IpNet::V4(n), Some(v)) => {
                self.encap4.insert_net(n, v)?;
            }
            RouteChange::Encap(IpNet::V6(n), Some(v)) => {
                self.encap6.insert_net(n, v)?;
            }
            RouteChange::Encap(IpNet::V4(n), None) => {
                self.encap4.remove_net(n);
            }
            RouteChange::Encap(IpNet::V6(n), None) => {
                self.encap6.remove_net(n);
            }
            RouteChange::Route(IpNet::V4(n), Some(v)) => {
                self.routes4.insert_net(n, v)?;
            }
            RouteChange::Route(IpNet::V6(n), Some(v)) => {
                self.routes6.insert_net(n, v)?;
            }
            RouteChange::Route(IpNet::V4(n), None) => {
                self.routes4.remove_net(n);
            }
            RouteChange::Route(IpNet::V6(n), None) => {
                self.routes6.remove_net(n);
            }
            RouteChange::Slot(i, r) => {
                let i = i as usize;
                if i >= self.routes.len() {
                    self.routes.resize(i + 1, r);
                }
                self.routes[i] = r;
            }
        }
        Ok(())
    }

    /// A copy built afresh from the same rules (only the pages that routes touch are backed, where
    /// a plain copy would back all of every first level).
    pub fn rebuilt(&self) -> RouteTables {
        RouteTables {
            encap4: self.encap4.rebuilt(),
            encap6: self.encap6.rebuilt(),
            routes4: self.routes4.rebuilt(),
            routes6: self.routes6.rebuilt(),
            routes: self.routes.clone(),
        }
    }
}

/// The control thread's side of the route tables: applies changes to the generation no worker
/// reads any more. See the module docs.
#[derive(Debug)]
pub struct RouteTablesWriter {
    current: Arc<RouteTables>,
    spare: Option<Arc<RouteTables>>,
    /// Changes `current` has and `spare` lacks.
    behind: Vec<RouteChange>,
    /// Times the grace period ran out and the spare was rebuilt instead (for tests and logs).
    copies: u64,
}

impl RouteTablesWriter {
    /// How long [`RouteTablesWriter::apply`] waits for the readers of the previous generation
    /// before building a fresh copy instead.
    pub const GRACE_TIMEOUT: Duration = Duration::from_millis(20);

    pub fn new(tables: RouteTables) -> Self {
        RouteTablesWriter {
            current: Arc::new(tables),
            spare: None,
            behind: Vec::new(),
            copies: 0,
        }
    }

    /// The generation to publish (the latest).
    pub fn current(&self) -> &Arc<RouteTables> {
        &self.current
    }

    /// Installs tables built afresh as the current generation (the previous ones are dropped by
    /// their last reader).
    pub fn replace(&mut self, tables: RouteTables) {
        self.current = Arc::new(tables);
        self.spare = None;
        self.behind.clear();
    }

    /// How often a spare generation had to be built (first change after [`RouteTablesWriter::new`]
    /// or [`RouteTablesWriter::replace`], or a grace period that ran out).
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// Applies `changes` in order and returns the new generation to publish. On an error (an LPM
    /// out of groups) the returned generation holds the changes before the failing one, which the
    /// error reports by index; the caller should undo its own bookkeeping from there.
    pub fn apply(
        &mut self,
        changes: &[RouteChange],
    ) -> Result<Arc<RouteTables>, (usize, LpmError)> {
        self.apply_within(changes, Self::GRACE_TIMEOUT)
    }

    /// [`RouteTablesWriter::apply`] with a given grace period.
    pub fn apply_within(
        &mut self,
        changes: &[RouteChange],
        grace: Duration,
    ) -> Result<Arc<RouteTables>, (usize, LpmError)> {
        if changes.is_empty() {
            return Ok(self.current.clone());
        }
        if let Some(t) = Arc::get_mut(&mut self.current) {
            // `current` has not been handed out since the last change (several batches between two
            // publications, e.g. a burst of learned routes): no reader holds it, so it is changed in place,
            // and `spare` lacks these changes too.
            let mut failed = None;
            for (i, c) in changes.iter().enumerate() {
                if let Err(e) = t.apply(c) {
                    failed = Some((i, e));
                    break;
                }
            }
            let applied = failed.as_ref().map_or(changes.len(), |f| f.0);
            self.behind.extend_from_slice(&changes[..applied]);
            return match failed {
                None => Ok(self.current.clone()),
                Some(f) => Err(f),
            };
        }
        let mut next = self.take_spare(grace);
        let t = Arc::get_mut(&mut next).expect("the spare has no other holder");
        for c in self.behind.drain(..) {
            t.apply(&c)
                .expect("a change that applied to one generation applies to the other");
        }
        let mut failed = None;
        for (i, c) in changes.iter().enumerate() {
            if let Err(e) = t.apply(c) {
                failed = Some((i, e));
                break;
            }
        }
        let applied = failed.as_ref().map_or(changes.len(), |f| f.0);
        self.behind.extend_from_slice(&changes[..applied]);
        self.spare = Some(std::mem::replace(&mut self.current, next));
        match failed {
            None => Ok(self.current.clone()),
            Some(f) => Err(f),
        }
    }

    /// The previous generation, once no reader holds it (or a fresh copy of the current one).
    fn take_spare(&mut self, grace: Duration) -> Arc<RouteTables> {
        if let Some(mut spare) = self.spare.take() {
            let deadline = Instant::now() + grace;
            let mut spins = 0u32;
            loop {
                if Arc::get_mut(&mut spare).is_some() {
                    return spare;
                }
                if Instant::now() >= deadline {
                    break;
                }
                spins += 1;
                if spins < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
            // Its last reader frees it.
            drop(spare);
        }
        self.copies += 1;
        self.behind.clear();
        Arc::new(self.current.rebuilt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::lpm::Lpm4;
    use crate::tunnel::lpm6::Lpm6;
    use arc_swap::ArcSwap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    fn empty() -> RouteTables {
        RouteTables {
            encap4: Lpm4::new(&[]).unwrap(),
            encap6: Lpm6::new(&[]).unwrap(),
            routes4: Lpm4::new(&[]).unwrap(),
            routes6: Lpm6::new(&[]).unwrap(),
            routes: Vec::new(),
        }
    }

    fn v4(k: u32) -> (IpNet, u32) {
        // 10.k.0.0/16 (k < 256), else a /28 in 172.16.0.0/12: both tbl24 and tbl8 changes.
        let n = if k < 256 {
            format!("10.{k}.0.0/16")
        } else {
            format!("172.16.{}.{}/28", (k >> 4) & 0xff, (k & 0xf) << 4)
        };
        (n.parse().unwrap(), 100 + k)
    }

    fn v6(k: u32) -> (IpNet, u32) {
        (format!("2001:db8:{k:x}::/48").parse().unwrap(), 100 + k)
    }

    /// A worker-like reader looks up, a poll round at a time, addresses inside prefixes that a
    /// writer adds and removes as fast as it can (each published in a new generation): every answer
    /// is the one without the prefix (the covering route) or the one with it, never anything else.
    #[test]
    fn a_reader_sees_the_old_or_the_new_answer_never_garbage() {
        const K: u32 = 512;
        let mut base = empty();
        base.encap4
            .insert("10.0.0.0".parse().unwrap(), 8, 1)
            .unwrap();
        base.encap4
            .insert("172.16.0.0".parse().unwrap(), 12, 1)
            .unwrap();
        base.encap6
            .insert("2001:db8::".parse().unwrap(), 32, 1)
            .unwrap();
        let mut w = RouteTablesWriter::new(base);
        let published = Arc::new(ArcSwap::new(w.current().clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let lookups = Arc::new(AtomicU64::new(0));
        let reader = {
            let (published, stop, lookups) = (published.clone(), stop.clone(), lookups.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut k = 0u32;
                // Relaxed: a flag, no data behind it.
                while !stop.load(Ordering::Relaxed) {
                    // One poll round: one load, then lookups in that generation only.
                    let t = published.load_full();
                    for _ in 0..64 {
                        k = (k + 1) % K;
                        let (IpNet::V4(n4), want) = v4(k) else {
                            unreachable!()
                        };
                        let a = u32::from(n4.network()) | 5;
                        let got = t.encap4.lookup(a);
                        assert!(got == Some(1) || got == Some(want), "{n4}: {got:?}");
                        let (IpNet::V6(n6), want) = v6(k) else {
                            unreachable!()
                        };
                        let got = t.encap6.lookup(u128::from(n6.network()) | 0x5_0000);
                        assert!(got == Some(1) || got == Some(want), "{n6}: {got:?}");
                        assert_eq!(t.encap4.lookup(u32::from(Ipv4Addr::new(11, 0, 0, 1))), None);
                        n += 3;
                    }
                }
                lookups.store(n, Ordering::Relaxed);
            })
        };
        let mut changes = 0;
        for round in 0..4 {
            for add in [true, false] {
                for k in 0..K {
                    let (n4, v) = v4(k);
                    let (n6, v6v) = v6(k);
                    let batch = [
                        RouteChange::Encap(n4, add.then_some(v)),
                        RouteChange::Encap(n6, add.then_some(v6v)),
                    ];
                    // Generous grace: the reader always moves on, so no copy should be needed.
                    let next = w.apply_within(&batch, Duration::from_secs(10)).unwrap();
                    published.store(next);
                    changes += batch.len();
                }
                let t = published.load();
                let (IpNet::V4(n4), v) = v4(7) else {
                    unreachable!()
                };
                let got = t.encap4.lookup(u32::from(n4.network()) | 1);
                assert_eq!(got, Some(if add { v } else { 1 }), "round {round}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().expect("reader saw only old or new answers");
        assert!(lookups.load(Ordering::Relaxed) > 0);
        // One copy for the first change; every other change reused the previous generation.
        assert_eq!(w.copies(), 1, "{changes} changes");
        let t = w.current();
        assert_eq!((t.encap4.len(), t.encap6.len()), (2, 1));
        assert_eq!(t.encap4.tbl8_groups(), 0);
    }

    /// A generation that a reader keeps past the grace period is left to it: the writer builds a
    /// fresh copy instead, and both generations stay correct.
    #[test]
    fn a_reader_that_holds_on_costs_a_copy_not_a_change_under_it() {
        let mut w = RouteTablesWriter::new(empty());
        // The first generation is published (held).
        let g0 = w.current().clone();
        let net: IpNet = "192.168.0.0/16".parse().unwrap();
        let route = Route {
            port: 1,
            via: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))),
            tunnel_overlap: false,
        };
        let g1 = w
            .apply(&[
                RouteChange::Slot(0, route),
                RouteChange::Route(net, Some(0)),
            ])
            .unwrap();
        assert_eq!(w.copies(), 1);
        // g1 is published in its place.
        drop(g0);
        // A reader keeps g1.
        let held = w.current().clone();
        // g2 is made from the generation before g1, which no one holds: no copy.
        let g2 = w.apply_within(&[RouteChange::Route(net, None)], Duration::from_millis(1));
        assert!(g2.is_ok());
        assert_eq!(w.copies(), 1);
        // g2 stays published (held); g1 is dropped by all but the reader.
        drop(g1);
        // g3 would be made from g1, which the reader still holds: a copy of g2 instead.
        let g3 = w
            .apply_within(
                &[RouteChange::Route(net, Some(0))],
                Duration::from_millis(1),
            )
            .unwrap();
        assert_eq!(w.copies(), 2);
        let a = Ipv4Addr::new(192, 168, 1, 1);
        assert_eq!(
            held.routes4.lookup_addr(a),
            Some(0),
            "the held generation is untouched"
        );
        assert_eq!(
            g3.next_hop(IpAddr::V4(a)),
            Some((1, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))))
        );
        assert_eq!(g3.routes.len(), 1);
        // Replacing drops both generations; the next change copies once more.
        w.replace(empty());
        let published = w.current().clone();
        drop((held, g2, g3));
        let g4 = w
            .apply(&[
                RouteChange::Slot(0, route),
                RouteChange::Route(net, Some(0)),
            ])
            .unwrap();
        assert_eq!(w.copies(), 3);
        assert_eq!(g4.routes4.len(), 1);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(g4.next_hop(IpAddr::V6(v6)), None);
        drop(published);
    }

    /// Batches between two publications change the unpublished generation in place (no grace period,
    /// no copy), and the generation before catches up on all of them at the next change.
    #[test]
    fn batches_before_a_publication_change_the_current_generation_in_place() {
        let mut w = RouteTablesWriter::new(empty());
        let g0 = w.current().clone();
        let published = w.apply(&[RouteChange::Encap(v4(1).0, Some(1))]).unwrap();
        drop(g0);
        assert_eq!(w.copies(), 1);
        // Not published: each of these changes the same generation.
        for k in 2..200 {
            let (n, v) = v4(k);
            drop(
                w.apply_within(&[RouteChange::Encap(n, Some(v))], Duration::ZERO)
                    .unwrap(),
            );
        }
        drop(
            w.apply_within(&[RouteChange::Encap(v4(2).0, None)], Duration::ZERO)
                .unwrap(),
        );
        assert_eq!(w.copies(), 1);
        assert_eq!(
            published.encap4.len(),
            1,
            "the published generation is untouched"
        );
        assert_eq!(w.current().encap4.len(), 198);
        // Published now; the one before (no longer held) replays every batch, then takes the next.
        let g = w.current().clone();
        drop(published);
        let next = w
            .apply_within(&[RouteChange::Encap(v4(3).0, None)], Duration::ZERO)
            .unwrap();
        assert_eq!(w.copies(), 1);
        assert_eq!(g.encap4.len(), 198);
        assert_eq!(next.encap4.len(), 197);
        for k in 1..200 {
            let (n, v) = v4(k);
            let IpNet::V4(n) = n else { unreachable!() };
            let want = match k {
                1 => Some(1),
                2 | 3 => None,
                _ => Some(v),
            };
            assert_eq!(next.encap4.lookup_addr(n.network()), want, "{n}");
        }
    }
}
