//! rtos-heap on a Cortex-M3 (QEMU `mps2-an385`), natively on the 32-bit target:
//!
//! 1. `LockedHeap<Heap4<CortexM>>` is the `#[global_allocator]` (a critical-section lock:
//!    `cortex-m`'s single-core implementation); `Vec`, `Box` and `String` use it, and so does
//!    everything below.
//! 2. `Heap5` over two separate RAM regions, and a fixed-block `Pool`.
//! 3. The conformance vectors of the C original: every trace of `../shared/vectors/traces`
//!    (embedded at build time) through heap_1, heap_2, heap_4 and heap_5 on the 32-bit layouts of
//!    every configuration (alignment 8 with the array aligned and 3 bytes off, alignment 4, 16),
//!    with the heap at real target addresses. Each run prints its output lines (the C harness's
//!    `a`/`c`/`s`/`w` lines) after a `== CONFIG/NAME.heapS_32` header over semihosting;
//!    `compare.py` checks every line against the C build's `.out` file on the host.
//!
//! The exit status (semihosting) is 0 when everything ran; a panic or a hard fault prints what
//! happened and exits 1.
//!
//! Built for `thumbv6m-none-eabi` (Armv6-M: no compare-and-swap atomics, so the core runs on
//! its critical-section paths only) the same firmware runs on the same board: Armv6-M code is a
//! subset of Armv7-M. Unaligned accesses, which a Cortex-M3 performs and a Cortex-M0 faults on,
//! are made to fault here too (`CCR.UNALIGN_TRP`), so that build runs as strictly as on an M0.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::fmt::Write as _;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hio};
use rtos_heap::{
    AddressTree, CortexM, Heap1, Heap2, Heap4, Heap5, HeapRegion, Hybrid, LockedHeap, Pool,
    RawHeap, SizeTree, Target, TargetLayout,
};

include!(concat!(env!("OUT_DIR"), "/traces.rs"));

/// The firmware's heap: FreeRTOS heap_4 on the Cortex-M layout (8-byte header, alignment 8).
#[global_allocator]
static HEAP: LockedHeap<Heap4<CortexM>> = LockedHeap::new(Heap4::new());

/// Memory that one user owns for the whole run (given to a heap or a pool once, or used by the
/// single-threaded vector driver only).
#[repr(C, align(64))]
struct Arena<const N: usize>(core::cell::UnsafeCell<[MaybeUninit<u8>; N]>);

// SAFETY: each arena has one user, from one thread of execution (this firmware has no interrupts
// that touch them).
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Arena<N> {
    const fn new() -> Self {
        Arena(core::cell::UnsafeCell::new([MaybeUninit::uninit(); N]))
    }
    fn ptr(&self) -> *mut u8 {
        self.0.get().cast()
    }
}

static GLOBAL_MEM: Arena<{ 1 << 20 }> = Arena::new();
static SRAM1: Arena<8192> = Arena::new();
static SRAM2: Arena<16384> = Arena::new();
static POOL_MEM: Arena<4096> = Arena::new();
/// The vectors' heap array: 65,536 bytes, plus room to start it 3 bytes off.
static VECTOR_MEM: Arena<{ 65536 + 64 }> = Arena::new();

/// Semihosting output, written in chunks (one host call per 4 KiB, not per line).
struct Out {
    buf: String,
}

impl Out {
    fn line(&mut self, s: &str) {
        self.buf.push_str(s);
        self.buf.push('\n');
        if self.buf.len() >= 4096 {
            self.flush();
        }
    }
    fn flush(&mut self) {
        if let Ok(mut h) = hio::hstdout() {
            let _ = h.write_all(self.buf.as_bytes());
        }
        self.buf.clear();
    }
}

