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
//! The exit status (semihosting) is 0 when everything ran; a panic prints its message and exits 1.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::fmt::Write as _;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use rtos_heap::{
    BlockKind, CortexM, FreeIndex, Heap1, Heap2, Heap4, Heap5, HeapRegion, LockedHeap, Pool,
    RawHeap, Target, TargetLayout,
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

/// What the vector driver needs from a scheme beyond [`RawHeap`] (the host test's, on target).
trait Subject: RawHeap + Sized {
    const SCHEME: u8;
    const FULL_STATS: bool;
    const HAS_CALLOC: bool;
    const HAS_MIN_RESET: bool;
    fn make(array: *mut u8) -> Self;
    fn walk(&self, array: usize, out: &mut String);
    fn initialise_blocks(&mut self) {}
}

fn walk_blocks(blocks: impl Iterator<Item = rtos_heap::BlockInfo>, array: usize, s: &mut String) {
    s.push('w');
    for b in blocks {
        let off = b.address - array;
        let _ = match b.kind {
            BlockKind::Allocated => write!(s, " {off}:{}:A", b.size),
            BlockKind::Free => write!(s, " {off}:{}:F", b.size),
            BlockKind::EndMarker => write!(s, " {off}:M"),
            BlockKind::Corrupt => write!(s, " {off}:{}:CORRUPT", b.size),
        };
    }
}

impl<T: TargetLayout> Subject for Heap1<T> {
    const SCHEME: u8 = 1;
    const FULL_STATS: bool = false;
    const HAS_CALLOC: bool = false;
    const HAS_MIN_RESET: bool = false;
    fn make(array: *mut u8) -> Self {
        let mut h = Heap1::new();
        // SAFETY: the vector array, used by this heap alone for the run.
        unsafe {
            h.init_from_raw(NonNull::new(array).unwrap(), 65536)
                .unwrap()
        };
        h
    }
    fn walk(&self, _array: usize, s: &mut String) {
        let _ = write!(s, "w used={}", self.used_bytes());
    }
    fn initialise_blocks(&mut self) {
        // SAFETY: the driver forgets every id at `i`/`R` (heap_1: `i` is a reset).
        unsafe { self.reset() };
    }
}

impl<T: TargetLayout, I: FreeIndex> Subject for Heap2<T, I> {
    const SCHEME: u8 = 2;
    const FULL_STATS: bool = false;
    const HAS_CALLOC: bool = true;
    const HAS_MIN_RESET: bool = false;
    fn make(array: *mut u8) -> Self {
        let mut h = Heap2::<T, I>::new();
        // SAFETY: as for heap_1.
        unsafe {
            h.init_from_raw(NonNull::new(array).unwrap(), 65536)
                .unwrap()
        };
        h
    }
    fn walk(&self, array: usize, s: &mut String) {
        walk_blocks(self.blocks(), array, s)
    }
}

impl<T: TargetLayout, I: FreeIndex> Subject for Heap4<T, I> {
    const SCHEME: u8 = 4;
    const FULL_STATS: bool = true;
    const HAS_CALLOC: bool = true;
    const HAS_MIN_RESET: bool = true;
    fn make(array: *mut u8) -> Self {
        let mut h = Heap4::<T, I>::new();
        // SAFETY: as for heap_1.
        unsafe {
            h.init_from_raw(NonNull::new(array).unwrap(), 65536)
                .unwrap()
        };
        h
    }
    fn walk(&self, array: usize, s: &mut String) {
        walk_blocks(self.blocks(), array, s)
    }
}

/// The heap_5 regions of the vectors, `offset:size` in the 65536-byte array.
const REGIONS: [(usize, usize); 4] = [(0, 1000), (1003, 2000), (4096, 20000), (30000, 35536)];

impl<T: TargetLayout, I: FreeIndex> Subject for Heap5<T, 4, I> {
    const SCHEME: u8 = 5;
    const FULL_STATS: bool = true;
    const HAS_CALLOC: bool = true;
    const HAS_MIN_RESET: bool = true;
    fn make(array: *mut u8) -> Self {
        let mut h = Heap5::<T, 4, I>::new();
        let regions = REGIONS.map(|(off, size)| HeapRegion {
            start: array.wrapping_add(off),
            size,
        });
        // SAFETY: disjoint parts of the vector array, used by this heap alone for the run.
        unsafe { h.define_regions_raw(&regions).unwrap() };
        h
    }
    fn walk(&self, array: usize, s: &mut String) {
        walk_blocks(self.blocks(), array, s)
    }
}

fn parse_num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap_or(u64::MAX),
        None => s.parse().unwrap_or(u64::MAX),
    }
}

