//! The shared driver of the heap fuzz targets: an `Arbitrary` list of actions run on a heap, every
//! allocation filled with a tag and verified when it is freed or reallocated, `check()` after every
//! action, bad frees that must be refused without changing anything, and (while the actions stay
//! within what the model knows: malloc and free) a differential against the model of the
//! model-based tests.
#![allow(dead_code)]

use std::alloc::Layout;
use std::ptr::NonNull;

use arbitrary::Arbitrary;
use rtos_heap::RawHeap;

#[path = "../../crates/rtos-heap/tests/model/mod.rs"]
pub mod model;

/// One step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Action {
    /// `malloc(size)`.
    Malloc(u16),
    /// `allocate(Layout { size, align: 1 << (align_log % 8) })` (leaves the model).
    Allocate { size: u16, align_log: u8 },
    /// `calloc(count, size)`.
    Calloc(u8, u8),
    /// Frees live block `idx % live`.
    Free(u8),
    /// Reallocates live block `idx % live` to `size` (leaves the model).
    Realloc { idx: u8, size: u16 },
    /// Frees a pointer `delta` bytes into live block `idx` (1..=255): must be refused.
    Interior { idx: u8, delta: u8 },
    /// Frees a block freed earlier, if no live block starts there: must be refused.
    DoubleFree(u8),
    /// `reset_min_ever_free`.
    ResetMin,
}

/// What the differential compares: a model answering malloc/free with block offsets.
pub trait Model {
    fn malloc(&mut self, n: usize) -> Option<usize>;
    fn free(&mut self, off: usize);
    fn free_bytes(&self) -> usize;
}

impl Model for model::FirstFit {
    fn malloc(&mut self, n: usize) -> Option<usize> {
        model::FirstFit::malloc(self, n)
    }
    fn free(&mut self, off: usize) {
        model::FirstFit::free(self, off)
    }
    fn free_bytes(&self) -> usize {
        self.stats().free
    }
}

impl Model for model::BestFit {
    fn malloc(&mut self, n: usize) -> Option<usize> {
        model::BestFit::malloc(self, n)
    }
    fn free(&mut self, off: usize) {
        model::BestFit::free(self, off)
    }
    fn free_bytes(&self) -> usize {
        self.stats().free
    }
}

struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
}

fn fill(l: &Live) {
    // SAFETY: a live block of `layout.size()` bytes owned by the driver.
    unsafe { l.ptr.as_ptr().write_bytes(l.tag, l.layout.size()) };
}

fn verify(l: &Live) {
    // SAFETY: as `fill`.
    let b = unsafe { std::slice::from_raw_parts(l.ptr.as_ptr(), l.layout.size()) };
    assert!(
        b.iter().all(|&x| x == l.tag),
        "block {:p} overwritten",
        l.ptr
    );
}

