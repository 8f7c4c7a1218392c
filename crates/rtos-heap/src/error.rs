//! Error types of every scheme: allocation, free, region definition and the integrity check.

use core::fmt;

/// Why an allocation failed. `pvPortMalloc` would return NULL in every case.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AllocError {
    /// A request of zero bytes (FreeRTOS returns NULL and calls the failed-allocation hook).
    ZeroSize,
    /// The request plus the block header, or its rounding, overflows the target's `size_t`, or the
    /// block size would have the allocated bit (MSB) set.
    SizeOverflow,
    /// `calloc`'s `count * size` overflows the target's `size_t` (FreeRTOS returns NULL *without*
    /// calling the failed-allocation hook).
    CallocOverflow,
    /// No free block is large enough.
    OutOfMemory,
    /// The heap has no memory yet: `init` / `define_regions` was not called.
    Uninitialized,
    /// A validation level (`validate-cheap`, `validate-full`, `poison`) found the heap corrupted
    /// (a bad free-list link, a failed `check()`, a write after free); the allocation was refused
    /// before anything was written and the fault hook of [`validate`](crate::validate) was called.
    Corrupted,
}

impl AllocError {
    /// Whether FreeRTOS would call `vApplicationMallocFailedHook` for this failure (every failure of
    /// `pvPortMalloc`; not calloc's multiplication overflow, which never reaches malloc).
    pub const fn calls_malloc_failed_hook(self) -> bool {
        !matches!(self, AllocError::CallocOverflow)
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocError::ZeroSize => "allocation of zero bytes",
            AllocError::SizeOverflow => "requested size overflows the block size arithmetic",
            AllocError::CallocOverflow => "calloc element count times size overflows",
            AllocError::OutOfMemory => "no free block is large enough",
            AllocError::Uninitialized => "the heap has no memory region yet",
            AllocError::Corrupted => "heap corruption detected; allocation refused",
        })
    }
}

/// Why a free (or a realloc of an existing block) was refused. The heap is unchanged.
///
/// The discriminants are the C library's `heapFAULT_…` codes (`LayoutMismatch`, which C cannot
/// meet, has 5, a code C does not use).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FreeError {
    /// The pointer lies outside every region of this heap (a foreign pointer), or the heap has no
    /// memory yet.
    OutsideHeap = 1,
    /// The pointer is inside the heap but not where a block's payload can start (not on the
    /// block grid, or inside an end marker).
    Misaligned = 2,
    /// The header in front of the pointer is a free block's: the block was already freed.
    DoubleFree = 3,
    /// The header in front of the pointer does not check out (an interior pointer, or a header
    /// overwritten by a buffer overrun).
    NotABlock = 4,
    /// The `Layout` given with the free contradicts the block (larger than its payload, smaller
    /// than its allocation, or an alignment the pointer does not have).
    LayoutMismatch = 5,
    /// The block checked out, but a validation level found the heap around it corrupted (a bad
    /// free-list link on the way to its place, or a failed `check()`); the free was refused before
    /// anything was written and the fault hook of [`validate`](crate::validate) was called.
    Corrupted = 7,
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreeError::OutsideHeap => "pointer is outside the heap",
            FreeError::Misaligned => "pointer is not on the block grid",
            FreeError::DoubleFree => "block is already free",
            FreeError::NotABlock => "no valid block header in front of the pointer",
            FreeError::LayoutMismatch => "layout does not match the block",
            FreeError::Corrupted => "heap corruption detected; free refused",
        })
    }
}

/// Why a region (heap_4's array, or a heap_5 region list) was refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegionError {
    /// The heap already has its memory (regions are given once, as in FreeRTOS).
    AlreadyDefined,
    /// An empty region list.
    NoRegions,
    /// More regions than the heap type holds (`Heap5`'s `N`).
    TooManyRegions,
    /// Region `index` starts at the null address.
    Null {
        /// Position of the offending region in the list.
        index: usize,
    },
    /// Region `index` starts below the end of the region before it (unordered or overlapping).
    NotAscending {
        /// Position of the offending region in the list.
        index: usize,
    },
    /// Region `index` is too small for a minimum block and an end marker after alignment.
    TooSmall {
        /// Position of the offending region in the list.
        index: usize,
    },
    /// The regions span more bytes than the target's word can address, or wrap around the
    /// address space.
    TooLarge {
        /// Position of the offending region in the list.
        index: usize,
    },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::AlreadyDefined => f.write_str("the heap's memory is already defined"),
            RegionError::NoRegions => f.write_str("no regions given"),
            RegionError::TooManyRegions => f.write_str("more regions than the heap can hold"),
            RegionError::Null { index } => write!(f, "region {index} starts at address 0"),
            RegionError::NotAscending { index } => write!(
                f,
                "region {index} starts before the end of the previous region (regions must be ascending and must not overlap)"
            ),
            RegionError::TooSmall { index } => write!(
                f,
                "region {index} is too small for one block and an end marker"
            ),
            RegionError::TooLarge { index } => write!(
                f,
                "region {index} lies beyond what the target's word can address"
            ),
        }
    }
}

/// What [`check`](crate::RawHeap::check) found wrong.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CheckErrorKind {
    /// A block size of zero, off the alignment grid, or running past its region.
    BadBlockSize,
    /// An allocated block whose link word is not the allocated marker.
    BadAllocatedLink,
    /// The blocks of a region do not end exactly at its end marker, or the marker is damaged.
    BadEndMarker,
    /// Two neighbouring free blocks in a scheme that merges them.
    UnmergedNeighbours,
    /// A free-list link that leaves the heap, leaves the block grid, or breaks the list order.
    BadLink,
    /// A free-list node that is not a free block.
    ListNodeNotFree,
    /// The free list and the blocks disagree (a free block missing from the list, or a cycle).
    ListMismatch,
    /// The free-bytes counter differs from the sum of the free blocks.
    FreeBytesMismatch,
    /// The minimum-ever-free counter is above the free-bytes counter.
    MinEverAboveFree,
}

/// An integrity-check failure: what is wrong and at which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CheckError {
    /// What is wrong.
    pub kind: CheckErrorKind,
    /// Address of the offending block header (0 for heap-wide counters).
    pub address: usize,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            CheckErrorKind::BadBlockSize => "bad block size",
            CheckErrorKind::BadAllocatedLink => "allocated block without the allocated marker",
            CheckErrorKind::BadEndMarker => "region does not end at its end marker",
            CheckErrorKind::UnmergedNeighbours => "two neighbouring free blocks",
            CheckErrorKind::BadLink => "free-list link out of the heap or out of order",
            CheckErrorKind::ListNodeNotFree => "free-list node is not a free block",
            CheckErrorKind::ListMismatch => "free list and blocks disagree",
            CheckErrorKind::FreeBytesMismatch => "free-bytes counter differs from the free blocks",
            CheckErrorKind::MinEverAboveFree => "minimum-ever-free above free bytes",
        };
        write!(f, "{what} at {:#x}", self.address)
    }
}

impl core::error::Error for AllocError {}
impl core::error::Error for FreeError {}
impl core::error::Error for RegionError {}
impl core::error::Error for CheckError {}
