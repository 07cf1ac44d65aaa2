//! Core-pinned tasks (`dpdk::spawn_pinned`, `dpdk::launch_on_lcore`) on a real EAL: values and panics come back
//! through `join`, a busy lcore refuses a second task and takes the next one after, and a core that is not an EAL
//! worker lcore gets a registered thread instead. EAL can be initialised once per process, so this file holds
//! one test.
use greway::dpdk::{self, PinnedTask};

mod common;

#[test]
fn pinned_tasks_run_on_lcores_or_registered_threads() {
    let eal = common::init_eal("lcoretest", "0-1");
    // Core 1 is EAL worker lcore 1; core 0 is the main lcore, no worker.
    assert_eq!(dpdk::worker_lcore_on(1), Some(1));
    assert_eq!(dpdk::worker_lcore_on(0), None);

    // A value comes back, computed on lcore 1.
    let t = dpdk::spawn_pinned("value", 1, || (dpdk::eal::current_lcore().0, 6 * 7)).unwrap();
    assert!(matches!(t, PinnedTask::Lcore(_)));
    assert_eq!(t.join().unwrap(), (1, 42));

    // A panic comes back as `Err` (not unwound through EAL's C frames), and the lcore stays usable.
    let t = dpdk::spawn_pinned("panics", 1, || -> u32 { panic!("deliberate") }).unwrap();
    let e = t.join().unwrap_err();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"deliberate"));

    // While a task runs, the lcore refuses another one; after it returns, it takes the next.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let t = dpdk::launch_on_lcore(1, move || wait.recv().is_ok()).unwrap();
    assert!(!t.is_finished());
    let refused = dpdk::launch_on_lcore(1, || 0u32)
        .err()
        .expect("lcore 1 is busy");
    assert!(refused.to_string().contains("busy"), "{refused}");
    go.send(()).unwrap();
    assert!(t.join().unwrap());
    assert_eq!(
        dpdk::launch_on_lcore(1, || 7u32).unwrap().join().unwrap(),
        7
    );

    // Core 0 has no worker lcore: a thread pinned there and registered (a new lcore id, not 0 or 1).
    let t = dpdk::spawn_pinned("thread", 0, || dpdk::eal::current_lcore().0).unwrap();
    assert!(matches!(t, PinnedTask::Thread(_)));
    let l = t.join().unwrap();
    assert!(l > 1 && l != u32::MAX, "registered lcore id {l}");

    drop(eal);
}
