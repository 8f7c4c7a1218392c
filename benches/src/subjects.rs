//! The allocators under test ("subjects"), each behind the one [`BenchAlloc`] interface and each
//! over memory of its own of the same size.
//!
//! Every subject's `alloc` and `free` is `#[inline(never)]`: the replay loop makes one real call
//! per operation for every allocator, the no-op one included, so that subtracting the no-op run
//! removes the loop *and* the call, and leaves exactly what the allocator itself costs.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use clap::ValueEnum;
use rtos_heap::{AddressTree, Heap2, Heap4, Heap5, HeapRegion, Hybrid, Native, RawHeap, SizeTree};

/// The interface the replay drives: allocate and free by size and alignment.
pub trait BenchAlloc {
    /// Allocates `size` bytes aligned to `align` (a power of two); null when refused.
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8;

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` was returned by [`alloc`](Self::alloc) of this subject with the same `size` and `align`
    /// and has not been freed since.
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize);
}

/// The allocators the driver knows, by command-line name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Does nothing: hands out one fixed pointer. The baseline that is subtracted.
    Noop,
    /// `Heap4<Native>` through the Rust API: `allocate(Layout)` / `free(ptr, Some(layout))`, the
    /// path `LockedHeap`'s `GlobalAlloc` takes.
    Heap4,
    /// `Heap4<Native>` through the C-shaped API: `malloc(size)` / `free(ptr, None)`, what
    /// `pvPortMalloc` / `vPortFree` do (the comparison with the C reference figures).
    Heap4C,
    /// `LockedHeap<Heap4<Native>, NoLock>` through `GlobalAlloc` (`alloc` / `dealloc`), with a
    /// lock that does nothing: against [`Kind::Heap4`], the cost of `LockedHeap`'s own wrapper.
    Heap4Locked,
    /// `Heap4<Native>` through `malloc(size)` / `free_trusted(ptr)`: FreeRTOS's own checks
    /// only, no bad-free detection (what the checks cost).
    Heap4Trusted,
    /// `Heap4<Native, AddressTree>` (the O(log n) index, same placement) through the Rust API.
    Heap4Tree,
    /// `Heap4<Native, AddressTree>` through the C-shaped API (`malloc` / `free(ptr, None)`).
    Heap4TreeC,
    /// `Heap4<Native, Hybrid>` (list below 128 free blocks, tree above) through the C-shaped API.
    Heap4HybridC,
    /// `Heap2<Native>`: best fit, never merges.
    Heap2,
    /// `Heap2<Native, SizeTree>`: heap_2's placement with the O(log n) size tree.
    Heap2Tree,
    /// `Heap5<Native, 1>` over one region.
    Heap5x1,
    /// `Heap5<Native, 2>` over the same bytes split into two regions with a 4 KiB gap between them.
    Heap5x2,
    /// talc (`Talc<Manual, DefaultBinning>`, one claimed region).
    Talc,
    /// rlsf (`Tlsf<'static, u16, u32, 16, 32>`: FLLEN 16 covers 2 MiB blocks, 32 second-level lists).
    Rlsf,
    /// linked_list_allocator (`Heap`, `allocate_first_fit`).
    LinkedList,
    /// buddy_system_allocator (`Heap<32>`).
    Buddy,
    /// rtos-heap's fixed-block [`Pool`](rtos_heap::Pool) (`alloc_block` / `free_block`), for the
    /// `pool` workloads only.
    Pool,
    /// `heapless::pool::boxed` (a `box_pool!` of blocks of the workload's size; `Box::into_raw` /
    /// `Box::from_raw`), for the `pool` workloads only. A process-wide singleton.
    HeaplessPool,
    /// FreeRTOS's own `heap_4.c`, gcc -O2, `configASSERT` empty (see [`crate::freertos`]).
    CHeap4,
    /// FreeRTOS's own `heap_4.c`, gcc -O2, `configASSERT` on.
    CHeap4Asserts,
    /// FreeRTOS's own `heap_2.c`, gcc -O2, `configASSERT` empty.
    CHeap2,
    /// FreeRTOS's own `heap_2.c`, gcc -O2, `configASSERT` on.
    CHeap2Asserts,
}

impl Kind {
    /// Every allocator (the no-op one included), in table order.
    pub const ALL: [Kind; 22] = [
        Kind::Noop,
        Kind::Heap4,
        Kind::Heap4Locked,
        Kind::Heap4C,
        Kind::Heap4Trusted,
        Kind::Heap4Tree,
        Kind::Heap4TreeC,
        Kind::Heap4HybridC,
        Kind::Heap2,
        Kind::Heap2Tree,
        Kind::Heap5x1,
        Kind::Heap5x2,
        Kind::Talc,
        Kind::Rlsf,
        Kind::LinkedList,
        Kind::Buddy,
        Kind::Pool,
        Kind::HeaplessPool,
        Kind::CHeap4,
        Kind::CHeap4Asserts,
        Kind::CHeap2,
        Kind::CHeap2Asserts,
    ];

