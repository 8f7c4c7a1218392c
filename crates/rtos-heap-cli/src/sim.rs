//! Simulated heaps: a scheme of the core crate, laid out for the device, over host memory.
//!
//! [`build`] turns a runtime [`HeapSpec`] into a `Box<dyn Sim>`: the scheme is monomorphised for the
//! device's [`Target`](rtos_heap::Target) once, through [`with_layout!`](crate::with_layout), and
//! the replay loop talks to it through the small [`Sim`] trait (one virtual call per operation,
//! negligible next to a free-list walk).

use std::alloc::System;
use std::ptr::NonNull;

use rtos_heap::{
    AllocError, BlockKind, FreeError, FreeIndex, Heap1, Heap2, Heap3, Heap4, Heap5, HeapRegion,
    HeapStats, RawHeap, RegionError, SizeList, SizeTree, TargetLayout,
};

use crate::layout::{Layout, Scheme};

/// Most heap_5 regions the tool simulates.
pub const MAX_REGIONS: usize = 8;

/// Host alignment of every simulated region's start: at least the largest `portBYTE_ALIGNMENT`,
/// so no scheme loses bytes to aligning its start and offsets match a device whose heap array is
/// aligned.
pub const REGION_ALIGN: usize = 16;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapSpec {
    /// The scheme.
    pub scheme: Scheme,
    /// The device layout.
    pub layout: Layout,
    /// Region sizes in bytes: one for heap_1..heap_4 (`configTOTAL_HEAP_SIZE`), one or more for
    /// heap_5.
    pub regions: Vec<usize>,
}

impl HeapSpec {
    /// One region of `size` bytes.
    pub fn single(scheme: Scheme, layout: Layout, size: usize) -> Self {
        HeapSpec {
            scheme,
            layout,
            regions: vec![size],
        }
    }

    /// Total bytes given to the heap.
    pub fn total(&self) -> usize {
        self.regions.iter().sum()
    }

    /// Offsets of the regions inside the simulation buffer (ascending, each aligned to
    /// [`REGION_ALIGN`], no gaps beyond that alignment).
    pub fn region_offsets(&self) -> Vec<usize> {
        let mut off = 0;
        self.regions
            .iter()
            .map(|&len| {
                let o = off;
                off = (off + len).div_ceil(REGION_ALIGN) * REGION_ALIGN;
                o
            })
            .collect()
    }

    /// Bytes free in the empty heap, before any allocation (the scheme's fixed costs deducted):
    /// heap_1/2 lose `portBYTE_ALIGNMENT`, heap_4/5 an end marker per region (aligned starts),
    /// heap_3's limit is the size.
    pub fn capacity(&self) -> usize {
        let a = self.layout.align;
        let h = self.layout.header();
        match self.scheme {
            Scheme::Heap1 | Scheme::Heap2 => self.total().saturating_sub(a),
            Scheme::Heap3 => self.total(),
            Scheme::Heap4 | Scheme::Heap5 => self
                .regions
                .iter()
                .map(|&len| len.saturating_sub(h) / a * a)
                .sum(),
        }
    }
}

/// One block of a heap map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MapBlock {
    /// Region index.
    pub region: usize,
    /// Offset of the block (header included) from the start of its region.
    pub offset: usize,
    /// Block bytes, header included.
    pub size: usize,
    /// Allocated (else free).
    pub allocated: bool,
    /// Operation index of the allocation that made an allocated block, when known.
    pub born: Option<u64>,
    /// Trace line of that allocation, when known.
    pub line: Option<u64>,
}

