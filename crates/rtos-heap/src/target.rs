//! Target layout: the word width and `portBYTE_ALIGNMENT` a heap is laid out for.
//!
//! FreeRTOS's block header (`BlockLink_t`) is two pointer-sized words, rounded up to
//! `portBYTE_ALIGNMENT`. Both numbers differ between ports, and they decide every block size and so
//! every address the heap hands out. rtos-heap makes them a type parameter so that the same code can
//! run a heap laid out exactly as on a 32-bit Cortex-M while it executes on a 64-bit PC (the CLI and the
//! conformance tests do this): links are stored as offsets from the heap base in words of the
//! *target's* width, never as host pointers.

/// The layout of one FreeRTOS port: header word width and `portBYTE_ALIGNMENT`.
///
/// Implemented by [`Target`]; the derived constants follow the semantics document
/// (`xHeapStructSize`, `heapMINIMUM_BLOCK_SIZE`, `heapBLOCK_ALLOCATED_BITMASK`).
///
/// # Examples
///
/// ```
/// use rtos_heap::{CortexM, Host64, TargetLayout};
/// assert_eq!(CortexM::HEADER, 8);     // 32-bit MCU: 8-byte header,
/// assert_eq!(CortexM::MIN_BLOCK, 16); // 16-byte minimum block
/// assert_eq!(Host64::HEADER, 16);
/// assert_eq!(Host64::MIN_BLOCK, 32);
/// ```
pub trait TargetLayout: 'static {
    /// Bytes in a pointer / `size_t` of the target: 4 or 8.
    const WORD: usize;
    /// `portBYTE_ALIGNMENT`: 4, 8 or 16.
    const ALIGN: usize;
    /// `xHeapStructSize`: two words rounded up to [`ALIGN`](Self::ALIGN).
    const HEADER: usize = (2 * Self::WORD).div_ceil(Self::ALIGN) * Self::ALIGN;
    /// `heapMINIMUM_BLOCK_SIZE`: a block is split only if the remainder is larger than this.
    const MIN_BLOCK: usize = 2 * Self::HEADER;
    /// The target's `SIZE_MAX`, clamped to the host's `usize`.
    const SIZE_MAX: usize = if Self::WORD >= core::mem::size_of::<usize>() {
        usize::MAX
    } else {
        (1usize << (8 * Self::WORD)) - 1
    };
    /// `heapBLOCK_ALLOCATED_BITMASK` as a size limit: a block size with this bit set is refused.
    /// Zero when the target word is wider than the host's `usize` (no host size reaches it).
    const SIZE_MSB: usize = if Self::WORD > core::mem::size_of::<usize>() {
        0
    } else {
        1usize << (8 * Self::WORD - 1)
    };
    /// Compile-time validation; referenced by every heap constructor so a bad layout fails the build.
    const VALID: () = assert!(
        (Self::WORD == 4 || Self::WORD == 8)
            && (Self::ALIGN == 4 || Self::ALIGN == 8 || Self::ALIGN == 16),
        "rtos-heap supports 4- or 8-byte words and portBYTE_ALIGNMENT 4, 8 or 16"
    );
}

/// A target layout given by its word size in bytes (`WORD`: 4 or 8) and `portBYTE_ALIGNMENT`
/// (`ALIGN`: 4, 8 or 16). Other values fail to compile when a heap is built with them.
///
/// ```compile_fail
/// // A 2-byte word is not a FreeRTOS layout rtos-heap supports: this does not build.
/// let heap = rtos_heap::Heap4::<rtos_heap::Target<2, 8>>::new();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Target<const WORD: usize, const ALIGN: usize>;

impl<const WORD: usize, const ALIGN: usize> TargetLayout for Target<WORD, ALIGN> {
    const WORD: usize = WORD;
    const ALIGN: usize = ALIGN;
}

/// The layout of the machine the code runs on: pointer width of the host, `portBYTE_ALIGNMENT` 8
/// (the value of the Cortex-M and POSIX ports).
pub type Native = Target<{ core::mem::size_of::<usize>() }, 8>;
/// 32-bit MCU with `portBYTE_ALIGNMENT` 8 (Cortex-M, RISC-V 32): 8-byte header, 16-byte minimum block.
pub type CortexM = Target<4, 8>;
/// 32-bit MCU with `portBYTE_ALIGNMENT` 4.
pub type Mcu32Align4 = Target<4, 4>;
/// 64-bit host with `portBYTE_ALIGNMENT` 8 (the FreeRTOS POSIX port on x86-64): 16-byte header.
pub type Host64 = Target<8, 8>;
/// 64-bit target with `portBYTE_ALIGNMENT` 16 (e.g. the ARMv8-A ports).
pub type Host64Align16 = Target<8, 16>;

#[inline(always)]
pub(crate) const fn align_up(x: usize, a: usize) -> usize {
    (x + (a - 1)) & !(a - 1)
}

#[inline(always)]
pub(crate) const fn align_down(x: usize, a: usize) -> usize {
    x & !(a - 1)
}