    /// FreeRTOS's C heaps, compiled from `../shared/reference/freertos` at benchmark time.
    pub const C_HEAPS: [Kind; 4] = [
        Kind::CHeap4,
        Kind::CHeap4Asserts,
        Kind::CHeap2,
        Kind::CHeap2Asserts,
    ];

    /// The C build of a [`C_HEAPS`](Self::C_HEAPS) kind.
    pub fn c_build(self) -> Option<crate::freertos::Build> {
        let (scheme, asserts) = match self {
            Kind::CHeap4 => (4, false),
            Kind::CHeap4Asserts => (4, true),
            Kind::CHeap2 => (2, false),
            Kind::CHeap2Asserts => (2, true),
            _ => return None,
        };
        Some(crate::freertos::Build { scheme, asserts })
    }

    /// The fixed-block pools, measured on the `pool` workloads.
    pub const POOLS: [Kind; 2] = [Kind::Pool, Kind::HeaplessPool];

    /// Whether this is a fixed-block pool.
    pub fn is_pool(self) -> bool {
        Self::POOLS.contains(&self)
    }

    /// The general-purpose allocators in Rust (without the no-op baseline, the pools and the C
    /// heaps).
    pub fn measured() -> impl Iterator<Item = Kind> {
        Self::ALL.into_iter().filter(|k| {
            !matches!(k, Kind::Noop | Kind::Heap4Trusted) && !k.is_pool() && k.c_build().is_none()
        })
    }

    /// The command-line / results name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Noop => "noop",
            Kind::Heap4 => "heap4",
            Kind::Heap4C => "heap4-c",
            Kind::Heap4Trusted => "heap4-trusted",
            Kind::Heap4Locked => "heap4-locked",
            Kind::Heap4Tree => "heap4-tree",
            Kind::Heap4TreeC => "heap4-tree-c",
            Kind::Heap4HybridC => "heap4-hybrid-c",
            Kind::Heap2 => "heap2",
            Kind::Heap2Tree => "heap2-tree",
            Kind::Heap5x1 => "heap5x1",
            Kind::Heap5x2 => "heap5x2",
            Kind::Talc => "talc",
            Kind::Rlsf => "rlsf",
            Kind::LinkedList => "linked-list",
            Kind::Buddy => "buddy",
            Kind::Pool => "pool",
            Kind::HeaplessPool => "heapless-pool",
            Kind::CHeap4 => "c-heap4",
            Kind::CHeap4Asserts => "c-heap4-asserts",
            Kind::CHeap2 => "c-heap2",
            Kind::CHeap2Asserts => "c-heap2-asserts",
        }
    }

    /// Parses a command-line / results name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A longer label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Noop => "no-op baseline",
            Kind::Heap4 => "rtos-heap Heap4 (Layout API)",
            Kind::Heap4C => "rtos-heap Heap4 (malloc/free API)",
            Kind::Heap4Trusted => "rtos-heap Heap4 (malloc/free_trusted: FreeRTOS's checks only)",
            Kind::Heap4Locked => "rtos-heap LockedHeap<Heap4> (GlobalAlloc, no-op lock)",
            Kind::Heap4Tree => "rtos-heap Heap4, AddressTree (Layout API)",
            Kind::Heap4TreeC => "rtos-heap Heap4, AddressTree (malloc/free API)",
            Kind::Heap4HybridC => "rtos-heap Heap4, Hybrid (malloc/free API)",
            Kind::Heap2 => "rtos-heap Heap2",
            Kind::Heap2Tree => "rtos-heap Heap2, SizeTree",
            Kind::Heap5x1 => "rtos-heap Heap5, 1 region",
            Kind::Heap5x2 => "rtos-heap Heap5, 2 regions",
            Kind::Talc => "talc 5.1.1",
            Kind::Rlsf => "rlsf 0.2.3",
            Kind::LinkedList => "linked_list_allocator 0.10.6",
            Kind::Buddy => "buddy_system_allocator 0.13.0",
            Kind::Pool => "rtos-heap Pool",
            Kind::HeaplessPool => "heapless 0.9.4 pool (box_pool!)",
            Kind::CHeap4 => "FreeRTOS heap_4.c, gcc -O2, asserts off",
            Kind::CHeap4Asserts => "FreeRTOS heap_4.c, gcc -O2, asserts on",
            Kind::CHeap2 => "FreeRTOS heap_2.c, gcc -O2, asserts off",
            Kind::CHeap2Asserts => "FreeRTOS heap_2.c, gcc -O2, asserts on",
        }
    }
}