/// A simulated heap.
pub trait Sim {
    /// `pvPortMalloc(size)` (`align` 0) or an allocation with an explicit alignment. Returns the
    /// host address of the payload.
    ///
    /// # Errors
    /// The scheme's [`AllocError`].
    fn alloc(&mut self, size: u64, align: u32) -> Result<usize, AllocError>;
    /// `vPortFree` of a payload address returned by [`alloc`](Self::alloc) and not freed since.
    ///
    /// # Errors
    /// The scheme's [`FreeError`].
    fn free(&mut self, addr: usize) -> Result<(), FreeError>;
    /// `xPortGetFreeHeapSize`.
    fn free_bytes(&self) -> usize;
    /// `xPortGetMinimumEverFreeHeapSize`.
    fn min_ever_free(&self) -> usize;
    /// `vPortGetHeapStats`.
    fn stats(&self) -> HeapStats;
    /// Largest free block (heap_3: the free bytes under the limit; it has no blocks of its own).
    fn largest_free(&self) -> usize;
    /// The physical blocks (empty for heap_3).
    fn blocks(&self, out: &mut Vec<MapBlock>);
    /// (region index, offset from the region's start) of a host address.
    fn locate(&self, addr: usize) -> (usize, usize);
    /// Bytes free in the empty heap.
    fn capacity(&self) -> usize;
    /// Host address of the start of the first region (heap_3: 0).
    fn base(&self) -> usize;
    /// The heap's [`HeapSpec`].
    fn spec(&self) -> &HeapSpec;
}

struct Machine<H> {
    heap: H,
    spec: HeapSpec,
    /// Host addresses of the region starts.
    starts: Vec<usize>,
    capacity: usize,
    /// The memory the heap lives in; never touched directly after the heap got it. Dropped after
    /// `heap` (field order) and never moved (the Vec's buffer stays where it is).
    _mem: Vec<u128>,
}

/// Block walk for the schemes that have one.
trait Walk {
    fn walk(&self, starts: &[usize], out: &mut Vec<MapBlock>);
}

fn push_blocks(
    it: impl Iterator<Item = rtos_heap::BlockInfo>,
    starts: &[usize],
    out: &mut Vec<MapBlock>,
) {
    for b in it {
        let allocated = match b.kind {
            BlockKind::Allocated => true,
            BlockKind::Free => false,
            BlockKind::EndMarker | BlockKind::Corrupt => continue,
        };
        out.push(MapBlock {
            region: b.region,
            offset: b.address - starts[b.region],
            size: b.size,
            allocated,
            born: None,
            line: None,
        });
    }
}

impl<T: TargetLayout> Walk for Heap1<T> {
    fn walk(&self, starts: &[usize], out: &mut Vec<MapBlock>) {
        // heap_1 has no headers: one span handed out, the rest free.
        let used = self.used_bytes();
        let _ = starts;
        if used > 0 {
            out.push(MapBlock {
                region: 0,
                offset: 0,
                size: used,
                allocated: true,
                born: None,
                line: None,
            });
        }
        let free = self.free_bytes();
        if free > 0 {
            out.push(MapBlock {
                region: 0,
                offset: used,
                size: free,
                allocated: false,
                born: None,
                line: None,
            });
        }
    }
}
impl<T: TargetLayout, I: FreeIndex> Walk for Heap2<T, I> {
    fn walk(&self, starts: &[usize], out: &mut Vec<MapBlock>) {
        push_blocks(self.blocks(), starts, out)
    }
}
impl<T: TargetLayout> Walk for Heap4<T> {
    fn walk(&self, starts: &[usize], out: &mut Vec<MapBlock>) {
        push_blocks(self.blocks(), starts, out)
    }
}
impl<T: TargetLayout> Walk for Heap5<T, MAX_REGIONS> {
    fn walk(&self, starts: &[usize], out: &mut Vec<MapBlock>) {
        push_blocks(self.blocks(), starts, out)
    }
}
impl Walk for Heap3<System> {
    fn walk(&self, _starts: &[usize], _out: &mut Vec<MapBlock>) {}
}

impl<H: RawHeap + Walk> Sim for Machine<H> {
    #[inline]
    fn alloc(&mut self, size: u64, align: u32) -> Result<usize, AllocError> {
        let size = usize::try_from(size).map_err(|_| AllocError::SizeOverflow)?;
        let p = if align <= 1 {
            self.heap.malloc(size)?
        } else {
            let l = std::alloc::Layout::from_size_align(size, align as usize)
                .map_err(|_| AllocError::SizeOverflow)?;
            self.heap.allocate(l)?
        };
        Ok(p.as_ptr() as usize)
    }