#[entry]
fn main() -> ! {
    #[cfg(armv6m)]
    trap_unaligned();
    // SAFETY: GLOBAL_MEM is given to the global heap once, here, before any allocation.
    unsafe {
        HEAP.lock()
            .init_from_raw(NonNull::new(GLOBAL_MEM.ptr()).unwrap(), 1 << 20)
            .unwrap()
    };
    let mut out = Out {
        buf: String::with_capacity(8192),
    };
    demo(&mut out);
    let vectors = conformance(&mut out);
    let _ = writeln!(out.buf, "== done: {vectors} vector runs");
    out.flush();
    debug::exit(debug::EXIT_SUCCESS);
    // Not reached under QEMU (the exit ends it); on a board without a debugger, sleep.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The global allocator, heap_5 over two regions and a pool, checked against their statistics.
fn demo(out: &mut Out) {
    // The global allocator through `alloc`.
    let before = HEAP.stats();
    let mut v: Vec<u32> = Vec::new();
    for i in 0..1000 {
        v.push(i);
    }
    let b = alloc::boxed::Box::new([7u8; 100]);
    let mut s = String::new();
    for i in 0..50 {
        let _ = write!(s, "{i},");
    }
    assert_eq!(v.iter().sum::<u32>(), 499_500);
    assert!(b.iter().all(|&x| x == 7));
    let during = HEAP.stats();
    assert!(during.available_bytes < before.available_bytes);
    drop((v, b, s));
    let after = HEAP.stats();
    assert_eq!(after.available_bytes, before.available_bytes);
    HEAP.lock().check().unwrap();

    // heap_5 over two RAM regions that are not adjacent.
    let mut h5 = Heap5::<CortexM, 2>::new();
    let regions = [
        HeapRegion {
            start: SRAM1.ptr(),
            size: 8192,
        },
        HeapRegion {
            start: SRAM2.ptr(),
            size: 16384,
        },
    ];
    let (lo, hi) = if SRAM1.ptr() < SRAM2.ptr() {
        (regions[0], regions[1])
    } else {
        (regions[1], regions[0])
    };
    // SAFETY: the two arenas belong to this heap from now on.
    unsafe { h5.define_regions_raw(&[lo, hi]).unwrap() };
    let big = h5.malloc(10_000).unwrap(); // only the 16 KiB region holds it
    let small = h5.malloc(100).unwrap();
    let in_region = |p: NonNull<u8>, r: &HeapRegion| {
        let a = p.as_ptr() as usize;
        a >= r.start as usize && a < r.start as usize + r.size
    };
    assert!(in_region(big, &regions[1]));
    assert!(in_region(small, &lo));
    // SAFETY: live blocks of `h5`, freed once.
    unsafe {
        h5.free(big, None).unwrap();
        h5.free(small, None).unwrap();
    }
    h5.check().unwrap();

    // A fixed-block pool of 32-byte blocks.
    let block = Layout::from_size_align(32, 8).unwrap();
    let mut pool = Pool::new();
    // SAFETY: POOL_MEM belongs to the pool from now on.
    unsafe { pool.init_from_raw(NonNull::new(POOL_MEM.ptr()).unwrap(), 4096, block) }.unwrap();
    let cap = pool.capacity();
    let blocks: Vec<_> = (0..cap).map(|_| pool.alloc_block().unwrap()).collect();
    assert!(pool.alloc_block().is_err());
    for p in &blocks {
        // SAFETY: live blocks of this pool, freed once.
        unsafe { pool.free_block(*p).unwrap() };
    }
    // SAFETY: a double free is refused, not undefined.
    assert!(unsafe { pool.free_block(blocks[0]) }.is_err());
    let _ = writeln!(
        out.buf,
        "== demo: global heap {} bytes free, heap_5 over 2 regions, pool of {cap} blocks: ok",
        after.available_bytes
    );
}

#[path = "../../../crates/rtos-heap/tests/common/vector_driver.rs"]
mod vector_driver;

use vector_driver::{Subject, run_vector as replay};

/// Replays one trace through `H` over the vector array (`misalign` bytes past a 64-byte boundary)
/// and prints its lines after a `== CONFIG/NAME.heapS_32` header (`== CONFIG/NAME.heapS_32
/// [INDEX]` for a scheme with another free-block index than FreeRTOS's list).
fn run_vector<H: Subject>(
    name: &str,
    config: &str,
    index: Option<&str>,
    trace: &str,
    misalign: usize,
    out: &mut Out,
) {
    let mut header = String::new();
    let _ = write!(header, "== {config}/{name}.heap{}_32", H::SCHEME);
    if let Some(index) = index {
        let _ = write!(header, " [{index}]");
    }
    out.line(&header);
    replay::<H>(trace, 4, VECTOR_MEM.ptr().wrapping_add(misalign), |l| {
        out.line(l)
    });
}

/// Every trace through heap_1/2/4/5 on the 32-bit layouts of every configuration; where the
/// alignment allows the trees (8 and 16), also heap_2 with its `SizeTree` (as the host's
/// conformance test) and heap_4/heap_5 with the `AddressTree` and the `Hybrid` index.
fn conformance(out: &mut Out) -> usize {
    fn config<const A: usize>(c: &str, m: usize, o: &mut Out) -> usize
    where
        Target<4, A>: TargetLayout,
    {
        for (t, tr) in TRACES {
            run_vector::<Heap1<Target<4, A>>>(t, c, None, tr, m, o);
            run_vector::<Heap2<Target<4, A>>>(t, c, None, tr, m, o);
            run_vector::<Heap4<Target<4, A>>>(t, c, None, tr, m, o);
            run_vector::<Heap5<Target<4, A>, 4>>(t, c, None, tr, m, o);
        }
        4 * TRACES.len()
    }
    fn trees<const A: usize>(c: &str, m: usize, o: &mut Out) -> usize
    where
        Target<4, A>: TargetLayout,
    {
        for (t, tr) in TRACES {
            run_vector::<Heap2<Target<4, A>, SizeTree<true>>>(t, c, Some("SizeTree"), tr, m, o);
            run_vector::<Heap4<Target<4, A>, AddressTree<true>>>(
                t,
                c,
                Some("AddressTree"),
                tr,
                m,
                o,
            );
            run_vector::<Heap4<Target<4, A>, Hybrid<16>>>(t, c, Some("Hybrid<16>"), tr, m, o);
            run_vector::<Heap5<Target<4, A>, 4, AddressTree<true>>>(
                t,
                c,
                Some("AddressTree"),
                tr,
                m,
                o,
            );
            run_vector::<Heap5<Target<4, A>, 4, Hybrid<16>>>(t, c, Some("Hybrid<16>"), tr, m, o);
        }
        5 * TRACES.len()
    }
    config::<8>("a8_m0", 0, out)
        + trees::<8>("a8_m0", 0, out)
        + config::<8>("a8_m3", 3, out)
        + trees::<8>("a8_m3", 3, out)
        + config::<4>("a4_m0", 0, out)
        + config::<16>("a16_m0", 0, out)
        + trees::<16>("a16_m0", 0, out)
}

/// Armv6-M build: unaligned loads and stores fault, as on a Cortex-M0 (the Cortex-M3 of the
/// board would otherwise perform them).
#[cfg(armv6m)]
fn trap_unaligned() {
    /// `CCR.UNALIGN_TRP`: every unaligned word or halfword access is a usage fault.
    const UNALIGN_TRP: u32 = 1 << 3;
    let peripherals = cortex_m::Peripherals::take().unwrap();
    // SAFETY: setting UNALIGN_TRP changes no memory and no other bit of CCR; the code compiled for
    // Armv6-M never relies on unaligned accesses.
    unsafe { peripherals.SCB.ccr.modify(|r| r | UNALIGN_TRP) };
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
}

/// A fault (an unaligned access in the Armv6-M build, a bad address …) fails the run at once
/// instead of hanging until the script's timeout.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if let Ok(mut h) = hio::hstdout() {
        let _ = writeln!(h, "\nPANIC: hard fault at pc {:#010x}", frame.pc());
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Ok(mut h) = hio::hstdout() {
        let _ = writeln!(h, "\nPANIC: {info}");
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