/// Bytes between the two regions of [`Kind::Heap5x2`].
pub const HEAP5_GAP: usize = 4096;

/// Memory owned by a subject: `len` bytes aligned to 4 KiB from the system allocator, released on
/// drop. Every allocator under test gets the same alignment, so none loses bytes to aligning its start.
pub struct Memory {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Memory {
    /// `len` bytes (at least 1) aligned to 4096.
    pub fn new(len: usize) -> Memory {
        let layout = Layout::from_size_align(len.max(1), 4096).expect("region size");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Memory { ptr, layout }
    }

    /// Start of the memory.
    pub fn start(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Whether the memory is empty (never: at least one byte is allocated).
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated in `new` with exactly `layout`.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// An allocator together with the memory it manages. Field order matters: the allocator is dropped
/// before its memory.
pub struct Subject<A> {
    /// The allocator.
    pub heap: A,
    /// Its memory.
    pub memory: Memory,
}

/// The no-op allocator.
#[derive(Debug, Default)]
pub struct Noop;

impl BenchAlloc for Noop {
    #[inline(never)]
    fn alloc(&mut self, _size: usize, align: usize) -> *mut u8 {
        // A non-null, suitably aligned address that is never dereferenced.
        core::ptr::without_provenance_mut(align)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
        core::hint::black_box(ptr);
    }
}

/// Declares a subject type over an rtos-heap scheme through its C-shaped API (`malloc` /
/// `free(ptr, None)`, what `pvPortMalloc` / `vPortFree` do). One named type per scheme, so that
/// profiles and symbol tables tell the schemes apart.
macro_rules! c_api_subject {
    ($(#[$m:meta])* $name:ident, $heap:ty) => {
        $(#[$m])*
        pub struct $name(pub $heap);

        impl BenchAlloc for $name {
            #[inline(never)]
            fn alloc(&mut self, size: usize, _align: usize) -> *mut u8 {
                // Workloads ask for alignment 8 = portBYTE_ALIGNMENT, which malloc always gives.
                self.0.malloc(size).map_or(core::ptr::null_mut(), NonNull::as_ptr)
            }

            #[inline(never)]
            unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
                // SAFETY: forwarded contract.
                let r = unsafe { self.0.free(ptr, None) };
                debug_assert!(r.is_ok());
            }
        }
    };
}

/// Declares a subject type over an rtos-heap scheme through its Rust API (`allocate(Layout)` /
/// `free(ptr, Some(layout))`, the path of `LockedHeap`'s `GlobalAlloc`).
macro_rules! rust_api_subject {
    ($(#[$m:meta])* $name:ident, $heap:ty) => {
        $(#[$m])*
        pub struct $name(pub $heap);

        impl BenchAlloc for $name {
            #[inline(never)]
            fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
                // SAFETY: workloads use power-of-two alignments and small sizes.
                let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
                self.0.allocate(layout).map_or(core::ptr::null_mut(), NonNull::as_ptr)
            }

            #[inline(never)]
            unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) {
                // SAFETY: as in `alloc`.
                let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
                // SAFETY: forwarded contract.
                let r = unsafe { self.0.free(ptr, Some(layout)) };
                debug_assert!(r.is_ok());
            }
        }
    };
}

rust_api_subject!(
    /// rtos-heap's Heap4, Rust API ([`Kind::Heap4`]).
    Heap4Layout,
    Heap4<Native>
);
c_api_subject!(
    /// rtos-heap's Heap4, C-shaped API ([`Kind::Heap4C`]).
    Heap4Malloc,
    Heap4<Native>
);
/// A lock that does nothing: measures [`rtos_heap::LockedHeap`]'s own cost (single-threaded
/// benchmark only).
pub struct NoLock;

// SAFETY: used by one thread only (the benchmark replay), where no exclusion is needed.
unsafe impl lock_api::RawMutex for NoLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: NoLock = NoLock;
    type GuardMarker = lock_api::GuardNoSend;
    #[inline(always)]
    fn lock(&self) {}
    #[inline(always)]
    fn try_lock(&self) -> bool {
        true
    }
    #[inline(always)]
    unsafe fn unlock(&self) {}
}

/// rtos-heap's `LockedHeap` over Heap4 with [`NoLock`] ([`Kind::Heap4Locked`]).
pub struct Heap4LockedSubject(pub rtos_heap::LockedHeap<Heap4<Native>, NoLock>);

impl BenchAlloc for Heap4LockedSubject {
    #[inline(never)]
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: workloads use power-of-two alignments and non-zero sizes.
        unsafe { GlobalAlloc::alloc(&self.0, Layout::from_size_align_unchecked(size, align)) }
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: forwarded contract; the layout is the one the block was allocated with.
        unsafe {
            GlobalAlloc::dealloc(
                &self.0,
                ptr.as_ptr(),
                Layout::from_size_align_unchecked(size, align),
            )
        }
    }
}

/// rtos-heap's `LockedHeap<Heap4>` with a no-op lock ([`Kind::Heap4Locked`]).
pub fn heap4_locked(size: usize) -> Subject<Heap4LockedSubject> {
    let memory = Memory::new(size);
    let heap = rtos_heap::LockedHeap::new(heap4_over(&memory));
    Subject {
        heap: Heap4LockedSubject(heap),
        memory,
    }
}

/// rtos-heap's Heap4 through `malloc` / `free_trusted` ([`Kind::Heap4Trusted`]).
pub struct Heap4TrustedSubject(pub Heap4<Native>);

impl BenchAlloc for Heap4TrustedSubject {
    #[inline(never)]
    fn alloc(&mut self, size: usize, _align: usize) -> *mut u8 {
        self.0
            .malloc(size)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
        // SAFETY: forwarded contract: `ptr` is a live block of this heap.
        let r = unsafe { self.0.free_trusted(ptr) };
        debug_assert!(r.is_ok());
    }
}

rust_api_subject!(
    /// rtos-heap's Heap4 with the tree index, Rust API ([`Kind::Heap4Tree`]).
    Heap4TreeLayout,
    Heap4<Native, AddressTree>
);
c_api_subject!(
    /// rtos-heap's Heap4 with the tree index, C-shaped API ([`Kind::Heap4TreeC`]).
    Heap4TreeMalloc,
    Heap4<Native, AddressTree>
);
c_api_subject!(
    /// rtos-heap's Heap4 with the hybrid index, C-shaped API ([`Kind::Heap4HybridC`]).
    Heap4HybridMalloc,
    Heap4<Native, Hybrid>
);
rust_api_subject!(
    /// rtos-heap's Heap2 ([`Kind::Heap2`]).
    Heap2Layout,
    Heap2<Native>
);
rust_api_subject!(
    /// rtos-heap's Heap2 with the size tree ([`Kind::Heap2Tree`]).
    Heap2TreeLayout,
    Heap2<Native, SizeTree>
);
rust_api_subject!(
    /// rtos-heap's Heap5 over one region ([`Kind::Heap5x1`]).
    Heap5x1Layout,
    Heap5<Native, 1>
);
rust_api_subject!(
    /// rtos-heap's Heap5 over two regions ([`Kind::Heap5x2`]).
    Heap5x2Layout,
    Heap5<Native, 2>
);

/// talc's allocator core with a manually claimed region.
pub type TalcHeap = talc::base::Talc<talc::source::Manual, talc::DefaultBinning>;

/// talc ([`Kind::Talc`]).
pub struct TalcSubject(pub TalcHeap);

impl BenchAlloc for TalcSubject {
    #[inline(never)]
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: power-of-two alignment, non-zero size (every workload asks for at least 8 bytes).
        unsafe {
            let layout = Layout::from_size_align_unchecked(size, align);
            self.0
                .allocate(layout)
                .map_or(core::ptr::null_mut(), NonNull::as_ptr)
        }
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: forwarded contract; the layout is the allocation's.
        unsafe {
            self.0
                .deallocate(ptr.as_ptr(), Layout::from_size_align_unchecked(size, align))
        }
    }
}

/// The rlsf configuration measured.
pub type RlsfHeap = rlsf::Tlsf<'static, u16, u32, 16, 32>;

/// rlsf ([`Kind::Rlsf`]).
pub struct RlsfSubject(pub RlsfHeap);

impl BenchAlloc for RlsfSubject {
    #[inline(never)]
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: power-of-two alignment, small size.
        let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
        self.0
            .allocate(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, align: usize) {
        // SAFETY: forwarded contract; `align` is the allocation's.
        unsafe { self.0.deallocate(ptr, align) }
    }
}

/// linked_list_allocator ([`Kind::LinkedList`]).
pub struct LinkedListSubject(pub linked_list_allocator::Heap);

impl BenchAlloc for LinkedListSubject {
    #[inline(never)]
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: power-of-two alignment, small size.
        let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
        self.0
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: forwarded contract; the layout is the allocation's.
        unsafe {
            self.0
                .deallocate(ptr, Layout::from_size_align_unchecked(size, align))
        }
    }
}