    #[inline]
    fn free(&mut self, addr: usize) -> Result<(), FreeError> {
        let p = NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(addr))
            .ok_or(FreeError::OutsideHeap)?;
        // SAFETY: the replayer only frees addresses this heap returned and that were not freed
        // since (its slot table holds each live address once), and never touches them again.
        unsafe { self.heap.free(p, None) }
    }

    fn free_bytes(&self) -> usize {
        self.heap.free_bytes()
    }

    fn min_ever_free(&self) -> usize {
        self.heap.min_ever_free_bytes()
    }

    fn stats(&self) -> HeapStats {
        self.heap.stats()
    }

    fn largest_free(&self) -> usize {
        if self.spec.scheme == Scheme::Heap3 {
            return self.heap.free_bytes();
        }
        let s = self.heap.stats();
        if self.spec.scheme == Scheme::Heap4 && s.successful_allocations == 0 {
            // heap_4 is laid out lazily: before its first allocation the stats read 0.
            self.capacity
        } else {
            s.largest_free_block
        }
    }

    fn blocks(&self, out: &mut Vec<MapBlock>) {
        self.heap.walk(&self.starts, out)
    }

    fn locate(&self, addr: usize) -> (usize, usize) {
        let r = self.starts.iter().rposition(|&s| s <= addr).unwrap_or(0);
        (
            r,
            addr.wrapping_sub(self.starts.get(r).copied().unwrap_or(0)),
        )
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn base(&self) -> usize {
        self.starts.first().copied().unwrap_or(0)
    }

    fn spec(&self) -> &HeapSpec {
        &self.spec
    }
}

/// Why a heap could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The core crate refused the memory.
    #[error("{scheme} cannot use {size} bytes: {reason}")]
    Region {
        /// Scheme.
        scheme: Scheme,
        /// Total bytes.
        size: usize,
        /// The core crate's reason (in the message, so not also a `source`: a chain would
        /// repeat it).
        reason: RegionError,
    },
    /// Several regions for a single-region scheme, or too many regions.
    #[error("{0}")]
    Regions(String),
}

fn memory(spec: &HeapSpec) -> (Vec<u128>, Vec<usize>) {
    let offs = spec.region_offsets();
    let end = offs.last().copied().unwrap_or(0) + spec.regions.last().copied().unwrap_or(0);
    // Zeroed allocation: the OS maps pages lazily, so a large simulated heap costs only the pages
    // its headers touch.
    let mem = vec![0u128; end.div_ceil(16).max(1)];
    let base = mem.as_ptr() as usize;
    let starts = offs.iter().map(|o| base + o).collect();
    (mem, starts)
}

/// The heap_2 index the simulator uses on a layout: [`SizeTree`] (O(log n), same placement as
/// FreeRTOS's list) wherever it fits, i.e. `portBYTE_ALIGNMENT` ≥ 8; the list on align 4.
trait Heap2Index {
    type Index: FreeIndex;
}

macro_rules! heap2_index {
    ($($w:literal, $a:literal => $i:ty;)*) => {
        $(impl Heap2Index for rtos_heap::Target<$w, $a> {
            type Index = $i;
        })*
    };
}

heap2_index! {
    4, 4 => SizeList;
    4, 8 => SizeTree;
    4, 16 => SizeTree;
    8, 4 => SizeList;
    8, 8 => SizeTree;
    8, 16 => SizeTree;
}

