//! The heap_2 / heap_4 / heap_5 engine: allocate, free, realloc, statistics and the integrity check,
//! written once over a free-block index ([`index`]) and a set of regions.
//!
//! One region is heap_4 (or heap_2 with the size-ordered index); several are heap_5. The rules are
//! those of `freertos-heap-semantics.md`: `wanted = round_up(n + header, ALIGN)`, first or best fit
//! by the index, split only when the remainder is *strictly* larger than two headers, the low part
//! is handed out, the allocated bit is the size word's MSB and the link holds NIL.
//!
//! Invariants (checked by [`Engine::check`]):
//! 1. the blocks of each region tile `[start, end)` exactly; with end markers a zero-size marker
//!    header sits at `end`;
//! 2. every block is either allocated (MSB set, link NIL) or free and a node of the index, and every
//!    index node is a free block or an end marker;
//! 3. with a merging index no two free blocks are neighbours;
//! 4. the free-bytes counter is the sum of the free blocks, and the minimum ever is not above it.

pub(crate) mod hybrid;
pub(crate) mod index;
pub(crate) mod size_tree;
pub(crate) mod tree;

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::error::{AllocError, CheckError, CheckErrorKind, FreeError, RegionError};
use crate::raw::{Arena, NIL, PendingArray};
use crate::stats::HeapStats;
use crate::target::{TargetLayout, align_down, align_up};
use crate::validate::{CorruptionKind, Operation};
use crate::{BlockInfo, BlockKind, HeapRegion, ReallocError};

use index::{Found, FreeIndex, Met};

/// One region of a heap, as offsets from the heap base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Region {
    /// First block.
    pub start: usize,
    /// End of the last block: the end marker's header (heap_4/5) or the end of the usable memory.
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No memory yet.
    Undefined,
    /// Memory given; blocks are laid out at the first allocation (FreeRTOS's lazy init).
    Pending,
    /// Blocks laid out.
    Ready,
}

/// What a walk of the index reports for `vPortGetHeapStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub count: usize,
    pub largest: usize,
    /// Smallest free block of non-zero size (`SIZE_MAX` of the target when there is none; the
    /// engine clamps `usize::MAX` to it).
    pub smallest: usize,
}

impl Summary {
    /// Nothing counted yet.
    pub const EMPTY: Summary = Summary {
        count: 0,
        largest: 0,
        smallest: usize::MAX,
    };

    /// Counts one free block, or, with size 0, one listed end marker (counted, as FreeRTOS's
    /// walk does, but not taken as the smallest block).
    #[inline(always)]
    pub fn add(&mut self, size: usize) {
        self.count += 1;
        self.largest = self.largest.max(size);
        if size != 0 {
            self.smallest = self.smallest.min(size);
        }
    }
}

/// The request-size rule of heap_2/4/5: `round_up(n + header, ALIGN)` in the target's `size_t`.
#[inline(always)]
pub(crate) fn wanted_size<T: TargetLayout>(n: usize) -> Result<usize, AllocError> {
    if n == 0 {
        return Err(AllocError::ZeroSize);
    }
    // round_up(n + HEADER, ALIGN) <= SIZE_MAX exactly when n + HEADER + ALIGN - 1 <= SIZE_MAX
    // (SIZE_MAX + 1 is a multiple of ALIGN): one addition checks both of FreeRTOS's overflow tests.
    match n.checked_add(T::HEADER + T::ALIGN - 1) {
        Some(w) if w <= T::SIZE_MAX => Ok(w & !(T::ALIGN - 1)),
        _ => Err(AllocError::SizeOverflow),
    }
}

/// The engine. `N` is the most regions it holds (1 for heap_2 and heap_4).
pub(crate) struct Engine<T, I, const N: usize> {
    arena: Arena<T>,
    regions: [Region; N],
    nregions: usize,
    index: I,
    state: State,
    /// heap_2/heap_4: the caller's array, laid out at the first allocation.
    pending: PendingArray,
    free: usize,
    min_ever: usize,
    allocs: usize,
    frees: usize,
    rejected: usize,
    failed: usize,
    /// heap_2/heap_4 after `reset()`: the old free index is still in memory, untouched until the
    /// next allocation lays the heap out again, and FreeRTOS's stats walk reports it (semantics
    /// §4).
    stale: bool,
    /// `configHEAP_CLEAR_MEMORY_ON_FREE`: zero a block's payload when it is freed.
    clear_on_free: bool,
}