/// buddy_system_allocator ([`Kind::Buddy`]).
pub struct BuddySubject(pub buddy_system_allocator::Heap<32>);

impl BenchAlloc for BuddySubject {
    #[inline(never)]
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: power-of-two alignment, small size.
        let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
        self.0
            .alloc(layout)
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: forwarded contract; the layout is the allocation's.
        unsafe {
            self.0
                .dealloc(ptr, Layout::from_size_align_unchecked(size, align))
        }
    }
}

impl<A: BenchAlloc> BenchAlloc for Subject<A> {
    #[inline(always)]
    fn alloc(&mut self, size: usize, align: usize) -> *mut u8 {
        self.heap.alloc(size, align)
    }

    #[inline(always)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, size: usize, align: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.heap.free(ptr, size, align) }
    }
}

/// Builds a fresh subject of kind `$kind` over `$size` bytes, binds it to `$s` and evaluates
/// `$body` with it (monomorphised once per allocator, so the replay is statically dispatched).
#[macro_export]
macro_rules! with_subject {
    ($kind:expr, $size:expr, |$s:ident| $body:expr) => {{
        use $crate::subjects as __s;
        let __size: usize = $size;
        match $kind {
            __s::Kind::Noop => {
                let mut $s = __s::noop(__size);
                $body
            }
            __s::Kind::Heap4 => {
                let mut $s = __s::heap4(__size);
                $body
            }
            __s::Kind::Heap4C => {
                let mut $s = __s::heap4_c(__size);
                $body
            }
            __s::Kind::Heap4Locked => {
                let mut $s = __s::heap4_locked(__size);
                $body
            }
            __s::Kind::Heap4Trusted => {
                let mut $s = __s::heap4_trusted(__size);
                $body
            }
            __s::Kind::Heap4Tree => {
                let mut $s = __s::heap4_tree(__size);
                $body
            }
            __s::Kind::Heap4TreeC => {
                let mut $s = __s::heap4_tree_c(__size);
                $body
            }
            __s::Kind::Heap4HybridC => {
                let mut $s = __s::heap4_hybrid_c(__size);
                $body
            }
            __s::Kind::Heap2 => {
                let mut $s = __s::heap2(__size);
                $body
            }
            __s::Kind::Heap2Tree => {
                let mut $s = __s::heap2_tree(__size);
                $body
            }
            __s::Kind::Heap5x1 => {
                let mut $s = __s::heap5x1(__size);
                $body
            }
            __s::Kind::Heap5x2 => {
                let mut $s = __s::heap5x2(__size);
                $body
            }
            __s::Kind::Talc => {
                let mut $s = __s::talc(__size);
                $body
            }
            __s::Kind::Rlsf => {
                let mut $s = __s::rlsf(__size);
                $body
            }
            __s::Kind::LinkedList => {
                let mut $s = __s::linked_list(__size);
                $body
            }
            __s::Kind::Buddy => {
                let mut $s = __s::buddy(__size);
                $body
            }
            __s::Kind::Pool => {
                let mut $s = __s::pool(__size);
                $body
            }
            __s::Kind::HeaplessPool => {
                if __size / __s::POOL_BLOCKS <= 32 {
                    let mut $s = __s::heapless_pool32();
                    $body
                } else {
                    let mut $s = __s::heapless_pool128();
                    $body
                }
            }
            __s::Kind::CHeap4 | __s::Kind::CHeap4Asserts => {
                let mut $s = __s::c_heap4($kind, __size);
                $body
            }
            __s::Kind::CHeap2 | __s::Kind::CHeap2Asserts => {
                let mut $s = __s::c_heap2($kind, __size);
                $body
            }
        }
    }};
}

