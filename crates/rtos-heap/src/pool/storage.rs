//! `static` memory for a pool: `N` blocks sized for `T` and their bitmap, handed out once.

use core::alloc::Layout;
use core::cell::{Cell, UnsafeCell};
use core::mem::{ManuallyDrop, MaybeUninit};

use super::Pool;

/// One block: room for a `T` or a free-list link, whichever is larger, at the stricter alignment.
#[repr(C)]
union Slot<T> {
    _value: ManuallyDrop<T>,
    _link: usize,
}

/// Memory for a pool of exactly `N` blocks sized and aligned for `T`, in a `static`, given to one
/// [`Pool`] once by [`Pool::init_storage`].
///
/// `BITMAP` is the size of the pool's allocation bitmap, one bit per block: it must be
/// `N.div_ceil(8)` — stable Rust cannot compute an array length from `N`, so it is spelled out,
/// and a wrong value fails to compile. The blocks take `N * Pool::block_layout(Layout::new::<T>())`
/// bytes, the bitmap `BITMAP` bytes, the once-only flag one more.
///
/// # Examples
///
/// ```
/// use rtos_heap::{LockedPool, Pool, PoolBox, PoolStorage};
///
/// static POOL: LockedPool = LockedPool::new(Pool::new());
/// static MEMORY: PoolStorage<[u32; 4], 100, 13> = PoolStorage::new(); // 13 = ceil(100 / 8)
///
/// POOL.lock().init_storage(&MEMORY).unwrap();
/// assert_eq!(POOL.pool_stats().capacity, 100);
/// let b = PoolBox::try_new(&POOL, [1u32, 2, 3, 4]).ok().unwrap();
/// assert_eq!(b.iter().sum::<u32>(), 10);
/// ```
///
/// A bitmap size other than `N.div_ceil(8)` is refused at compile time:
///
/// ```compile_fail,E0080
/// use rtos_heap::PoolStorage;
/// static MEMORY: PoolStorage<u64, 100, 12> = PoolStorage::new();
/// ```
#[repr(C)]
pub struct PoolStorage<T, const N: usize, const BITMAP: usize> {
    blocks: UnsafeCell<MaybeUninit<[Slot<T>; N]>>,
    bitmap: UnsafeCell<[u8; BITMAP]>,
    taken: critical_section::Mutex<Cell<bool>>,
}

// SAFETY: the memory is reachable only through `take`, which hands it out at most once (guarded by
// a critical section, so this holds on cores without compare-and-swap too). No `T` is ever read or
// dropped through the storage itself.
unsafe impl<T, const N: usize, const BITMAP: usize> Sync for PoolStorage<T, N, BITMAP> {}

impl<T, const N: usize, const BITMAP: usize> PoolStorage<T, N, BITMAP> {
    /// The layout of one block.
    pub(super) const BLOCK: Layout = Pool::block_layout(Layout::new::<T>());

    /// Compile-time checks of the parameters, referenced from [`new`](Self::new).
    const VALID: () = {
        assert!(N > 0, "PoolStorage: N must be at least 1");
        assert!(
            BITMAP == N.div_ceil(8),
            "PoolStorage: BITMAP must be N.div_ceil(8)"
        );
        assert!(
            size_of::<Slot<T>>() == Self::BLOCK.size()
                && align_of::<Slot<T>>() == Self::BLOCK.align(),
            "PoolStorage: slot layout differs from Pool::block_layout"
        );
    };

    /// Uninitialised storage, for a `static`.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        PoolStorage {
            blocks: UnsafeCell::new(MaybeUninit::uninit()),
            bitmap: UnsafeCell::new([0; BITMAP]),
            taken: critical_section::Mutex::new(Cell::new(false)),
        }
    }

    /// Whether the storage was already given to a pool.
    pub fn is_taken(&self) -> bool {
        critical_section::with(|cs| self.taken.borrow(cs).get())
    }

    /// The blocks and the bitmap, the first time only.
    pub(super) fn take(&'static self) -> Option<(*mut u8, *mut u8)> {
        let first = critical_section::with(|cs| !self.taken.borrow(cs).replace(true));
        first.then(|| {
            (
                self.blocks.get().cast::<u8>(),
                self.bitmap.get().cast::<u8>(),
            )
        })
    }
}

impl<T, const N: usize, const BITMAP: usize> Default for PoolStorage<T, N, BITMAP> {
    fn default() -> Self {
        Self::new()
    }
}
