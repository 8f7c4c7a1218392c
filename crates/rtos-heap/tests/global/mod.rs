//! Shared body of the `global_heapN` test binaries: each installs one scheme as the
//! `#[global_allocator]` and runs real collection work on it.
#![allow(dead_code)] // each binary uses the part it needs

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

pub trait Shape {
    fn area(&self) -> f64;
}
struct Square(f64);
struct Circle(f64);
impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}
impl Shape for Circle {
    fn area(&self) -> f64 {
        3.0 * self.0 * self.0
    }
}

/// Vec, String, BTreeMap, HashMap and Box<dyn> work, each result checked.
pub fn workload(frees: bool) {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..20_000u64 {
        v.push(i * i);
    }
    assert_eq!(v.iter().sum::<u64>(), (0..20_000u64).map(|i| i * i).sum());
    let mut s = String::new();
    for i in 0..2_000 {
        write!(s, "{i},").unwrap();
    }
    assert_eq!(s.split(',').filter(|x| !x.is_empty()).count(), 2_000);
    let mut m = BTreeMap::new();
    for i in 0..5_000u32 {
        m.insert(
            i.wrapping_mul(2_654_435_761),
            vec![i as u8; (i % 97) as usize],
        );
    }
    if frees {
        for i in (0..5_000u32).step_by(2) {
            m.remove(&i.wrapping_mul(2_654_435_761));
        }
        assert_eq!(m.len(), 2_500);
    }
    let total: usize = m.values().map(Vec::len).sum();
    assert!(total > 0);
    let mut h: HashMap<String, Box<dyn Shape>> = HashMap::new();
    for i in 0..1_000 {
        let shape: Box<dyn Shape> = if i % 2 == 0 {
            Box::new(Square(i as f64))
        } else {
            Box::new(Circle(i as f64))
        };
        h.insert(format!("shape-{i}"), shape);
    }
    assert_eq!(h["shape-10"].area(), 100.0);
    assert_eq!(h["shape-3"].area(), 27.0);
    let joined = std::thread::spawn(|| {
        (0..1000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("")
    })
    .join()
    .unwrap();
    assert!(joined.starts_with("0123456789101112"));
}

/// The workload with frees, then: thousands of frees succeeded, none refused, `check()` passes.
/// The check result is taken under the lock and asserted after it (a failing assert allocates).
pub fn run_and_check<H: rtos_heap::RawHeap, R: lock_api::RawMutex>(
    heap: &rtos_heap::LockedHeap<H, R>,
) {
    workload(true);
    let s = heap.stats();
    assert!(s.successful_frees > 3_000, "{s:?}");
    assert_eq!(s.rejected_frees, 0);
    let check = heap.lock().check();
    check.unwrap();
}

/// Installs `$heap` (a `LockedHeap<...>` expression) as the global allocator, with `$init`
/// (a closure over `&mut` the raw heap) run once before the first allocation.
#[macro_export]
macro_rules! global_heap_test {
    ($ty:ty, $heap:expr, $init:expr) => {
        struct Global($ty);

        // SAFETY: forwards to the locked heap after making sure it has its memory.
        unsafe impl std::alloc::GlobalAlloc for Global {
            unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
                self.ready();
                // SAFETY: forwarded contract.
                unsafe { self.0.alloc(l) }
            }
            unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
                self.ready();
                // SAFETY: forwarded contract.
                unsafe { self.0.alloc_zeroed(l) }
            }
            unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
                // SAFETY: forwarded contract.
                unsafe { self.0.dealloc(p, l) }
            }
            unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
                // SAFETY: forwarded contract.
                unsafe { self.0.realloc(p, l, n) }
            }
        }

        impl Global {
            fn ready(&self) {
                static DONE: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !DONE.load(std::sync::atomic::Ordering::Acquire) {
                    let mut h = self.0.lock();
                    if !DONE.load(std::sync::atomic::Ordering::Relaxed) {
                        ($init)(&mut *h);
                        DONE.store(true, std::sync::atomic::Ordering::Release);
                    }
                }
            }
        }

        #[global_allocator]
        static GLOBAL: Global = Global($heap);
    };
}