/// The no-op baseline (owns a token byte of memory, so every subject has the same shape).
pub fn noop(_size: usize) -> Subject<Noop> {
    Subject {
        heap: Noop,
        memory: Memory::new(1),
    }
}

fn heap4_over(memory: &Memory) -> Heap4<Native> {
    let mut h = Heap4::<Native>::new();
    // SAFETY: `memory` is owned by the subject built around this heap and outlives it.
    unsafe { h.init_from_raw(memory.start(), memory.len()) }.expect("heap4 init");
    h
}

/// rtos-heap Heap4 over `size` bytes, Rust API.
pub fn heap4(size: usize) -> Subject<Heap4Layout> {
    let memory = Memory::new(size);
    Subject {
        heap: Heap4Layout(heap4_over(&memory)),
        memory,
    }
}

/// rtos-heap Heap4 over `size` bytes, C-shaped API.
pub fn heap4_c(size: usize) -> Subject<Heap4Malloc> {
    let memory = Memory::new(size);
    Subject {
        heap: Heap4Malloc(heap4_over(&memory)),
        memory,
    }
}

/// rtos-heap's Heap4 through `malloc` / `free_trusted` ([`Kind::Heap4Trusted`]).
pub fn heap4_trusted(size: usize) -> Subject<Heap4TrustedSubject> {
    let memory = Memory::new(size);
    let heap = heap4_over(&memory);
    Subject {
        heap: Heap4TrustedSubject(heap),
        memory,
    }
}

