//! `PoolBox`: a typed, owning pointer to one block of a locked pool.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use lock_api::RawMutex;

use super::{LockedPool, PoolError};
use crate::CriticalSectionRawMutex;

/// A `Box` whose memory is one block of a [`LockedPool`]: `T` is written straight into the block,
/// and dropping the box drops `T` and returns the block.
///
/// The box borrows the pool, so it cannot outlive it; `T`'s construction and drop, and the zeroing
/// of [`try_new_zeroed`](Self::try_new_zeroed), run outside the pool's lock.
///
/// # Examples
///
/// ```
/// use core::alloc::Layout;
/// use core::mem::MaybeUninit;
/// use rtos_heap::{LockedPool, Pool, PoolBox, PoolError};
///
/// #[derive(Debug)]
/// struct Frame { len: usize, data: [u8; 56] }
///
/// let pool: LockedPool = LockedPool::new(Pool::new());
/// let region = Box::leak(Box::new([MaybeUninit::uninit(); Pool::region_size(Layout::new::<Frame>(), 2)]));
/// pool.lock().init(region, Layout::new::<Frame>()).unwrap();
///
/// let mut a = PoolBox::try_new(&pool, Frame { len: 0, data: [0; 56] }).unwrap();
/// a.data[0] = 0xAA;
/// a.len = 1;
/// // Constructed in place: the closure runs after the block is taken.
/// let b = PoolBox::try_new_with(&pool, || Frame { len: 2, data: [1; 56] }).unwrap();
/// assert_eq!(pool.pool_stats().blocks_free, 0);
///
/// // The pool is exhausted: the value comes back with the error.
/// let (frame, err) = PoolBox::try_new(&pool, Frame { len: 3, data: [3; 56] }).unwrap_err();
/// assert_eq!((frame.len, err), (3, PoolError::Exhausted));
///
/// drop(a); // `Frame` dropped, block returned
/// assert_eq!(pool.pool_stats().blocks_free, 1);
/// assert_eq!(PoolBox::into_inner(b).len, 2);
/// assert_eq!(pool.pool_stats().blocks_free, 2);
/// ```
///
/// A box cannot outlive its pool:
///
/// ```compile_fail,E0515
/// use rtos_heap::{LockedPool, Pool, PoolBox};
/// fn make() -> PoolBox<'static, u32> {
///     let pool: LockedPool = LockedPool::new(Pool::new());
///     PoolBox::try_new(&pool, 1).ok().unwrap()
/// }
/// ```
pub struct PoolBox<'a, T, R: RawMutex = CriticalSectionRawMutex> {
    ptr: NonNull<T>,
    pool: &'a LockedPool<R>,
    _owns: PhantomData<T>,
}

// SAFETY: the box owns its `T` exclusively (like `Box<T>`), and the pool it returns the block to is
// `Sync` (its lock serialises every access), so sending the box sends only the `T`.
unsafe impl<T: Send, R: RawMutex + Sync> Send for PoolBox<'_, T, R> {}
// SAFETY: `&PoolBox` gives only `&T`; the pool is touched only through `&mut self` (drop).
unsafe impl<T: Sync, R: RawMutex + Sync> Sync for PoolBox<'_, T, R> {}

/// Returns a block to its pool unless defused (a panicking constructor must not leak the block).
struct ReturnOnUnwind<'a, R: RawMutex> {
    pool: &'a LockedPool<R>,
    block: NonNull<u8>,
}

impl<R: RawMutex> Drop for ReturnOnUnwind<'_, R> {
    fn drop(&mut self) {
        // SAFETY: the block was allocated for the box under construction and never exposed.
        let _ = unsafe { self.pool.free_block(self.block) };
    }
}

impl<'a, T, R: RawMutex> PoolBox<'a, T, R> {
    /// A block of `pool` big and aligned enough for `T`, uninitialised.
    fn block(pool: &'a LockedPool<R>) -> Result<NonNull<T>, PoolError> {
        let mut raw = pool.lock();
        if !raw.fits(Layout::new::<T>()) {
            return Err(PoolError::DoesNotFit);
        }
        Ok(raw.alloc_block()?.cast())
    }

    /// Moves `value` into a block of `pool`.
    ///
    /// # Errors
    /// `value` comes back with [`PoolError::Exhausted`] / [`Uninitialized`](PoolError::Uninitialized)
    /// / [`Corrupted`](PoolError::Corrupted), or with [`DoesNotFit`](PoolError::DoesNotFit) when
    /// `T` is larger or more aligned than a block.
    ///
    /// # Time complexity
    /// O(1) under the lock; moving `value` outside it.
    pub fn try_new(pool: &'a LockedPool<R>, value: T) -> Result<Self, (T, PoolError)> {
        match Self::block(pool) {
            Ok(ptr) => {
                // SAFETY: a fresh block, big and aligned enough for `T` (checked in `block`).
                unsafe { ptr.write(value) };
                Ok(PoolBox {
                    ptr,
                    pool,
                    _owns: PhantomData,
                })
            }
            Err(e) => Err((value, e)),
        }
    }

    /// Takes a block, then writes `init()`'s result into it: the closure runs only when a block is
    /// available, and its result is built directly in the block where the compiler can manage.
    /// If `init` panics, the block goes back to the pool.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new) (without calling `init`).
    pub fn try_new_with(
        pool: &'a LockedPool<R>,
        init: impl FnOnce() -> T,
    ) -> Result<Self, PoolError> {
        let ptr = Self::block(pool)?;
        let guard = ReturnOnUnwind {
            pool,
            block: ptr.cast(),
        };
        // SAFETY: a fresh block, big and aligned enough for `T`.
        unsafe { ptr.write(init()) };
        core::mem::forget(guard);
        Ok(PoolBox {
            ptr,
            pool,
            _owns: PhantomData,
        })
    }

