//! heap_4 as the global allocator of a whole test binary.
mod global;

use rtos_heap::{Heap4, LockedHeap, RawHeap, StaticRegion};

static MEMORY: StaticRegion<{ 128 << 20 }> = StaticRegion::new();
fn fault(f: rtos_heap::Fault) {
    eprintln!("FAULT {f:?}");
}
global_heap_test!(
    LockedHeap<Heap4>,
    LockedHeap::with_hooks(
        Heap4::new(),
        rtos_heap::Hooks {
            fault: Some(fault),
            alloc_failed: None
        }
    ),
    |h: &mut Heap4| h.init(MEMORY.take().unwrap()).unwrap()
);

#[test]
fn collections_on_heap4() {
    let before = GLOBAL.0.stats();
    global::workload(true);
    let after = GLOBAL.0.stats();
    assert!(after.successful_allocations > before.successful_allocations + 5_000);
    assert!(after.successful_frees > before.successful_frees + 3_000);
    assert_eq!(after.rejected_frees, 0);
    let check = GLOBAL.0.lock().check();
    check.unwrap();
}