impl<T: TargetLayout, I: FreeIndex, const N: usize> Engine<T, I, N> {
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = T::VALID;
        Engine {
            arena: Arena::empty(),
            regions: [Region { start: 0, end: 0 }; N],
            nregions: 0,
            index: I::EMPTY,
            state: State::Undefined,
            pending: PendingArray::NONE,
            free: 0,
            min_ever: 0,
            allocs: 0,
            frees: 0,
            rejected: 0,
            failed: 0,
            stale: false,
            clear_on_free: false,
        }
    }

    /// A heap_2/heap_4 engine given its array at compile time: [`set_pending`](Self::set_pending)
    /// in a `const` (a heap in a `static`, with no code to run before the first allocation). The
    /// array is checked when it is laid out, at the first allocation: one that cannot hold a block
    /// makes every allocation fail with [`AllocError::Uninitialized`].
    ///
    /// # Safety
    /// `start .. start + len` is memory the heap may own for as long as it is in use.
    pub const unsafe fn new_pending(start: *mut u8, len: usize) -> Self {
        let mut e = Self::new();
        e.pending = PendingArray { start, len };
        e.state = State::Pending;
        e.clear_counters();
        e
    }

    /// `configHEAP_CLEAR_MEMORY_ON_FREE`.
    pub const fn set_clear_on_free(&mut self, on: bool) {
        self.clear_on_free = on;
    }

    /// `configENABLE_HEAP_PROTECTOR`: every stored link is XORed with `canary`. Only before the
    /// blocks are laid out (FreeRTOS fetches the canary at initialisation).
    #[cfg(feature = "heap-protector")]
    pub fn set_canary(&mut self, canary: usize) -> Result<(), RegionError> {
        if self.state == State::Ready {
            return Err(RegionError::AlreadyDefined);
        }
        self.arena.set_canary(canary);
        Ok(())
    }

    /// Whether memory was given (lazily laid out or not).
    pub fn is_defined(&self) -> bool {
        self.state != State::Undefined
    }

    /// Regions as laid out now (empty before the first allocation of a lazy heap).
    pub(crate) fn regions(&self) -> &[Region] {
        // `nregions <= N` always; `get` keeps a panic path out of the code that reads it.
        self.regions.get(..self.nregions).unwrap_or(&[])
    }

    /// Computes one region's aligned start and end from a caller's `(address, length)`.
    ///
    /// With end markers (heap_4/5): start rounded up to ALIGN, marker at
    /// `round_down(start + len - skip - header, ALIGN)`. Without (heap_2): start rounded up,
    /// usable length `len - ALIGN` (ALIGN bytes always given up, as heap_1/heap_2 do).
    /// Returns absolute (start, end).
    fn layout_region(addr: usize, len: usize, index: usize) -> Result<(usize, usize), RegionError> {
        let top = addr
            .checked_add(len)
            .ok_or(RegionError::TooLarge { index })?;
        if addr > usize::MAX - T::ALIGN {
            return Err(RegionError::TooLarge { index });
        }
        let start = align_up(addr, T::ALIGN);
        let end = if I::END_MARKERS {
            if top < start.saturating_add(T::HEADER + T::MIN_BLOCK) {
                return Err(RegionError::TooSmall { index });
            }
            align_down(top - T::HEADER, T::ALIGN)
        } else {
            if len < T::ALIGN + T::MIN_BLOCK {
                return Err(RegionError::TooSmall { index });
            }
            start + (len - T::ALIGN)
        };
        if end - start < T::MIN_BLOCK {
            return Err(RegionError::TooSmall { index });
        }
        Ok((start, end))
    }

    /// Gives the heap one array, laid out at the first allocation (heap_2/heap_4).
    ///
    /// # Safety
    /// `addr .. addr + len` is memory the heap may own for as long as it is in use.
    pub unsafe fn set_pending(&mut self, addr: NonNull<u8>, len: usize) -> Result<(), RegionError> {
        if self.state != State::Undefined {
            return Err(RegionError::AlreadyDefined);
        }
        let pending = PendingArray {
            start: addr.as_ptr(),
            len,
        };
        Self::pending_layout(&pending)?;
        self.pending = pending;
        self.state = State::Pending;
        self.clear_counters();
        Ok(())
    }

    /// The one region of a heap_2/heap_4 array: (absolute start, absolute end), the array's
    /// provenance exposed.
    #[inline(always)]
    fn pending_layout(p: &PendingArray) -> Result<(usize, usize), RegionError> {
        if p.len > I::MAX_SPAN {
            return Err(RegionError::TooLarge { index: 0 });
        }
        let (start, end) = Self::layout_region(p.expose(), p.len, 0)?;
        let reach = end - start + if I::END_MARKERS { T::HEADER } else { 0 };
        if reach > T::SIZE_MAX {
            return Err(RegionError::TooLarge { index: 0 });
        }
        Ok((start, end))
    }

    /// Defines several regions at once and lays them out now (heap_5).
    ///
    /// # Safety
    /// Every region is memory the heap may own for as long as it is in use.
    pub unsafe fn define(&mut self, regions: &[HeapRegion]) -> Result<(), RegionError> {
        if self.state != State::Undefined {
            return Err(RegionError::AlreadyDefined);
        }
        if regions.is_empty() {
            return Err(RegionError::NoRegions);
        }
        if regions.len() > N {
            return Err(RegionError::TooManyRegions);
        }
        let mut laid = [Region::default(); N];
        let mut base = 0;
        let mut prev_top = 0;
        for (i, r) in regions.iter().enumerate() {
            let (a, len) = (r.start as usize, r.size);
            if a == 0 {
                return Err(RegionError::Null { index: i });
            }
            if i > 0 && a < prev_top {
                return Err(RegionError::NotAscending { index: i });
            }
            let (start, end) = Self::layout_region(a, len, i)?;
            if i == 0 {
                base = start;
            }
            let (s, e) = (start - base, end - base);
            if e + T::HEADER > T::SIZE_MAX {
                return Err(RegionError::TooLarge { index: i });
            }
            if let Some(slot) = laid.get_mut(i) {
                *slot = Region { start: s, end: e };
            }
            prev_top = a + len;
        }
        for r in regions {
            if let Some(p) = NonNull::new(r.start) {
                Arena::<T>::expose(p);
            }
        }
        self.arena.set_base(base);
        self.regions = laid;
        self.nregions = regions.len();
        self.clear_counters();
        self.lay_out();
        Ok(())
    }

    const fn clear_counters(&mut self) {
        self.allocs = 0;
        self.frees = 0;
        self.rejected = 0;
        self.failed = 0;
        self.free = 0;
        self.min_ever = 0;
        if matches!(self.state, State::Pending) && !I::END_MARKERS {
            // heap_2 reports its whole size as free before the first allocation (`new_pending`'s
            // array is checked only at the lay-out, hence the saturation).
            self.free = self.pending.len.saturating_sub(T::ALIGN);
            self.min_ever = self.free;
        }
    }

    /// Writes every region's single free block (and end marker) and builds the index.
    fn lay_out(&mut self) {
        // A heap of one region is laid out with one (constant-length slice: no loop).
        debug_assert!(N != 1 || self.nregions == 1);
        let regions = if N == 1 {
            &self.regions[..]
        } else {
            self.regions.get(..self.nregions).unwrap_or(&[])
        };
        let mut total = 0;
        for r in regions {
            // SAFETY: `r.start` and `r.end` were computed by `layout_region` inside the caller's memory.
            unsafe {
                self.arena.set_header(r.start, NIL, r.end - r.start, false);
                if I::END_MARKERS {
                    self.arena.set_header(r.end, NIL, 0, false);
                }
            }
            total += r.end - r.start;
        }
        self.arena.set_bounds(regions, I::END_MARKERS);
        #[cfg(feature = "poison")]
        for r in regions {
            // SAFETY: the region's single free block's payload, inside the caller's memory.
            unsafe {
                self.arena
                    .poison(r.start + T::HEADER, r.end - r.start - T::HEADER)
            };
        }
        let mut index = I::EMPTY;
        index.build(&self.arena, regions);
        self.index = index;
        self.free = total;
        self.min_ever = total;
        self.stale = false;
        self.state = State::Ready;
    }

    /// FreeRTOS's lazy initialisation at the first `pvPortMalloc`.
    #[inline]
    fn ensure_ready(&mut self) -> Result<(), AllocError> {
        match self.state {
            State::Ready => Ok(()),
            _ => self.first_use(),
        }
    }

    /// The first allocation: lays the heap out (heap_4's lazy `prvHeapInit`), or refuses when no
    /// memory was given. Out of line: it runs once, and keeps the hot path small.
    #[cold]
    #[inline(never)]
    fn first_use(&mut self) -> Result<(), AllocError> {
        // Called only when the heap is not laid out yet.
        debug_assert!(self.state != State::Ready);
        match self.state {
            State::Ready | State::Undefined => Err(AllocError::Uninitialized),
            State::Pending => {
                // Checked by `set_pending` already, but not by `new_pending`.
                let (start, end) =
                    Self::pending_layout(&self.pending).map_err(|_| AllocError::Uninitialized)?;
                self.arena.set_base(start);
                self.regions[0] = Region {
                    start: 0,
                    end: end - start,
                };
                self.nregions = 1;
                // Keeps the operation counters (FreeRTOS counts from the start, not the lay-out).
                self.lay_out();
                Ok(())
            }
        }
    }

    /// `pvPortMalloc` of `size` bytes aligned to `align` (a power of two): returns the payload.
    #[inline]
    pub fn allocate(&mut self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        if align <= T::ALIGN {
            return self.malloc(size);
        }
        if !self.full_check(Operation::Allocate) {
            self.failed += 1;
            return Err(AllocError::Corrupted);
        }
        let r = self.allocate_over_aligned(size, align);
        if r.is_err() {
            self.failed += 1;
        }
        r
    }

    /// `pvPortMalloc` of `size` bytes (aligned to `portBYTE_ALIGNMENT`): returns the payload.
    /// Always inlined: out of line, its `Result` goes through memory (measured: +10 instructions
    /// per allocation, and more code at the call).
    #[inline(always)]
    pub fn malloc(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        if !self.full_check(Operation::Allocate) {
            self.failed += 1;
            return Err(AllocError::Corrupted);
        }
        // Lays the heap out first (FreeRTOS's lazy init), even for a size that then fails; one
        // copy of the common path follows.
        if self.state != State::Ready
            && let Err(e) = self.first_use()
        {
            self.failed += 1;
            return Err(e);
        }
        let r = self.malloc_ready(size);
        if r.is_err() {
            self.failed += 1;
        }
        r
    }

    /// A `malloc` from a laid-out heap: the hot path.
    #[inline(always)]
    fn malloc_ready(&mut self, size: usize) -> Result<NonNull<u8>, AllocError> {
        let block = self.alloc_block(wanted_size::<T>(size)?)?;
        // SAFETY: the payload lies inside a region, whose address is not null.
        Ok(unsafe { NonNull::new_unchecked(self.arena.ptr(block + T::HEADER)) })
    }

    /// An allocation aligned above `portBYTE_ALIGNMENT` (rtos-heap's extension): out of line, so
    /// that code calling only `malloc` (the C library) does not carry it.
    #[inline(never)]
    fn allocate_over_aligned(
        &mut self,
        size: usize,
        align: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let wanted = wanted_size::<T>(size);
        self.ensure_ready()?;
        let payload = self.alloc_aligned(wanted?, align)?;
        // SAFETY: the payload lies inside a region, whose address is not null.
        Ok(unsafe { NonNull::new_unchecked(self.arena.ptr(payload)) })
    }

    /// Finds, splits and marks a block of `wanted` bytes; returns its offset.
    #[inline(always)]
    fn alloc_block(&mut self, wanted: usize) -> Result<usize, AllocError> {
        if wanted & T::SIZE_MSB != 0 {
            return Err(AllocError::SizeOverflow);
        }
        if wanted > self.free {
            return Err(AllocError::OutOfMemory);
        }
        let mut found = <I::Found as Found>::none();
        let ok = self.index.find(&self.arena, wanted, &mut found);
        if let Some(bad) = self.arena.take_fault() {
            // A link that does not check out: nothing was written.
            self.corrupt(bad, CorruptionKind::BadLink, Operation::Allocate);
            return Err(AllocError::Corrupted);
        }
        if !ok {
            return Err(AllocError::OutOfMemory);
        }
        let block = found.block();
        // SAFETY: `block` is a free block of the index.
        let size = unsafe { self.arena.size(block) };
        let (size, rest) = if size - wanted > T::MIN_BLOCK {
            (wanted, Some((block + wanted, size - wanted)))
        } else {
            (size, None)
        };
        #[cfg(feature = "poison")]
        if self.poison_damaged(block, size - T::HEADER) {
            self.corrupt(block, CorruptionKind::UseAfterFree, Operation::Allocate);
            return Err(AllocError::Corrupted);
        }
        self.index.take(&self.arena, &mut found, rest);
        // `find` validated every link `take` follows.
        debug_assert!(self.arena.take_fault().is_none());
        // SAFETY: `block` is the header of the block just taken out of the index.
        unsafe { self.arena.set_header(block, NIL, size, true) };
        let node_bytes = I::node_bytes::<T>();
        if node_bytes > 0 && self.clear_on_free {
            // The index's node sat in the payload while the block was free: clear it as the
            // payload was cleared when the block was freed.
            // SAFETY: the first payload bytes of the block just allocated (at most its payload).
            unsafe {
                self.arena
                    .ptr(block + T::HEADER)
                    .write_bytes(0, node_bytes.min(size - T::HEADER))
            };
        }
        self.free -= size;
        if self.free < self.min_ever {
            self.min_ever = self.free;
        }
        self.allocs += 1;
        Ok(block)
    }

    /// Alignment above `ALIGN` (rtos-heap's extension): take a block with room for the alignment,
    /// give the part in front of the aligned payload back as a free block, and split the tail.
    fn alloc_aligned(&mut self, wanted: usize, align: usize) -> Result<usize, AllocError> {
        let big = wanted
            .checked_add(align + T::MIN_BLOCK)
            .filter(|&b| b <= T::SIZE_MAX)
            .ok_or(AllocError::SizeOverflow)?;
        let min_before = self.min_ever;
        let b = self.alloc_block(big)?;
        // SAFETY: `b` is the block just allocated.
        let s = unsafe { self.arena.size(b) };
        let payload_addr = self.arena.base_addr() + b + T::HEADER;
        let mut gap = align_up(payload_addr, align) - payload_addr;
        while gap != 0 && gap < T::MIN_BLOCK {
            gap += align;
        }
        let nb = b + gap;
        let mut ns = s - gap;
        let tail = if ns - wanted > T::MIN_BLOCK {
            let t = (nb + wanted, ns - wanted);
            ns = wanted;
            Some(t)
        } else {
            None
        };
        if let Some((t, ts)) = tail {
            if !self.give_back(t, ts, Operation::Allocate) {
                // Refused (a corrupt link, reported): the tail stays part of the allocation.
                ns += ts;
            }
        }
        // SAFETY: `nb` is inside the allocated block, on the grid, with `ns` bytes to its end.
        unsafe { self.arena.set_header(nb, NIL, ns, true) };
        if gap != 0 && !self.give_back(b, gap, Operation::Allocate) {
            // Refused (reported): the gap in front stays an allocated block of its own, lost
            // until a reset but consistent (the payload must stay aligned, so it cannot join).
            // SAFETY: `b` is the start of the block taken above, `gap` bytes before `nb`.
            unsafe { self.arena.set_header(b, NIL, gap, true) };
        }
        self.min_ever = min_before.min(self.free);
        Ok(nb + T::HEADER)
    }

    /// Gives a split-off piece (not yet a block: its header is written by the index) to the
    /// index as a free block and counts it. `false` when the index refused it because a link on
    /// its way did not check out (`validate-cheap`; reported, nothing written): the caller keeps
    /// the piece allocated.
    fn give_back(&mut self, block: usize, size: usize, op: Operation) -> bool {
        self.index.insert(&self.arena, block, size);
        if let Some(bad) = self.arena.take_fault() {
            self.corrupt(bad, CorruptionKind::BadLink, op);
            return false;
        }
        self.free += size;
        true
    }

    /// Whether a block of `size` bytes at `off` can exist in region `r`: at least a header, inside
    /// the region, and a multiple of ALIGN — except the last block of a heap_2 array, which ends
    /// where the array does (heap_2's length is `configTOTAL_HEAP_SIZE - ALIGN`, any value).
    #[inline(always)]
    fn size_fits(off: usize, size: usize, r: &Region) -> bool {
        size >= T::HEADER
            && size <= r.end - off
            && (size % T::ALIGN == 0 || (!I::END_MARKERS && off + size == r.end))
    }

    /// Whether a `Layout` given with a free matches the block of `size` bytes whose payload is at
    /// `addr`: the payload holds it, an allocation of it would not have been split smaller, and
    /// the address has its alignment.
    #[inline(always)]
    fn layout_fits(l: Layout, size: usize, addr: usize) -> bool {
        let fits = l.size() <= size - T::HEADER;
        let not_too_small = wanted_size::<T>(l.size())
            .map_or(l.size() == 0, |w| size - w.min(size) <= T::MIN_BLOCK);
        fits && not_too_small && addr & (l.align() - 1) == 0
    }

    /// Finds the block of a payload pointer and checks its header: the checks of `vPortFree`, made
    /// strict. Returns (block offset, region index, block size).
    #[inline(always)]
    fn validate(
        &self,
        ptr: NonNull<u8>,
        layout: Option<Layout>,
    ) -> Result<(usize, usize), FreeError> {
        if self.state != State::Ready {
            return Err(FreeError::OutsideHeap);
        }
        let addr = ptr.as_ptr() as usize;
        let off = addr.wrapping_sub(self.arena.base_addr());
        let block = off.wrapping_sub(T::HEADER);
        let mut region = None;
        // heap_2/heap_4 have exactly one region once Ready: a constant-length slice, no loop.
        let regions = if N == 1 {
            &self.regions[..1]
        } else {
            self.regions()
        };
        for r in regions {
            if block >= r.start && block < r.end {
                region = Some(*r);
                break;
            }
            let tail = if I::END_MARKERS { T::HEADER } else { 0 };
            if off >= r.start && off < r.end + tail {
                return Err(FreeError::Misaligned);
            }
        }
        let r = region.ok_or(FreeError::OutsideHeap)?;
        if block % T::ALIGN != 0 {
            return Err(FreeError::Misaligned);
        }
        let room = r.end - block;
        // With end markers region ends are on the grid: with ALIGN >= HEADER a grid block below
        // the end has room for a header. heap_2's array ends anywhere.
        if (T::ALIGN < T::HEADER || !I::END_MARKERS) && room < T::HEADER {
            return Err(FreeError::Misaligned);
        }
        // SAFETY: `block` is on the grid inside region `r`, with a header's room before its end.
        let h = unsafe { self.arena.header(block) };
        let plausible = Self::size_fits(block, h.size, &r);
        if !h.allocated {
            // A list keeps a link (NIL or a grid offset) in every free block; the tree keeps its
            // own words there.
            let link_ok = !I::THREADED || h.link == NIL || h.link % T::ALIGN == 0;
            return Err(if plausible && link_ok {
                FreeError::DoubleFree
            } else {
                FreeError::NotABlock
            });
        }
        if !plausible || h.link != NIL {
            // With poisoning, a header swallowed by a merge is all pattern: that block was freed.
            if cfg!(feature = "poison") {
                let pattern = if T::WORD == 4 {
                    0x25A5_A5A5
                } else {
                    0x25A5_A5A5_A5A5_A5A5_u64 as usize
                };
                if h.allocated && h.size == pattern {
                    return Err(FreeError::DoubleFree);
                }
            }
            return Err(FreeError::NotABlock);
        }
        // The next block's header must check out too (catches most interior pointers).
        let next = block + h.size;
        if next < r.end {
            // SAFETY: `next` is on the grid inside region `r`.
            let n = unsafe { self.arena.header(next) };
            if !Self::size_fits(next, n.size, &r) {
                return Err(FreeError::NotABlock);
            }
        }
        if layout.is_some_and(|l| !Self::layout_fits(l, h.size, addr)) {
            return Err(FreeError::LayoutMismatch);
        }
        Ok((block, h.size))
    }

    /// The common case of [`validate`](Self::validate), for the heaps with end markers: a
    /// pointer into the first region whose header and upper neighbour's header check out.
    /// `None` when anything does not (or the block is in another region): the caller then asks
    /// `validate`, which names the error. Accepts exactly what `validate` accepts in the first
    /// region, with fewer instructions: region 0 starts at offset 0, and the HEADER bytes
    /// after its end marker's offset are its end marker, so a grid offset below the end has a
    /// readable header without the room test.
    #[inline(always)]
    fn validate_fast(&self, ptr: NonNull<u8>, layout: Option<Layout>) -> Option<(usize, usize)> {
        if self.state != State::Ready {
            return None;
        }
        let end = self.regions[0].end;
        debug_assert_eq!(self.regions[0].start, 0);
        let addr = ptr.as_ptr() as usize;
        let block = addr
            .wrapping_sub(self.arena.base_addr())
            .wrapping_sub(T::HEADER);
        if block >= end || block % T::ALIGN != 0 {
            return None;
        }
        // SAFETY: `block` is on the grid below the end marker of region 0, whose header follows
        // at `end`: the HEADER bytes at `block` lie inside the region or that marker.
        let h = unsafe { self.arena.header(block) };
        let room = end - block;
        if !h.allocated
            || h.link != NIL
            || h.size < T::HEADER
            || h.size > room
            || h.size % T::ALIGN != 0
        {
            return None;
        }
        let next = block + h.size;
        if next < end {
            // SAFETY: `next` is on the grid inside region 0 (below its end marker).
            let n = unsafe { self.arena.size(next) };
            if n < T::HEADER || n > end - next || n % T::ALIGN != 0 {
                return None;
            }
        }
        if layout.is_some_and(|l| !Self::layout_fits(l, h.size, addr)) {
            return None;
        }
        Some((block, h.size))
    }

    /// Payload bytes of the block of `ptr` (validated as for a free).
    pub fn usable_size(&self, ptr: NonNull<u8>) -> Result<usize, FreeError> {
        self.validate(ptr, None).map(|(_, size)| size - T::HEADER)
    }

    /// `vPortFree`, refusing what does not check out.
    ///
    /// # Safety
    /// `ptr` is not in use by anyone after this call if the call succeeds.
    #[inline(always)]
    pub unsafe fn free(
        &mut self,
        ptr: NonNull<u8>,
        layout: Option<Layout>,
    ) -> Result<(), FreeError> {
        if I::END_MARKERS && !cfg!(feature = "validate-full") && !cfg!(rtos_heap_small) {
            // The common case in few instructions: a good pointer into the first region.
            if let Some((block, size)) = self.validate_fast(ptr, layout) {
                if self.release(block, size, Operation::Free) {
                    self.frees += 1;
                    return Ok(());
                }
                self.rejected += 1;
                return Err(FreeError::Corrupted);
            }
            return self.free_slow(ptr, layout);
        }
        self.free_checked(ptr, layout)
    }

    /// `vPortFree` with only FreeRTOS's own checks (the allocated bit, the NULL link): no range,
    /// grid or neighbour checks. With `validate-full`, the checked [`free`](Self::free).
    ///
    /// # Safety
    /// `ptr` is a live allocation of this heap, not used after the call.
    #[inline]
    pub unsafe fn free_trusted(&mut self, ptr: NonNull<u8>) -> Result<(), FreeError> {
        if cfg!(feature = "validate-full") {
            // SAFETY: forwarded contract.
            return unsafe { self.free(ptr, None) };
        }
        let block = (ptr.as_ptr() as usize)
            .wrapping_sub(self.arena.base_addr())
            .wrapping_sub(T::HEADER);
        // SAFETY: the caller guarantees a live allocation of this heap: its header is at `block`.
        let h = unsafe { self.arena.header(block) };
        let e = if !h.allocated || h.link != NIL {
            // Refused: the full check names why (a double free, a header merged away, …).
            self.validate(ptr, None)
                .err()
                .unwrap_or(FreeError::NotABlock)
        } else if self.release(block, h.size, Operation::Free) {
            self.frees += 1;
            return Ok(());
        } else {
            FreeError::Corrupted
        };
        self.rejected += 1;
        Err(e)
    }

    /// `free` of a pointer the fast path did not take: another region, an error to name, or
    /// `validate-full`.
    #[cold]
    #[inline(never)]
    fn free_slow(&mut self, ptr: NonNull<u8>, layout: Option<Layout>) -> Result<(), FreeError> {
        self.free_checked(ptr, layout)
    }

    #[inline(always)]
    fn free_checked(&mut self, ptr: NonNull<u8>, layout: Option<Layout>) -> Result<(), FreeError> {
        if !self.full_check(Operation::Free) {
            self.rejected += 1;
            return Err(FreeError::Corrupted);
        }
        match self.validate(ptr, layout) {
            Ok((block, size)) => {
                if !self.release(block, size, Operation::Free) {
                    self.rejected += 1;
                    return Err(FreeError::Corrupted);
                }
                self.frees += 1;
                Ok(())
            }
            Err(e) => {
                self.rejected += 1;
                self.bad_header(ptr, e);
                Err(e)
            }
        }
    }

    /// `validate-cheap`: a header that does not check out is reported to the fault hook too.
    #[inline(always)]
    fn bad_header(&self, ptr: NonNull<u8>, e: FreeError) {
        if cfg!(feature = "validate-cheap") && e == FreeError::NotABlock {
            crate::validate::report(
                CorruptionKind::BadHeader,
                (ptr.as_ptr() as usize).wrapping_sub(T::HEADER),
                Operation::Free,
            );
        }
    }

    /// Reports a corruption found at the block at offset `off`.
    #[cold]
    fn corrupt(&self, off: usize, kind: CorruptionKind, op: Operation) {
        crate::validate::report(kind, self.arena.base_addr().wrapping_add(off), op);
    }

    /// `validate-full`: `check()` before an operation; `false` (reported) when it fails. Always
    /// `true` without the feature.
    #[inline(always)]
    fn full_check(&self, op: Operation) -> bool {
        #[cfg(feature = "validate-full")]
        if let Err(e) = self.check() {
            crate::validate::report(CorruptionKind::Check(e.kind), e.address, op);
            return false;
        }
        let _ = op;
        true
    }

    /// Returns a validated allocated block to the index. `false` (reported, block still allocated)
    /// when the index walk met a link that does not check out (`validate-cheap`): nothing of the
    /// heap's structure changed, but with clear-on-free or `poison` the payload is already wiped
    /// (it must be wiped *before* the insert: an index may keep its node in the free payload).
    #[inline]
    fn release(&mut self, block: usize, size: usize, op: Operation) -> bool {
        // Clear the allocated bit first: the stale header of a block that merges into its lower
        // neighbour must still read "free" so that a second free of it is caught.
        // SAFETY: `block` was validated as an allocated block header of `size` bytes.
        unsafe { self.arena.set_size(block, size, false) };
        #[cfg(feature = "poison")]
        // SAFETY: the payload of the block being freed, which nobody may use any more.
        unsafe {
            self.arena.poison(block + T::HEADER, size - T::HEADER);
        }
        #[cfg(not(feature = "poison"))]
        if self.clear_on_free {
            // SAFETY: the payload of the block being freed, which nobody may use any more.
            unsafe {
                self.arena
                    .ptr(block + T::HEADER)
                    .write_bytes(0, size - T::HEADER);
            }
        }
        // The insert walk validates before it writes: on a fault nothing but the bit above changed.
        self.index.insert(&self.arena, block, size);
        if let Some(bad) = self.arena.take_fault() {
            // SAFETY: as above; the block is still the allocated block it was.
            unsafe { self.arena.set_size(block, size, true) };
            self.corrupt(bad, CorruptionKind::BadLink, op);
            return false;
        }
        self.free += size;
        true
    }

    /// `poison`: whether the payload of free block `block` (`len` bytes) is no longer all
    /// pattern. The first [`FreeIndex::node_bytes`] bytes hold the index's own node (the tree's)
    /// and are skipped.
    #[cfg(feature = "poison")]
    #[inline]
    fn poison_damaged(&self, block: usize, len: usize) -> bool {
        let skip = I::node_bytes::<T>().min(len);
        // SAFETY: the payload of a free block of the index, which nothing references.
        unsafe { self.arena.unpoisoned(block + T::HEADER + skip, len - skip) }.is_some()
    }

    /// realloc: in place when the block can shrink or (merging index) absorb a free upper neighbour,
    /// else allocate, copy and free.
    ///
    /// # Safety
    /// `ptr` was allocated by this heap with `old`, and is not used after a successful move.
    pub unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>, ReallocError> {
        if !self.full_check(Operation::Reallocate) {
            self.rejected += 1;
            return Err(ReallocError::Free(FreeError::Corrupted));
        }
        let (block, size) = self.validate(ptr, Some(old)).inspect_err(|&e| {
            self.rejected += 1;
            self.bad_header(ptr, e);
        })?;
        let new_wanted = wanted_size::<T>(new_size)?;
        if new_wanted <= size {
            if size - new_wanted > T::MIN_BLOCK {
                let tail = block + new_wanted;
                // The tail's header goes over payload bytes: keep them to restore on a refusal.
                let mut saved = [0u8; 16];
                let n = T::HEADER.min(saved.len());
                // SAFETY: both headers lie inside the validated block; `saved` holds `n` bytes.
                unsafe {
                    core::ptr::copy_nonoverlapping(self.arena.ptr(tail), saved.as_mut_ptr(), n);
                    self.arena.set_header(block, NIL, new_wanted, true);
                }
                if !self.release(tail, size - new_wanted, Operation::Reallocate) {
                    // SAFETY: as above: the block and its payload bytes are restored as they were.
                    unsafe {
                        self.arena.set_header(block, NIL, size, true);
                        core::ptr::copy_nonoverlapping(saved.as_ptr(), self.arena.ptr(tail), n);
                    }
                    self.rejected += 1;
                    return Err(ReallocError::Free(FreeError::Corrupted));
                }
            }
            return Ok(ptr);
        }
        if I::MERGES {
            let end = self
                .regions()
                .iter()
                .find(|r| block >= r.start && block < r.end)
                .map_or(0, |r| r.end);
            let next = block + size;
            if next < end {
                // SAFETY: `next` is the block after a validated block, inside the same region.
                let n = unsafe { self.arena.header(next) };
                if !n.allocated && n.size > 0 && size + n.size >= new_wanted {
                    #[cfg(feature = "poison")]
                    if self.poison_damaged(next, n.size - T::HEADER) {
                        self.corrupt(next, CorruptionKind::UseAfterFree, Operation::Reallocate);
                        return Err(ReallocError::Alloc(AllocError::Corrupted));
                    }
                    self.index.remove(&self.arena, next);
                    if let Some(bad) = self.arena.take_fault() {
                        // Nothing was written by the refused removal.
                        self.corrupt(bad, CorruptionKind::BadLink, Operation::Reallocate);
                        return Err(ReallocError::Alloc(AllocError::Corrupted));
                    }
                    self.free -= n.size;
                    let mut total = size + n.size;
                    if total - new_wanted > T::MIN_BLOCK
                        && self.give_back(
                            block + new_wanted,
                            total - new_wanted,
                            Operation::Reallocate,
                        )
                    {
                        total = new_wanted;
                    }
                    // SAFETY: `block` is the validated block, now `total` bytes long.
                    unsafe { self.arena.set_header(block, NIL, total, true) };
                    if self.free < self.min_ever {
                        self.min_ever = self.free;
                    }
                    return Ok(ptr);
                }
            }
        }
        let new = self.allocate(new_size, old.align())?;
        // SAFETY: both blocks are live and distinct; the copy is bounded by both sizes.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), old.size().min(new_size));
        }
        if !self.release(block, size, Operation::Free) {
            // The old block stays allocated; give the new one back (which may be refused too, on
            // the same corrupt list: then it leaks rather than risk a wild write).
            let nb = (new.as_ptr() as usize).wrapping_sub(self.arena.base_addr()) - T::HEADER;
            // SAFETY: `nb` is the header of the block allocated just above.
            let ns = unsafe { self.arena.size(nb) };
            if self.release(nb, ns, Operation::Free) {
                self.allocs -= 1;
            }
            self.rejected += 1;
            return Err(ReallocError::Free(FreeError::Corrupted));
        }
        self.frees += 1;
        Ok(new)
    }

    pub fn free_bytes(&self) -> usize {
        self.free
    }

    pub fn min_ever_free_bytes(&self) -> usize {
        self.min_ever
    }

    pub fn reset_min_ever_free(&mut self) {
        self.min_ever = self.free;
    }

    #[inline(always)]
    fn summary(&self) -> Summary {
        // Before the lay-out the index is empty (the walk finds nothing); after `reset` it is the
        // old index of the one region, still in memory (see `stale`).
        let regions = if self.stale {
            self.regions.get(..1).unwrap_or(&[])
        } else {
            self.regions()
        };
        let mut s = match self.index.summary(&self.arena, regions) {
            Ok(s) => s,
            Err((s, bad)) => {
                self.corrupt(bad, CorruptionKind::BadLink, Operation::Stats);
                s
            }
        };
        s.smallest = s.smallest.min(T::SIZE_MAX);
        if self.stale && I::END_MARKERS {
            // FreeRTOS forgot pxEnd: its walk goes on to the old end marker (size 0) and counts it.
            s.count += 1;
            s.smallest = 0;
        }
        s
    }

    /// `vPortGetHeapStats`: walks the free list now, as FreeRTOS does.
    #[inline]
    pub fn stats(&self) -> HeapStats {
        let s = self.summary();
        HeapStats {
            available_bytes: self.free,
            largest_free_block: s.largest,
            smallest_free_block: s.smallest,
            free_blocks: s.count,
            min_ever_free: self.min_ever,
            successful_allocations: self.allocs,
            successful_frees: self.frees,
            rejected_frees: self.rejected,
            failed_allocations: self.failed,
        }
    }

    /// `vPortHeapResetState` of heap_2/heap_4: the heap forgets its blocks and counters and lays
    /// its array out again at the next allocation. Until then the statistics walk reports the old
    /// free list, as FreeRTOS's does (see `stale`).
    pub fn reset_lazy(&mut self) {
        if self.state == State::Undefined {
            return;
        }
        if self.state == State::Ready {
            // FreeRTOS leaves xStart and the list alone: its stats walk reports the old list
            // until the next allocation lays the heap out again.
            self.stale = true;
        }
        self.state = State::Pending;
        self.nregions = 0;
        self.clear_counters();
    }

    /// `vPortHeapResetState` of a heap whose regions were given up front (heap_5 through the Rust
    /// API): the blocks and counters are laid out again now.
    pub fn reset_regions(&mut self) {
        if self.state != State::Undefined {
            self.clear_counters();
            self.lay_out();
        }
    }

    /// Walks every block of every region and the free index; see the module invariants.
    pub fn check(&self) -> Result<(), CheckError> {
        if self.state != State::Ready {
            return Ok(());
        }
        let base = self.arena.base_addr();
        let err = |kind, off: usize| CheckError {
            kind,
            address: base.wrapping_add(off),
        };
        let mut phys_free = 0usize;
        let mut phys_bytes = 0usize;
        // The index is checked alongside the blocks, in address order.
        let mut cursor = self.index.check_start();
        let last = self.nregions - 1;
        for (ri, r) in self.regions().iter().enumerate() {
            let mut off = r.start;
            let mut prev_free = false;
            while off < r.end {
                // SAFETY: `off` is a block boundary inside the region (by induction from `start`, each
                // step adds a size checked to stay inside).
                let h = unsafe { self.arena.header(off) };
                if !Self::size_fits(off, h.size, r) {
                    return Err(err(CheckErrorKind::BadBlockSize, off));
                }
                if h.allocated {
                    if h.link != NIL {
                        return Err(err(CheckErrorKind::BadAllocatedLink, off));
                    }
                    prev_free = false;
                } else {
                    if I::MERGES && prev_free {
                        return Err(err(CheckErrorKind::UnmergedNeighbours, off));
                    }
                    self.index
                        .check_met(&self.arena, &mut cursor, Met::Free(off), self.regions())
                        .map_err(|k| err(k, off))?;
                    phys_free += 1;
                    phys_bytes += h.size;
                    prev_free = true;
                }
                off += h.size;
            }
            if off != r.end {
                return Err(err(CheckErrorKind::BadEndMarker, r.end));
            }
            if I::END_MARKERS {
                // SAFETY: the end marker header lies at `r.end`, inside the caller's region.
                let m = unsafe { self.arena.header(r.end) };
                if m.size != 0 || m.allocated {
                    return Err(err(CheckErrorKind::BadEndMarker, r.end));
                }
                let met = Met::Marker {
                    at: r.end,
                    last: ri == last,
                };
                self.index
                    .check_met(&self.arena, &mut cursor, met, self.regions())
                    .map_err(|k| err(k, r.end))?;
            }
        }
        self.index
            .check_end(&self.arena, cursor, self.regions(), phys_free, phys_bytes)
            .map_err(|(k, off)| err(k, off))?;
        if phys_bytes != self.free {
            return Err(err(CheckErrorKind::FreeBytesMismatch, 0).with_address(0));
        }
        if self.min_ever > self.free {
            return Err(err(CheckErrorKind::MinEverAboveFree, 0).with_address(0));
        }
        Ok(())
    }

    /// The physical blocks, region by region (for pictures and the `w` lines of the vectors).
    pub fn block_at(&self, region: usize, off: usize) -> Option<(BlockInfo, usize)> {
        let r = *self.regions().get(region)?;
        let addr = self.arena.base_addr() + off;
        if off == r.end {
            return I::END_MARKERS.then_some((
                BlockInfo {
                    address: addr,
                    size: 0,
                    kind: BlockKind::EndMarker,
                    region,
                },
                NIL,
            ));
        }
        if off > r.end || r.end - off < T::HEADER {
            return None;
        }
        // SAFETY: `off` is on the grid inside the region with room for a header (the iterator starts
        // at a region start and advances by sizes checked below).
        let h = unsafe { self.arena.header(off) };
        let bad = !Self::size_fits(off, h.size, &r);
        let kind = if bad {
            BlockKind::Corrupt
        } else if h.allocated {
            BlockKind::Allocated
        } else {
            BlockKind::Free
        };
        let next = if bad { NIL } else { off + h.size };
        Some((
            BlockInfo {
                address: addr,
                size: h.size,
                kind,
                region,
            },
            next,
        ))
    }

    pub(crate) fn region_start(&self, region: usize) -> Option<usize> {
        self.regions().get(region).map(|r| r.start)
    }
}