fn heap4_tree_over(memory: &Memory) -> Heap4<Native, AddressTree> {
    let mut h = Heap4::<Native, AddressTree>::new();
    // SAFETY: `memory` is owned by the subject built around this heap and outlives it.
    unsafe { h.init_from_raw(memory.start(), memory.len()) }.expect("heap4 tree init");
    h
}

/// rtos-heap Heap4 with the tree index over `size` bytes, Rust API.
pub fn heap4_tree(size: usize) -> Subject<Heap4TreeLayout> {
    let memory = Memory::new(size);
    Subject {
        heap: Heap4TreeLayout(heap4_tree_over(&memory)),
        memory,
    }
}

/// rtos-heap Heap4 with the tree index over `size` bytes, C-shaped API.
pub fn heap4_tree_c(size: usize) -> Subject<Heap4TreeMalloc> {
    let memory = Memory::new(size);
    Subject {
        heap: Heap4TreeMalloc(heap4_tree_over(&memory)),
        memory,
    }
}

/// rtos-heap's Heap4 with the hybrid index through `malloc` / `free` ([`Kind::Heap4HybridC`]).
pub fn heap4_hybrid_c(size: usize) -> Subject<Heap4HybridMalloc> {
    let memory = Memory::new(size);
    let mut h = Heap4::<Native, Hybrid>::new();
    // SAFETY: the region is the subject's memory, which outlives the heap.
    unsafe { h.init_from_raw(memory.start(), memory.len()) }.expect("heap4 hybrid init");
    Subject {
        heap: Heap4HybridMalloc(h),
        memory,
    }
}

/// rtos-heap Heap2 over `size` bytes.
pub fn heap2(size: usize) -> Subject<Heap2Layout> {
    let memory = Memory::new(size);
    let mut h = Heap2::<Native>::new();
    // SAFETY: `memory` is owned by the subject and outlives the heap.
    unsafe { h.init_from_raw(memory.start(), memory.len()) }.expect("heap2 init");
    Subject {
        heap: Heap2Layout(h),
        memory,
    }
}

/// rtos-heap Heap2 with the size tree over `size` bytes.
pub fn heap2_tree(size: usize) -> Subject<Heap2TreeLayout> {
    let memory = Memory::new(size);
    let mut h = Heap2::<Native, SizeTree>::new();
    // SAFETY: `memory` is owned by the subject and outlives the heap.
    unsafe { h.init_from_raw(memory.start(), memory.len()) }.expect("heap2 init");
    Subject {
        heap: Heap2TreeLayout(h),
        memory,
    }
}

/// rtos-heap Heap5 over one region of `size` bytes.
pub fn heap5x1(size: usize) -> Subject<Heap5x1Layout> {
    let memory = Memory::new(size);
    let mut h = Heap5::<Native, 1>::new();
    let regions = [HeapRegion {
        start: memory.start().as_ptr(),
        size,
    }];
    // SAFETY: the region is the subject's memory, which outlives the heap.
    unsafe { h.define_regions_raw(&regions) }.expect("heap5 regions");
    Subject {
        heap: Heap5x1Layout(h),
        memory,
    }
}

/// rtos-heap Heap5 over two regions of `size / 2` bytes each, [`HEAP5_GAP`] apart.
pub fn heap5x2(size: usize) -> Subject<Heap5x2Layout> {
    let memory = Memory::new(size + HEAP5_GAP);
    let mut h = Heap5::<Native, 2>::new();
    let half = size / 2;
    let start = memory.start().as_ptr();
    let regions = [
        HeapRegion { start, size: half },
        HeapRegion {
            start: start.wrapping_add(half + HEAP5_GAP),
            size: size - half,
        },
    ];
    // SAFETY: both regions lie inside the subject's memory, which outlives the heap.
    unsafe { h.define_regions_raw(&regions) }.expect("heap5 regions");
    Subject {
        heap: Heap5x2Layout(h),
        memory,
    }
}

/// talc over `size` bytes.
pub fn talc(size: usize) -> Subject<TalcSubject> {
    let memory = Memory::new(size);
    let mut t = TalcHeap::new(talc::source::Manual);
    // SAFETY: the region is the subject's memory, which outlives the allocator.
    unsafe { t.claim(memory.start().as_ptr(), size) }.expect("talc claim");
    Subject {
        heap: TalcSubject(t),
        memory,
    }
}

