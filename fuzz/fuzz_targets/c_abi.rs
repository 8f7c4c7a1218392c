//! The C ABI (rtos-heap-ffi, heap_4 build) through its `extern "C"` functions: pvPortMalloc,
//! pvPortCalloc, pvPortRealloc, vPortFree (good, interior and double frees, which must reach the
//! fault handler and change nothing), xPortCheckHeap after every action, the statistics consistent.
#![no_main]

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rtos_heap_ffi as ffi;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Action {
    Malloc(u16),
    Calloc(u8, u8),
    Realloc { idx: u8, size: u16 },
    Free(u8),
    Interior { idx: u8, delta: u8 },
    DoubleFree(u8),
}

static FAULTS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_fault(_pv: *mut c_void, _reason: i32) {
    FAULTS.fetch_add(1, Ordering::Relaxed);
}

fn check() {
    let mut at = 0usize;
    // SAFETY: a valid out pointer.
    let r = unsafe { ffi::xPortCheckHeap(&mut at) };
    assert_eq!(r, 0, "xPortCheckHeap failed at {at:#x}");
}

fuzz_target!(|actions: Vec<Action>| {
    ffi::vPortHeapResetState();
    ffi::vPortSetHeapFaultHandler(Some(on_fault));
    let mut live: Vec<(*mut u8, usize, u8)> = Vec::new();
    let mut freed: Vec<*mut u8> = Vec::new();
    let mut tag = 0u8;
    for &a in actions.iter().take(256) {
        tag = tag.wrapping_add(1) | 1;
        match a {
            Action::Malloc(n) => {
                let p = ffi::pvPortMalloc(n as usize).cast::<u8>();
                if !p.is_null() {
                    // SAFETY: a fresh block of `n` bytes.
                    unsafe { p.write_bytes(tag, n as usize) };
                    live.push((p, n as usize, tag));
                }
            }
            Action::Calloc(c, s) => {
                let n = c as usize * s as usize;
                let p = ffi::pvPortCalloc(c as usize, s as usize).cast::<u8>();
                if !p.is_null() {
                    // SAFETY: a fresh block of `n` bytes.
                    let b = unsafe { std::slice::from_raw_parts(p, n) };
                    assert!(b.iter().all(|&x| x == 0));
                    // SAFETY: as above.
                    unsafe { p.write_bytes(tag, n) };
                    live.push((p, n, tag));
                }
            }
            Action::Realloc { idx, size } if !live.is_empty() => {
                let k = idx as usize % live.len();
                let (p, n, t) = live[k];
                // SAFETY: a live block of this heap.
                let q = unsafe { ffi::pvPortRealloc(p.cast(), size as usize) }.cast::<u8>();
                if !q.is_null() {
                    let keep = n.min(size as usize);
                    // SAFETY: the live (possibly moved) block.
                    let b = unsafe { std::slice::from_raw_parts(q, keep) };
                    assert!(b.iter().all(|&x| x == t), "realloc lost data");
                    // SAFETY: `size` bytes.
                    unsafe { q.write_bytes(tag, size as usize) };
                    live[k] = (q, size as usize, tag);
                } else if size != 0 {
                    // SAFETY: unchanged block.
                    let b = unsafe { std::slice::from_raw_parts(p, n) };
                    assert!(b.iter().all(|&x| x == t));
                } else {
                    live.swap_remove(k);
                }
            }
            Action::Free(i) if !live.is_empty() => {
                let (p, n, t) = live.swap_remove(i as usize % live.len());
                // SAFETY: a live block.
                let b = unsafe { std::slice::from_raw_parts(p, n) };
                assert!(b.iter().all(|&x| x == t), "block overwritten");
                let before = FAULTS.load(Ordering::Relaxed);
                // SAFETY: freed once.
                unsafe { ffi::vPortFree(p.cast()) };
                assert_eq!(FAULTS.load(Ordering::Relaxed), before, "good free faulted");
                freed.push(p);
            }
            Action::Interior { idx, delta } if !live.is_empty() && delta != 0 => {
                let p = live[idx as usize % live.len()]
                    .0
                    .wrapping_add(delta as usize);
                if !live.iter().any(|l| l.0 == p) {
                    let (before, free) =
                        (FAULTS.load(Ordering::Relaxed), ffi::xPortGetFreeHeapSize());
                    // SAFETY: refused (the point).
                    unsafe { ffi::vPortFree(p.cast()) };
                    assert_eq!(
                        FAULTS.load(Ordering::Relaxed),
                        before + 1,
                        "interior free not refused"
                    );
                    assert_eq!(ffi::xPortGetFreeHeapSize(), free);
                }
            }
            Action::DoubleFree(i) if !freed.is_empty() => {
                let p = freed[i as usize % freed.len()] as usize;
                let covered = live.iter().any(|l| {
                    let s = l.0 as usize;
                    p + 64 >= s && p < s + l.1 + 64
                });
                if !covered {
                    let (before, free) =
                        (FAULTS.load(Ordering::Relaxed), ffi::xPortGetFreeHeapSize());
                    // SAFETY: refused (the point).
                    unsafe { ffi::vPortFree(p as *mut c_void) };
                    assert_eq!(
                        FAULTS.load(Ordering::Relaxed),
                        before + 1,
                        "double free not refused"
                    );
                    assert_eq!(ffi::xPortGetFreeHeapSize(), free);
                }
            }
            _ => {}
        }
        check();
    }
    for (p, _, _) in live {
        // SAFETY: live blocks, freed once.
        unsafe { ffi::vPortFree(p.cast()) };
    }
    check();
});