impl CheckError {
    fn with_address(mut self, address: usize) -> Self {
        self.address = address;
        self
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::HeapRegion;
    use crate::target::Target;
    use crate::{AddressList, AddressTree};

    /// Over every byte address around and inside the heap, with blocks allocated, freed and
    /// merged: `validate_fast` takes only what `validate` accepts, with the same answer, and it
    /// takes every live block of the first region.
    fn fast_agrees<T: TargetLayout, I: FreeIndex, const N: usize>(
        mut e: Engine<T, I, N>,
        base: usize,
        len: usize,
    ) {
        let mut live = std::vec::Vec::new();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..400usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed % 3 != 0 || live.is_empty() {
                if let Ok(p) = e.allocate(1 + (seed as usize >> 8) % 200, 1) {
                    live.push(p);
                }
            } else {
                let p = live.swap_remove((seed as usize >> 16) % live.len());
                // SAFETY: `p` is a live block of `e`, freed once.
                unsafe { e.free(p, None) }.unwrap();
            }
            if i % 50 != 49 {
                continue;
            }
            for addr in base.saturating_sub(64)..base + len + 64 {
                let Some(p) = NonNull::new(addr as *mut u8) else {
                    continue;
                };
                if let Some(v) = e.validate_fast(p, None) {
                    assert_eq!(e.validate(p, None), Ok(v), "address {addr:#x}");
                }
            }
            for p in &live {
                let first = (p.as_ptr() as usize) < base + e.regions[0].end;
                assert_eq!(e.validate_fast(*p, None).is_some(), first);
            }
        }
    }