/// rlsf over `size` bytes.
pub fn rlsf(size: usize) -> Subject<RlsfSubject> {
    let memory = Memory::new(size);
    let mut t = RlsfHeap::new();
    let block = core::ptr::slice_from_raw_parts_mut(memory.start().as_ptr(), size);
    // SAFETY: the block is the subject's memory, which outlives the allocator.
    unsafe { t.insert_free_block_ptr(NonNull::new(block).expect("non-null")) };
    Subject {
        heap: RlsfSubject(t),
        memory,
    }
}

/// linked_list_allocator over `size` bytes.
pub fn linked_list(size: usize) -> Subject<LinkedListSubject> {
    let memory = Memory::new(size);
    let mut h = linked_list_allocator::Heap::empty();
    // SAFETY: the region is the subject's memory, which outlives the allocator.
    unsafe { h.init(memory.start().as_ptr(), size) };
    Subject {
        heap: LinkedListSubject(h),
        memory,
    }
}

/// buddy_system_allocator over `size` bytes.
pub fn buddy(size: usize) -> Subject<BuddySubject> {
    let memory = Memory::new(size);
    let mut h = buddy_system_allocator::Heap::<32>::new();
    // SAFETY: the region is the subject's memory, which outlives the allocator.
    unsafe { h.init(memory.start().as_ptr() as usize, size) };
    Subject {
        heap: BuddySubject(h),
        memory,
    }
}

/// Size in bytes of each allocator's own object (outside its region), for the memory table.
pub fn object_size(kind: Kind) -> usize {
    match kind {
        Kind::Noop => 0,
        Kind::Heap4 | Kind::Heap4C | Kind::Heap4Trusted => size_of::<Heap4<Native>>(),
        Kind::Heap4Locked => size_of::<rtos_heap::LockedHeap<Heap4<Native>, NoLock>>(),
        Kind::Heap4Tree | Kind::Heap4TreeC => size_of::<Heap4<Native, AddressTree>>(),
        Kind::Heap4HybridC => size_of::<Heap4<Native, Hybrid>>(),
        Kind::Heap2 => size_of::<Heap2<Native>>(),
        Kind::Heap2Tree => size_of::<Heap2<Native, SizeTree>>(),
        Kind::Heap5x1 => size_of::<Heap5<Native, 1>>(),
        Kind::Heap5x2 => size_of::<Heap5<Native, 2>>(),
        Kind::Talc => size_of::<TalcHeap>(),
        Kind::Rlsf => size_of::<RlsfHeap>(),
        Kind::LinkedList => size_of::<linked_list_allocator::Heap>(),
        Kind::Buddy => size_of::<buddy_system_allocator::Heap<32>>(),
        Kind::Pool => size_of::<rtos_heap::Pool>(),
        Kind::HeaplessPool => 0,
        // The C heaps' state is their library's statics (a few words, outside the heap array).
        Kind::CHeap4 | Kind::CHeap4Asserts | Kind::CHeap2 | Kind::CHeap2Asserts => 0,
    }
}

/// Blocks in every `pool` workload's pool (`workloads.md`).
pub const POOL_BLOCKS: usize = 256;

/// rtos-heap's fixed-block pool ([`Kind::Pool`]).
pub struct PoolSubject(pub rtos_heap::Pool);

impl BenchAlloc for PoolSubject {
    #[inline(never)]
    fn alloc(&mut self, _size: usize, _align: usize) -> *mut u8 {
        self.0
            .alloc_block()
            .map_or(core::ptr::null_mut(), NonNull::as_ptr)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
        // SAFETY: forwarded contract: `ptr` is a live block of this pool.
        let r = unsafe { self.0.free_block(ptr) };
        debug_assert!(r.is_ok());
    }
}

/// rtos-heap's pool of [`POOL_BLOCKS`] blocks of `size / POOL_BLOCKS` bytes (align 8), over the
/// bytes [`Pool::region_size`](rtos_heap::Pool::region_size) asks for (the blocks and the pool's
/// allocation bitmap).
pub fn pool(size: usize) -> Subject<PoolSubject> {
    let block = Layout::from_size_align(size / POOL_BLOCKS, 8).expect("block layout");
    let len = rtos_heap::Pool::region_size(block, POOL_BLOCKS);
    let memory = Memory::new(len);
    let mut p = rtos_heap::Pool::new();
    // SAFETY: the region is the subject's memory, which outlives the pool.
    unsafe { p.init_from_raw(memory.start(), len, block) }.expect("pool init");
    assert_eq!(p.capacity(), POOL_BLOCKS, "pool capacity");
    Subject {
        heap: PoolSubject(p),
        memory,
    }
}