fn build_for<T: TargetLayout + Heap2Index>(spec: &HeapSpec) -> Result<Box<dyn Sim>, BuildError> {
    // heap_3's blocks come from the host allocator: no buffer, base 0.
    let (mut mem, starts) = if spec.scheme == Scheme::Heap3 {
        (Vec::new(), vec![0])
    } else {
        memory(spec)
    };
    let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).expect("Vec pointer is not null");
    let region_err = |reason| BuildError::Region {
        scheme: spec.scheme,
        size: spec.total(),
        reason,
    };
    if spec.scheme != Scheme::Heap5 && spec.regions.len() != 1 {
        return Err(BuildError::Regions(format!(
            "{} takes one region (--heap-size); only heap_5 takes --regions",
            spec.scheme
        )));
    }
    let len = spec.regions[0];
    let capacity = spec.capacity();
    macro_rules! machine {
        ($heap:expr) => {
            Ok(Box::new(Machine {
                heap: $heap,
                spec: spec.clone(),
                starts,
                capacity,
                _mem: mem,
            }) as Box<dyn Sim>)
        };
    }
    match spec.scheme {
        Scheme::Heap1 => {
            let mut h = Heap1::<T>::new();
            // SAFETY: `mem` holds at least `len` bytes from `base`, lives in the machine next to the
            // heap for as long as the heap does, and nothing else touches it.
            unsafe { h.init_from_raw(base, len) }.map_err(region_err)?;
            machine!(h)
        }
        Scheme::Heap2 => {
            let mut h = Heap2::<T, T::Index>::new();
            // SAFETY: as for heap_1.
            unsafe { h.init_from_raw(base, len) }.map_err(region_err)?;
            machine!(h)
        }
        Scheme::Heap3 => machine!(Heap3::with_limit(System, len)),
        Scheme::Heap4 => {
            let mut h = Heap4::<T>::new();
            // SAFETY: as for heap_1.
            unsafe { h.init_from_raw(base, len) }.map_err(region_err)?;
            machine!(h)
        }
        Scheme::Heap5 => {
            if spec.regions.len() > MAX_REGIONS {
                return Err(BuildError::Regions(format!(
                    "at most {MAX_REGIONS} heap_5 regions"
                )));
            }
            let regions: Vec<HeapRegion> = starts
                .iter()
                .zip(&spec.regions)
                .map(|(&s, &size)| HeapRegion {
                    start: std::ptr::with_exposed_provenance_mut(s),
                    size,
                })
                .collect();
            let _ = mem.as_mut_ptr().expose_provenance();
            let mut h = Heap5::<T, MAX_REGIONS>::new();
            // SAFETY: every region lies inside `mem` (offsets from `region_offsets`, ascending and
            // disjoint), which lives in the machine next to the heap and is touched by nothing else.
            unsafe { h.define_regions_raw(&regions) }.map_err(region_err)?;
            machine!(h)
        }
    }
}

/// Builds the simulated heap for `spec`.
///
/// # Errors
/// [`BuildError`] when the core crate refuses the memory (too small, too large for the device's
/// word) or the region list does not fit the scheme.
pub fn build(spec: &HeapSpec) -> Result<Box<dyn Sim>, BuildError> {
    crate::with_layout!(spec.layout, build_for(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Preset;

    #[test]
    fn capacity_matches_the_heaps_own_free_bytes() {
        for preset in [
            Preset::CortexM,
            Preset::X86_64,
            Preset::Aarch64,
            Preset::Mcu32Align4,
        ] {
            let layout = preset.layout();
            for scheme in Scheme::ALL {
                for size in [1000usize, 4096, 65_533] {
                    let spec = HeapSpec::single(scheme, layout, size);
                    let mut h = build(&spec).unwrap();
                    if scheme != Scheme::Heap1 {
                        // After one allocation and its free, the free bytes are the empty heap's
                        // (heap_4 reads 0 before its first allocation; heap_1 never frees).
                        let p = h.alloc(1, 0).unwrap();
                        h.free(p).unwrap();
                    }
                    assert_eq!(h.free_bytes(), h.capacity(), "{scheme} {layout} {size}");
                }
            }
        }
    }

    #[test]
    fn heap5_regions_and_locate() {
        let layout = Preset::CortexM.layout();
        let spec = HeapSpec {
            scheme: Scheme::Heap5,
            layout,
            regions: vec![100, 1000],
        };
        let mut h = build(&spec).unwrap();
        assert_eq!(h.free_bytes(), spec.capacity());
        let big = h.alloc(500, 0).unwrap();
        // Too large for region 0: placed at the start of region 1, just after its header.
        assert_eq!(h.locate(big), (1, layout.header()));
        let small = h.alloc(10, 0).unwrap();
        assert_eq!(h.locate(small), (0, layout.header()));
    }

    #[test]
    fn refusals_are_errors() {
        let layout = Preset::CortexM.layout();
        assert!(build(&HeapSpec::single(Scheme::Heap4, layout, 8)).is_err());
        let two = HeapSpec {
            scheme: Scheme::Heap4,
            layout,
            regions: vec![100, 100],
        };
        assert!(matches!(build(&two), Err(BuildError::Regions(_))));
    }
}