    /// A block for `T`, uninitialised: initialise it in place through the `MaybeUninit`, then
    /// [`assume_init`](PoolBox::assume_init) (or [`write`](PoolBox::write)).
    ///
    /// ```
    /// use core::alloc::Layout;
    /// use core::mem::MaybeUninit;
    /// use rtos_heap::{LockedPool, Pool, PoolBox};
    ///
    /// let pool: LockedPool = LockedPool::new(Pool::new());
    /// let region = Box::leak(Box::new([MaybeUninit::uninit(); 4096]));
    /// pool.lock().init(region, Layout::new::<[u32; 256]>()).unwrap();
    ///
    /// let mut table = PoolBox::<[u32; 256]>::try_new_uninit(&pool).unwrap();
    /// let cells = table.as_mut_ptr().cast::<u32>();
    /// for i in 0..256 {
    ///     unsafe { cells.add(i).write(i as u32 * 3) }; // no 1 KiB temporary on the stack
    /// }
    /// let table = unsafe { table.assume_init() };
    /// assert_eq!(table[100], 300);
    /// ```
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new).
    pub fn try_new_uninit(
        pool: &'a LockedPool<R>,
    ) -> Result<PoolBox<'a, MaybeUninit<T>, R>, PoolError> {
        let ptr = Self::block(pool)?;
        Ok(PoolBox {
            ptr: ptr.cast(),
            pool,
            _owns: PhantomData,
        })
    }

    /// As [`try_new_uninit`](Self::try_new_uninit), every byte zeroed (`osPoolCAlloc`).
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new).
    pub fn try_new_zeroed(
        pool: &'a LockedPool<R>,
    ) -> Result<PoolBox<'a, MaybeUninit<T>, R>, PoolError> {
        let b = Self::try_new_uninit(pool)?;
        // SAFETY: the block holds at least `size_of::<T>()` bytes, owned by the box.
        unsafe { b.ptr.cast::<u8>().write_bytes(0, size_of::<T>()) };
        Ok(b)
    }

    /// Moves the value out and returns the block.
    pub fn into_inner(b: Self) -> T {
        let b = core::mem::ManuallyDrop::new(b);
        // SAFETY: the box holds an initialised `T`, read once; the box is not dropped.
        let value = unsafe { b.ptr.read() };
        // SAFETY: the block is this box's and no longer used: the value was moved out.
        let _ = unsafe { b.pool.free_block(b.ptr.cast()) };
        value
    }

    /// Gives up ownership without dropping `T` or returning the block: the pointer stays valid
    /// until the caller hands it to [`from_raw`](Self::from_raw) or drops `T` itself and frees the
    /// block ([`LockedPool::free_block`](crate::LockedHeap::free_block)).
    pub fn into_raw(b: Self) -> NonNull<T> {
        core::mem::ManuallyDrop::new(b).ptr
    }

    /// Takes back a pointer from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `ptr` came from `into_raw` of a box of the same `pool` (the same `T` or one with the same
    /// layout) and is not owned by anything else.
    pub unsafe fn from_raw(pool: &'a LockedPool<R>, ptr: NonNull<T>) -> Self {
        PoolBox {
            ptr,
            pool,
            _owns: PhantomData,
        }
    }

    /// The pool the block belongs to.
    pub fn pool(b: &Self) -> &'a LockedPool<R> {
        b.pool
    }
}

impl<'a, T, R: RawMutex> PoolBox<'a, MaybeUninit<T>, R> {
    /// Declares the value initialised.
    ///
    /// # Safety
    /// The `MaybeUninit<T>` must hold a valid `T`.
    pub unsafe fn assume_init(self) -> PoolBox<'a, T, R> {
        let b = core::mem::ManuallyDrop::new(self);
        PoolBox {
            ptr: b.ptr.cast(),
            pool: b.pool,
            _owns: PhantomData,
        }
    }

    /// Writes `value` and declares the box initialised.
    pub fn write(mut self, value: T) -> PoolBox<'a, T, R> {
        (*self).write(value);
        // SAFETY: just written.
        unsafe { self.assume_init() }
    }
}

impl<T, R: RawMutex> Drop for PoolBox<'_, T, R> {
    fn drop(&mut self) {
        // SAFETY: the box holds an initialised `T`, dropped once, here.
        unsafe { self.ptr.drop_in_place() };
        // SAFETY: the block is this box's, and nothing uses it after this. A refusal is
        // impossible unless the pool was reset or replaced meanwhile; it is counted by the pool.
        let _ = unsafe { self.pool.free_block(self.ptr.cast()) };
    }
}

impl<T, R: RawMutex> Deref for PoolBox<'_, T, R> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns an initialised `T`; `&self` bounds the borrow.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T, R: RawMutex> DerefMut for PoolBox<'_, T, R> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the box owns an initialised `T` exclusively; `&mut self` bounds the borrow.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T, R: RawMutex> AsRef<T> for PoolBox<'_, T, R> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T, R: RawMutex> AsMut<T> for PoolBox<'_, T, R> {
    fn as_mut(&mut self) -> &mut T {
        self
    }
}

impl<T: fmt::Debug, R: RawMutex> fmt::Debug for PoolBox<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display, R: RawMutex> fmt::Display for PoolBox<'_, T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: PartialEq, R: RawMutex> PartialEq for PoolBox<'_, T, R> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