/// The two heapless pools (singleton types declared by `box_pool!`).
mod heapless_pools {
    #![allow(missing_docs)]
    heapless::box_pool!(HeaplessP32: core::mem::MaybeUninit<[u8; 32]>);
    heapless::box_pool!(HeaplessP128: core::mem::MaybeUninit<[u8; 128]>);
}
use heapless_pools::{HeaplessP32, HeaplessP128};

/// Declares the subject type over one `heapless` box pool.
macro_rules! heapless_subject {
    ($(#[$m:meta])* $name:ident, $pool:ident, $ctor:ident, $n:literal) => {
        $(#[$m])*
        pub struct $name;

        impl BenchAlloc for $name {
            #[inline(never)]
            fn alloc(&mut self, _size: usize, _align: usize) -> *mut u8 {
                $pool
                    .alloc(core::mem::MaybeUninit::uninit())
                    .map_or(core::ptr::null_mut(), |b| {
                        heapless::pool::boxed::Box::into_raw(b).cast()
                    })
            }

            #[inline(never)]
            unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
                // SAFETY: `ptr` came from `Box::into_raw` of this pool and is returned once.
                drop(unsafe { heapless::pool::boxed::Box::<$pool>::from_raw(ptr.as_ptr().cast()) });
            }
        }

        /// The process-wide heapless pool of this block size, given its [`POOL_BLOCKS`] blocks the
        /// first time. Blocks a previous subject did not free stay taken.
        pub fn $ctor() -> Subject<$name> {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                for _ in 0..POOL_BLOCKS {
                    let block: &'static mut heapless::pool::boxed::BoxBlock<
                        core::mem::MaybeUninit<[u8; $n]>,
                    > = Box::leak(Box::new(heapless::pool::boxed::BoxBlock::new()));
                    $pool.manage(block);
                }
            });
            Subject {
                heap: $name,
                memory: Memory::new(1),
            }
        }
    };
}

heapless_subject!(
    /// heapless pool of 32-byte blocks ([`Kind::HeaplessPool`]).
    HeaplessPool32,
    HeaplessP32,
    heapless_pool32,
    32
);
heapless_subject!(
    /// heapless pool of 128-byte blocks ([`Kind::HeaplessPool`]).
    HeaplessPool128,
    HeaplessP128,
    heapless_pool128,
    128
);

/// Declares the subject type over one FreeRTOS C heap (one named type per scheme, so that
/// profiles and symbol tables tell them apart).
macro_rules! c_heap_subject {
    ($(#[$m:meta])* $name:ident, $ctor:ident) => {
        $(#[$m])*
        pub struct $name(pub crate::freertos::CHeap);

        impl BenchAlloc for $name {
            #[inline(never)]
            fn alloc(&mut self, size: usize, _align: usize) -> *mut u8 {
                // Workloads ask for alignment 8 = portBYTE_ALIGNMENT, which pvPortMalloc gives.
                self.0.malloc(size)
            }

            #[inline(never)]
            unsafe fn free(&mut self, ptr: NonNull<u8>, _size: usize, _align: usize) {
                // SAFETY: forwarded contract.
                unsafe { self.0.free(ptr.as_ptr()) }
            }
        }

        /// The C heap of `kind` (one of [`Kind::C_HEAPS`]) for a heap of `size` bytes (its
        /// `configTOTAL_HEAP_SIZE`). Panics when it cannot be built: callers check
        /// [`c_available`] first.
        pub fn $ctor(kind: Kind, size: usize) -> Subject<$name> {
            let build = kind.c_build().expect("a C heap kind");
            let heap = crate::freertos::CHeap::load(build, size)
                .unwrap_or_else(|e| panic!("{}: {e:#}", kind.name()));
            Subject {
                heap: $name(heap),
                memory: Memory::new(1),
            }
        }
    };
}

c_heap_subject!(
    /// FreeRTOS's `heap_4.c` ([`Kind::CHeap4`], [`Kind::CHeap4Asserts`]).
    CHeap4Subject,
    c_heap4
);
c_heap_subject!(
    /// FreeRTOS's `heap_2.c` ([`Kind::CHeap2`], [`Kind::CHeap2Asserts`]).
    CHeap2Subject,
    c_heap2
);

/// Whether the C heaps can be built here (`../shared/reference/freertos` and gcc): builds the
/// `heap_4` library for `size` bytes once to find out.
pub fn c_available(size: usize) -> bool {
    crate::freertos::library(
        crate::freertos::Build {
            scheme: 4,
            asserts: false,
        },
        size,
    )
    .is_ok()
}
