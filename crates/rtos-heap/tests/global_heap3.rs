//! heap_3 (the system allocator, counted) as the global allocator of a whole test binary.
mod global;

use rtos_heap::{Heap3, LockedHeap, RawHeap};

global_heap_test!(
    LockedHeap<Heap3<std::alloc::System>>,
    LockedHeap::new(Heap3::new(std::alloc::System)),
    |_h: &mut Heap3<std::alloc::System>| ()
);

#[test]
fn collections_on_heap3() {
    global::workload(true);
    // Read under the lock, assert after it is released (a failing assert allocates).
    let (s, in_use, peak, check) = {
        let g = GLOBAL.0.lock();
        (
            g.stats(),
            g.bytes_in_use(),
            g.peak_bytes_in_use(),
            g.check(),
        )
    };
    assert!(s.successful_frees > 3_000, "{s:?}");
    assert_eq!(s.rejected_frees, 0);
    assert!(in_use < peak);
    check.unwrap();
}