/// Replays one trace on a fresh heap of type `H` over the vector array (`misalign` bytes past a
/// 64-byte boundary) and prints the lines the C harness prints, after a header line.
fn run_vector<H: Subject>(name: &str, config: &str, trace: &str, misalign: usize, out: &mut Out) {
    let array = VECTOR_MEM.ptr().wrapping_add(misalign);
    let base = array as usize;
    let mut heap = H::make(array);
    let mut ids: BTreeMap<&str, Option<NonNull<u8>>> = BTreeMap::new();
    let mut hooks = 0usize;
    let mut line_out = String::with_capacity(256);
    let _ = write!(line_out, "== {config}/{name}.heap{}_32", H::SCHEME);
    out.line(&line_out);
    let off = |p: Option<NonNull<u8>>| p.map_or(-1, |p| (p.as_ptr() as usize - base) as i64);
    for line in trace.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let op = f.next().unwrap_or("");
        let a1 = f.next().unwrap_or("");
        let a2 = f.next().unwrap_or("");
        let a3 = f.next().unwrap_or("");
        line_out.clear();
        match op {
            "a" => {
                let n = parse_num(a2);
                if n > u64::from(u32::MAX) {
                    continue; // the C harness prints an `e` line: beyond the target's size_t
                }
                let r = heap.malloc(n as usize);
                hooks += usize::from(r.is_err());
                let p = r.ok();
                let _ = write!(line_out, "a {a1} {}", off(p));
                ids.insert(a1, p);
            }
            "c" => {
                let (n, s) = (parse_num(a2), parse_num(a3));
                if !H::HAS_CALLOC || n > u64::from(u32::MAX) || s > u64::from(u32::MAX) {
                    continue;
                }
                let r = heap.calloc(n as usize, s as usize);
                if let Err(e) = r {
                    hooks += usize::from(e.calls_malloc_failed_hook());
                }
                if let Ok(p) = r {
                    // SAFETY: a fresh block of n * s bytes.
                    let bytes =
                        unsafe { core::slice::from_raw_parts(p.as_ptr(), (n * s) as usize) };
                    assert!(bytes.iter().all(|&b| b == 0), "calloc did not zero");
                }
                let p = r.ok();
                let _ = write!(line_out, "c {a1} {}", off(p));
                ids.insert(a1, p);
            }
            "f" => {
                if let Some(Some(p)) = ids.remove(a1) {
                    // SAFETY: the pointer came from this heap; a repeated free is refused.
                    let _ = unsafe { heap.free(p, None) };
                }
            }
            "s" => {
                let st = heap.stats();
                let _ = write!(line_out, "s xPortGetFreeHeapSize={}", heap.free_bytes());
                if H::FULL_STATS {
                    let _ = write!(
                        line_out,
                        " xPortGetMinimumEverFreeHeapSize={} xAvailableHeapSpaceInBytes={} \
                         xSizeOfLargestFreeBlockInBytes={} xSizeOfSmallestFreeBlockInBytes={} \
                         xNumberOfFreeBlocks={} xMinimumEverFreeBytesRemaining={} \
                         xNumberOfSuccessfulAllocations={} xNumberOfSuccessfulFrees={}",
                        heap.min_ever_free_bytes(),
                        st.available_bytes,
                        st.largest_free_block,
                        st.smallest_free_block,
                        st.free_blocks,
                        st.min_ever_free,
                        st.successful_allocations,
                        st.successful_frees
                    );
                }
                let _ = write!(line_out, " mallocFailedHook={hooks}");
            }
            "w" => heap.walk(base, &mut line_out),
            "r" if H::HAS_MIN_RESET => heap.reset_min_ever_free(),
            "i" => heap.initialise_blocks(),
            "R" => {
                // SAFETY: every id is forgotten just below; no old pointer is used again.
                unsafe { heap.reset() };
                ids.clear();
            }
            _ => {}
        }
        if !line_out.is_empty() {
            out.line(&line_out);
        }
        if let Err(e) = heap.check() {
            panic!(
                "{config}/{name}.heap{}: check failed after `{line}`: {e}",
                H::SCHEME
            );
        }
    }
}

/// Every trace through heap_1/2/4/5 on the 32-bit layouts of every configuration.
fn conformance(out: &mut Out) -> usize {
    fn config<const A: usize>(name: &str, misalign: usize, out: &mut Out) -> usize
    where
        Target<4, A>: TargetLayout,
    {
        for (trace_name, trace) in TRACES {
            run_vector::<Heap1<Target<4, A>>>(trace_name, name, trace, misalign, out);
            run_vector::<Heap2<Target<4, A>>>(trace_name, name, trace, misalign, out);
            run_vector::<Heap4<Target<4, A>>>(trace_name, name, trace, misalign, out);
            run_vector::<Heap5<Target<4, A>, 4>>(trace_name, name, trace, misalign, out);
        }
        4 * TRACES.len()
    }
    config::<8>("a8_m0", 0, out)
        + config::<8>("a8_m3", 3, out)
        + config::<4>("a4_m0", 0, out)
        + config::<16>("a16_m0", 0, out)
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
