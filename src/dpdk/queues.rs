//! The poll loop's rx/tx ([`PortIo`]) on real DPDK queues: one FFI call per burst.
use super::mbuf::{Burst, Mbuf};
use crate::datapath::worker::{PacketBurst, PortIo, MAX_BURST};

/// One port as a worker sees it: its own rx queue (if it polls the port) and its own tx queue.
#[derive(Clone, Copy, Debug)]
pub struct WorkerPort {
    pub port_id: u16,
    /// None: another worker polls this port (it has fewer rx queues than workers).
    pub rx_queue: Option<u16>,
    pub tx_queue: u16,
}

/// A worker's queues on all ports (index order = the configured ports).
pub struct WorkerQueues {
    ports: Vec<WorkerPort>,
}

impl WorkerQueues {
    pub fn new(ports: Vec<WorkerPort>) -> Self {
        WorkerQueues { ports }
    }
}

impl<const N: usize> PacketBurst for Burst<N> {
    type Pkt = Mbuf;
    #[inline(always)]
    fn len(&self) -> usize {
        Burst::len(self)
    }
    #[inline(always)]
    fn push(&mut self, p: Mbuf) -> Result<(), Mbuf> {
        Burst::push(self, p)
    }
    #[inline(always)]
    fn pushed_bytes(&self) -> u64 {
        Burst::pushed_bytes(self)
    }
    #[inline(always)]
    fn as_slice(&self) -> &[Mbuf] {
        Burst::as_slice(self)
    }
    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        Burst::as_mut_slice(self)
    }
    #[inline(always)]
    fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        Burst::drain(self)
    }
    #[inline(always)]
    fn free_all(&mut self) -> usize {
        Burst::free_all(self)
    }
    #[inline(always)]
    fn append(&mut self, from: &mut Self, bytes: u64) -> bool {
        Burst::append(self, from, bytes)
    }
}

impl PortIo for WorkerQueues {
    type Pkt = Mbuf;
    type Burst = Burst<MAX_BURST>;
    #[inline(always)]
    fn nports(&self) -> usize {
        self.ports.len()
    }
    #[inline(always)]
    fn rx(&mut self, port: usize, into: &mut Burst<MAX_BURST>, max: usize) -> usize {
        let wp = &self.ports[port];
        match wp.rx_queue {
            Some(q) => into.rx_n(wp.port_id, q, max),
            None => 0,
        }
    }
    #[inline(always)]
    fn tx(&mut self, port: usize, from: &mut Burst<MAX_BURST>) -> usize {
        let wp = &self.ports[port];
        from.tx(wp.port_id, wp.tx_queue)
    }
    #[inline(always)]
    fn now(&self) -> u64 {
        super::rdtsc()
    }
    fn cpu_ns(&self) -> u64 {
        thread_cpu_ns()
    }
}

/// The calling thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID; a vDSO call, used twice per run).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
