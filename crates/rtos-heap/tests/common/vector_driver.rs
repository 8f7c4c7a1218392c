//! The driver of the conformance vectors (`../shared/vectors`): replays a trace on a scheme and
//! produces the lines the C harness prints (`a`/`c`/`s`/`w`, without its `!`/`e` notes). Shared
//! by `tests/conformance.rs` (on the host, every layout) and by the Cortex-M3 firmware of
//! `examples/qemu-cortex-m` (natively on the 32-bit target), so that both check the same thing.
//! `no_std` with `alloc`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt::Write as _;
use core::ptr::NonNull;

use rtos_heap::{
    BlockKind, FreeIndex, Heap1, Heap2, Heap4, Heap5, HeapRegion, RawHeap, TargetLayout,
};

/// What the vector driver needs from a scheme beyond [`RawHeap`].
pub trait Subject: RawHeap + Sized {
    /// FreeRTOS heap_N.
    const SCHEME: u8;
    /// Prints heap_4/5's full statistics line (else only the free size).
    const FULL_STATS: bool;
    /// Has `pvPortCalloc`.
    const HAS_CALLOC: bool;
    /// Has `xPortResetHeapMinimumEverFreeHeapSize`.
    const HAS_MIN_RESET: bool;
    /// A heap over the vector array (65,536 bytes at `array`).
    fn make(array: *mut u8) -> Self;
    /// The `w` line: the physical blocks.
    fn walk(&self, array: usize, out: &mut String);
    /// `vPortInitialiseBlocks`.
    fn initialise_blocks(&mut self) {}
}

/// The `w` line of a scheme with a block walk.
pub fn walk_blocks(
    blocks: impl Iterator<Item = rtos_heap::BlockInfo>,
    array: usize,
    s: &mut String,
) {
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
pub const REGIONS: [(usize, usize); 4] = [(0, 1000), (1003, 2000), (4096, 20000), (30000, 35536)];

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

/// A number of the trace language (decimal or 0x-hex); too large reads as `u64::MAX`.
pub fn parse_num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap_or(u64::MAX),
        None => s.parse().unwrap_or(u64::MAX),
    }
}

/// Replays `trace` on a fresh heap of type `H` over `array` (65,536 bytes) on a target whose
/// `size_t` has `word` bytes, handing each output line to `line`; `check()` runs after every
/// operation and a failure panics, naming the trace line.
pub fn run_vector<H: Subject>(
    trace: &str,
    word: usize,
    array: *mut u8,
    mut line: impl FnMut(&str),
) {
    let size_max: u64 = if word == 4 {
        u64::from(u32::MAX)
    } else {
        u64::MAX
    };
    let base = array as usize;
    let mut heap = H::make(array);
    let mut ids: BTreeMap<&str, Option<NonNull<u8>>> = BTreeMap::new();
    let mut hooks = 0usize;
    let mut out = String::with_capacity(256);
    let off = |p: Option<NonNull<u8>>| p.map_or(-1, |p| (p.as_ptr() as usize - base) as i64);
    for text in trace.lines() {
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut f = text.split_whitespace();
        let op = f.next().unwrap_or("");
        let a1 = f.next().unwrap_or("");
        let a2 = f.next().unwrap_or("");
        let a3 = f.next().unwrap_or("");
        out.clear();
        match op {
            "a" => {
                let n = parse_num(a2);
                if n > size_max {
                    continue; // the C harness prints an `e` line: beyond the target's size_t
                }
                let r = heap.malloc(n as usize);
                hooks += usize::from(r.is_err());
                let p = r.ok();
                let _ = write!(out, "a {a1} {}", off(p));
                ids.insert(a1, p);
            }
            "c" => {
                let (n, s) = (parse_num(a2), parse_num(a3));
                if !H::HAS_CALLOC || n > size_max || s > size_max {
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
                let _ = write!(out, "c {a1} {}", off(p));
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
                let _ = write!(out, "s xPortGetFreeHeapSize={}", heap.free_bytes());
                if H::FULL_STATS {
                    let _ = write!(
                        out,
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
                let _ = write!(out, " mallocFailedHook={hooks}");
            }
            "w" => heap.walk(base, &mut out),
            "r" if H::HAS_MIN_RESET => heap.reset_min_ever_free(),
            "i" => heap.initialise_blocks(),
            "R" => {
                // SAFETY: every id is forgotten just below; no old pointer is used again.
                unsafe { heap.reset() };
                ids.clear();
            }
            _ => {}
        }
        if !out.is_empty() {
            line(&out);
        }
        if let Err(e) = heap.check() {
            panic!("heap_{}: check failed after `{text}`: {e}", H::SCHEME);
        }
    }
}