/// Runs `actions` on `heap`. `base`: the heap base (payload = base + model offset + header) for
/// the differential; `model` is dropped at the first action it cannot follow. `refuses`: whether
/// the heap refuses bad frees (heap_1 accepts every free and ignores it).
pub fn run<H: RawHeap>(
    heap: &mut H,
    actions: &[Action],
    header: usize,
    base: usize,
    mut model: Option<&mut dyn Model>,
    refuses: bool,
) {
    let mut live: Vec<Live> = Vec::new();
    let mut freed: Vec<NonNull<u8>> = Vec::new();
    let mut tag = 0u8;
    let mut touched = false;
    for &a in actions.iter().take(512) {
        tag = tag.wrapping_add(1) | 1;
        match a {
            Action::Malloc(n) => {
                let n = n as usize;
                let r = heap.malloc(n);
                if let Some(m) = model.as_deref_mut() {
                    let want = m.malloc(n).map(|off| base + off + header);
                    assert_eq!(r.ok().map(|p| p.as_ptr() as usize), want, "malloc({n})");
                }
                if let Ok(ptr) = r {
                    let l = Live {
                        ptr,
                        layout: Layout::from_size_align(n, 1).unwrap(),
                        tag,
                    };
                    fill(&l);
                    live.push(l);
                }
            }
            Action::Allocate { size, align_log } => {
                model = None;
                let layout = Layout::from_size_align(size as usize, 1 << (align_log % 8)).unwrap();
                if let Ok(ptr) = heap.allocate(layout) {
                    assert_eq!(ptr.as_ptr() as usize % layout.align(), 0);
                    let l = Live { ptr, layout, tag };
                    fill(&l);
                    live.push(l);
                }
            }
            Action::Calloc(c, s) => {
                let n = c as usize * s as usize;
                let r = heap.calloc(c as usize, s as usize);
                if let Some(m) = model.as_deref_mut() {
                    let want = m.malloc(n).map(|off| base + off + header);
                    assert_eq!(r.ok().map(|p| p.as_ptr() as usize), want, "calloc");
                }
                if let Ok(ptr) = r {
                    // SAFETY: a fresh block of `n` bytes.
                    let b = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), n) };
                    assert!(b.iter().all(|&x| x == 0), "calloc not zeroed");
                    let l = Live {
                        ptr,
                        layout: Layout::from_size_align(n, 1).unwrap(),
                        tag,
                    };
                    fill(&l);
                    live.push(l);
                }
            }
            Action::Free(i) if !live.is_empty() => {
                let l = live.swap_remove(i as usize % live.len());
                verify(&l);
                // SAFETY: a live block, freed once.
                unsafe { heap.free(l.ptr, Some(l.layout)) }.expect("free of a live block");
                if let Some(m) = model.as_deref_mut() {
                    m.free(l.ptr.as_ptr() as usize - base - header);
                }
                freed.push(l.ptr);
            }
            Action::Realloc { idx, size } if !live.is_empty() => {
                model = None;
                let k = idx as usize % live.len();
                verify(&live[k]);
                let new_size = size as usize;
                // SAFETY: a live block made with its layout.
                let r = unsafe { heap.reallocate(live[k].ptr, live[k].layout, new_size) };
                if let Ok(q) = r {
                    let keep = live[k].layout.size().min(new_size);
                    // SAFETY: the (possibly moved) live block.
                    let b = unsafe { std::slice::from_raw_parts(q.as_ptr(), keep) };
                    assert!(b.iter().all(|&x| x == live[k].tag), "realloc lost data");
                    live[k].ptr = q;
                    live[k].layout =
                        Layout::from_size_align(new_size, live[k].layout.align()).unwrap();
                    live[k].tag = tag;
                    fill(&live[k]);
                } else {
                    verify(&live[k]);
                }
            }
            Action::Interior { idx, delta } if refuses && !live.is_empty() && delta != 0 => {
                let l = &live[idx as usize % live.len()];
                let before = heap.free_bytes();
                let p = NonNull::new(l.ptr.as_ptr().wrapping_add(delta as usize)).unwrap();
                // A pointer past the block that is another live block's start would free that
                // block legitimately: not tried.
                if !live.iter().any(|o| o.ptr == p) {
                    // SAFETY: a pointer into (or just past) a live block: refused (the point).
                    let r = unsafe { heap.free(p, None) };
                    assert!(r.is_err(), "interior pointer {delta} accepted");
                    assert_eq!(heap.free_bytes(), before);
                }
            }
            Action::DoubleFree(i) if refuses && !freed.is_empty() => {
                let p = freed[i as usize % freed.len()];
                let inside_live = live.iter().any(|o| {
                    let s = o.ptr.as_ptr() as usize;
                    let a = p.as_ptr() as usize;
                    // A stale pointer equal to (or whose header lies in) a live block would free
                    // the new owner's block: out of contract, not tried.
                    a + header >= s && a < s + o.layout.size().max(1) + header
                });
                if !inside_live {
                    let before = heap.free_bytes();
                    // SAFETY: a stale pointer no live block owns: refused (the point).
                    let r = unsafe { heap.free(p, None) };
                    assert!(r.is_err(), "double free accepted");
                    assert_eq!(heap.free_bytes(), before);
                }
            }
            Action::ResetMin => heap.reset_min_ever_free(),
            _ => {}
        }
        heap.check().expect("check() after an action");
        touched |= matches!(a, Action::Malloc(_) | Action::Calloc(..));
        // heap_2/4 lay their blocks out at the first allocation (free bytes 0 before).
        if let (Some(m), true) = (model.as_deref(), touched) {
            assert_eq!(heap.free_bytes(), m.free_bytes(), "free bytes vs model");
        }
        assert!(heap.min_ever_free_bytes() <= heap.free_bytes());
    }
    for l in live.drain(..) {
        verify(&l);
        // SAFETY: live blocks, freed once.
        unsafe { heap.free(l.ptr, Some(l.layout)) }.expect("final free");
    }
    heap.check().expect("check() at the end");
}

/// A 64-byte aligned, leaked-per-input heap buffer.
pub struct Buf(pub Vec<u64>);

impl Buf {
    pub fn new(len: usize) -> Self {
        Buf(vec![0u64; len / 8])
    }
    pub fn ptr(&mut self) -> NonNull<u8> {
        NonNull::new(self.0.as_mut_ptr().cast()).unwrap()
    }
}

/// heap_2 with index `I` over 8 KiB, differential against the best-fit model (the `heap2` and
/// `heap2_tree` targets).
pub fn heap2<I: rtos_heap::FreeIndex>(actions: &[Action]) {
    use rtos_heap::{Heap2, Native, TargetLayout};
    const LEN: usize = 8192;
    let mut buf = Buf::new(LEN);
    let mut h = Heap2::<Native, I>::new();
    #[cfg(feature = "heap-protector")]
    h.set_canary(0x2545_F491).unwrap();
    // SAFETY: the buffer outlives the heap (both dropped at the end of this input).
    unsafe { h.init_from_raw(buf.ptr(), LEN).unwrap() };
    let base = buf.ptr().as_ptr() as usize;
    let mut m = model::BestFit::new(
        Native::HEADER,
        Native::ALIGN,
        Native::SIZE_MAX,
        LEN - Native::ALIGN,
    );
    run(&mut h, actions, Native::HEADER, base, Some(&mut m), true);
}

/// heap_4 (`Native` layout, 8 KiB) with the free-block index `I`, driven by `actions`,
/// differential against the first-fit model (the `heap4` and `heap4_tree` targets).
pub fn heap4<I: rtos_heap::FreeIndex>(actions: &[Action]) {
    use rtos_heap::{Heap4, Native, TargetLayout};
    const LEN: usize = 8192;
    let mut buf = Buf::new(LEN);
    let mut h = Heap4::<Native, I>::new();
    #[cfg(feature = "heap-protector")]
    h.set_canary(0x9E37_79B9_7F4A_7C15_u64 as usize).unwrap();
    // SAFETY: the buffer outlives the heap (both dropped at the end of this input).
    unsafe { h.init_from_raw(buf.ptr(), LEN).unwrap() };
    let base = buf.ptr().as_ptr() as usize;
    let end = (LEN - Native::HEADER) / Native::ALIGN * Native::ALIGN;
    let mut m = model::FirstFit::new(Native::HEADER, Native::ALIGN, Native::SIZE_MAX, &[(0, end)]);
    run(&mut h, actions, Native::HEADER, base, Some(&mut m), true);
}