    fn buffer(len: usize) -> (NonNull<u8>, usize) {
        let mem = std::vec![0u64; len / 8 + 2].leak();
        (NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap(), len)
    }

    #[test]
    fn fast_free_check_accepts_only_what_the_full_check_accepts() {
        fn heap4<T: TargetLayout, I: FreeIndex>() {
            let (p, len) = buffer(4096);
            let mut e = Engine::<T, I, 1>::new();
            // SAFETY: leaked memory, owned by the heap for the rest of the test.
            unsafe { e.set_pending(p, len) }.unwrap();
            fast_agrees(e, p.as_ptr() as usize, len);
        }
        heap4::<Target<4, 4>, AddressList>();
        heap4::<Target<4, 8>, AddressList>();
        heap4::<Target<8, 8>, AddressList>();
        heap4::<Target<8, 16>, AddressList>();
        heap4::<Target<8, 8>, AddressTree>();

        let (p, len) = buffer(8192);
        let mut e = Engine::<Target<8, 8>, AddressList, 2>::new();
        let (a, b) = (p.as_ptr(), p.as_ptr().wrapping_add(4096 + 64));
        // SAFETY: two disjoint parts of the leaked buffer.
        unsafe {
            e.define(&[
                HeapRegion {
                    start: a,
                    size: 3000,
                },
                HeapRegion {
                    start: b,
                    size: 3000,
                },
            ])
        }
        .unwrap();
        fast_agrees(e, a as usize, len);
    }
}
