//! `size`: the smallest heap at which a trace runs without a failed allocation, found exactly
//! although success is not monotonic in the heap size.
//!
//! # Method
//!
//! Let *c* be the heap's *cap*: the offset (from the heap's first byte) where its last free block
//! must end — `pxEnd` for heap_4/5, the end of the array for heap_1/2, the byte limit for heap_3. A
//! heap size determines *c* and nothing else that placement depends on (region starts are
//! aligned). Call *T* the top free block, the one that ends at *c*.
//!
//! 1. **Reference run.** Replay once at a cap so large that no allocation fails and every split of
//!    *T* leaves a remainder. Record, per allocation, where the block went.
//! 2. **Constraints.** At a smaller cap the replay makes the same choices as the reference run
//!    until the first allocation whose choice depends on *T*'s size:
//!    - an allocation the reference run took from *T*, ending at offset *e*: at `c < e` it *fails*
//!      (every other free block is the same and too small — first fit and best fit alike), at
//!      `e ≤ c ≤ e + 2·header` it takes *T* whole instead of splitting it (*diverges*); above, it
//!      is the same;
//!    - heap_2 only (best fit): an allocation of `w` bytes that the reference run served from a
//!      free block of `b` bytes while *T* started at `x` diverges when `x + w ≤ c ≤ x + b` (*T* is
//!      then the better or an equal fit).
//!
//!    heap_4/5 (first fit by address) never choose *T* over a lower block, so only allocations that
//!    raise the highest block end so far need to be looked at. heap_1 and heap_3 have no
//!    divergences: their success is monotonic.
//! 3. **Classification.** Walking the constraints in trace order, each cap is decided by the
//!    first constraint that covers it: *fails* (proven), *candidate* (diverges: must be replayed),
//!    or, if none covers it, *succeeds* (identical to the reference run; proven).
//! 4. **Replays.** Candidates are replayed in ascending order, each stopping at its first failure;
//!    the first that succeeds below the smallest proven success is the minimum. Candidates above
//!    the minimum are replayed too (up to a budget) so that every size above the minimum that
//!    fails can be reported.
//!
//! Caps that are equivalent are replayed once: heap_4/5 caps are multiples of the alignment;
//! heap_2's top block compares only with multiples of the alignment, so within one alignment step
//! the caps `kA` and `kA+1 … kA+A−1` form two classes.
//!
//! Allocations aligned above `portBYTE_ALIGNMENT` (id traces only) break the constraint rules; a
//! trace with such allocations falls back to replaying every class from the lower bound upward.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::layout::{Layout, Scheme};
use crate::sim::{self, HeapSpec, Sim};
use crate::trace::{Op, OpKind};

/// Options of the search.
#[derive(Debug, Clone)]
pub struct SizeOptions {
    /// Sizes of heap_5's fixed regions (all but the last, which is searched). Empty otherwise.
    pub fixed_regions: Vec<usize>,
    /// Most candidate replays per scheme.
    pub max_replays: usize,
    /// Stop replaying candidates after this long (per scheme); what is left is reported untested.
    pub time_limit: std::time::Duration,
}

impl Default for SizeOptions {
    fn default() -> Self {
        SizeOptions {
            fixed_regions: Vec::new(),
            max_replays: 2000,
            time_limit: std::time::Duration::from_secs(30),
        }
    }
}

/// An inclusive range of heap sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SizeRange {
    /// First size.
    pub from: usize,
    /// Last size.
    pub to: usize,
}

/// The answer for one scheme.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SizeResult {
    /// Scheme.
    pub scheme: Scheme,
    /// Layout.
    pub layout: Layout,
    /// heap_5's fixed regions (the searched region comes after them).
    pub fixed_regions: Vec<usize>,
    /// Smallest heap size (heap_5: of the last region) at which no allocation fails, other than
    /// those that fail at any size. `None` if none was found within the budget.
    pub minimum: Option<usize>,
    /// Smallest size a replay verified to run clean (equals `minimum` when that is proven).
    pub verified: Option<usize>,
    /// Every size from this one up succeeds (proven), when known.
    pub all_succeed_from: Option<usize>,
    /// Sizes above the minimum that fail.
    pub failing_above_minimum: Vec<SizeRange>,
    /// Candidate sizes that were not replayed (budget exhausted).
    pub untested: Vec<SizeRange>,
    /// Lower bound from counting: below it the live blocks cannot fit.
    pub lower_bound: usize,
    /// Allocations that fail at any size (zero size, overflow).
    pub size_independent_failures: u64,
    /// The first request no heap of this layout can serve (its block size overflows the target's
    /// `size_t` or sets its top bit): the trace runs clean at no size, so there is no minimum.
    pub never_fits: Option<NeverFits>,
    /// Replays run (reference runs included).
    pub replays: usize,
    /// "constraints" or "exhaustive".
    pub method: &'static str,
}

/// What the progress reporter is told.
pub trait Progress {
    /// `n` more replays are planned.
    fn planned(&mut self, n: u64);
    /// One replay finished.
    fn done(&mut self);
}

impl Progress for () {
    fn planned(&mut self, _: u64) {}
    fn done(&mut self) {}
}

/// Disjoint inclusive intervals of caps.
#[derive(Default)]
struct Set(BTreeMap<u64, u64>);

impl Set {
    fn insert(&mut self, lo: u64, hi: u64) {
        if lo <= hi {
            self.0.insert(lo, hi);
        }
    }

    /// Removes `[lo, hi]` from the set and returns the removed pieces.
    fn take(&mut self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if lo > hi {
            return out;
        }
        let start = self
            .0
            .range(..=lo)
            .next_back()
            .filter(|&(_, &h)| h >= lo)
            .map_or(lo, |(&l, _)| l);
        let keys: Vec<u64> = self.0.range(start..=hi).map(|(&k, _)| k).collect();
        for k in keys {
            let h = self.0.remove(&k).expect("key listed above");
            let (a, b) = (k.max(lo), h.min(hi));
            if k < a {
                self.0.insert(k, a - 1);
            }
            if h > b {
                self.0.insert(b + 1, h);
            }
            out.push((a, b));
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter().map(|(&a, &b)| (a, b))
    }
}

/// How caps map to heap sizes for one scheme.
#[derive(Clone, Copy)]
struct Geometry {
    scheme: Scheme,
    align: u64,
    header: u64,
    /// Offset of the searched region from the heap's first byte (heap_5 with fixed regions).
    off: u64,
}

impl Geometry {
    /// Cap of a heap whose searched region has `s` bytes.
    fn cap(self, s: u64) -> u64 {
        match self.scheme {
            Scheme::Heap1 | Scheme::Heap2 => s.saturating_sub(self.align),
            Scheme::Heap3 => s,
            Scheme::Heap4 | Scheme::Heap5 => {
                self.off + s.saturating_sub(self.header) / self.align * self.align
            }
        }
    }

    /// Smallest size with cap `c`.
    fn size_min(self, c: u64) -> u64 {
        match self.scheme {
            Scheme::Heap1 | Scheme::Heap2 => c + self.align,
            Scheme::Heap3 => c,
            Scheme::Heap4 | Scheme::Heap5 => c - self.off + self.header,
        }
    }

    /// Largest size with cap `c`.
    fn size_max(self, c: u64) -> u64 {
        match self.scheme {
            Scheme::Heap4 | Scheme::Heap5 => self.size_min(c) + self.align - 1,
            _ => self.size_min(c),
        }
    }

    /// Representatives of the equivalence classes of caps in `[lo, hi]`: (cap to replay, last cap
    /// it stands for).
    fn classes(self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let a = self.align;
        let mut out = Vec::new();
        match self.scheme {
            Scheme::Heap4 | Scheme::Heap5 => {
                let mut c = lo.div_ceil(a) * a;
                while c <= hi {
                    out.push((c, c));
                    c += a;
                }
            }
            Scheme::Heap2 => {
                let mut c = lo;
                while c <= hi {
                    if c % a == 0 {
                        out.push((c, c));
                        c += 1;
                    } else {
                        let end = (c / a * a + a - 1).min(hi);
                        out.push((c, end));
                        c = end + 1;
                    }
                }
            }
            Scheme::Heap1 | Scheme::Heap3 => {
                let mut c = lo;
                while c <= hi {
                    out.push((c, c));
                    c += 1;
                }
            }
        }
        out
    }
}

enum Constraint {
    /// Caps below the value fail.
    FailBelow(u64),
    /// Caps in the range diverge from the reference run.
    Diverge(u64, u64),
}

/// A request that fails at every heap size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NeverFits {
    /// Trace line.
    pub line: u64,
    /// Requested bytes.
    pub size: u64,
}

/// The reference run: did it succeed (no failure besides size-independent ones), its constraints,
/// and the number of size-independent failures.
struct Reference {
    clean: bool,
    /// heap_2: every block the reference run took was one the shadow free list knew.
    model_ok: bool,
    constraints: Vec<Constraint>,
    independent: u64,
    /// The first request that overflows the target's sizes.
    never: Option<NeverFits>,
    /// Highest cap any constraint mentions.
    reach: u64,
}

fn reference(sim: &mut dyn Sim, ops: &[Op], g: Geometry, layout: Layout) -> Reference {
    let header = layout.header() as u64;
    let base = sim.base() as u64;
    let cap = sim.capacity() as u64;
    let mut table: Vec<(usize, u64)> = Vec::new(); // (address, block bytes)
    let mut cons = Vec::new();
    let mut independent = 0;
    let mut never = None;
    let mut clean = true;
    let mut model_ok = true;
    // heap_4/5: highest block end so far; heap_2: start of T and the other free blocks.
    let mut top = g.off;
    let mut shadow: HashMap<u64, u64> = HashMap::new();
    for op in ops {
        let slot = op.slot as usize;
        if slot >= table.len() {
            table.resize(slot + 1, (0, 0));
        }
        match op.kind {
            OpKind::Alloc { size, align } => {
                let before = sim.free_bytes() as u64;
                match sim.alloc(size, align) {
                    Ok(addr) => {
                        // heap_4 lays itself out at the first allocation: its free bytes read 0
                        // before.
                        let before = if before == 0 { cap } else { before };
                        let bytes = before - sim.free_bytes() as u64;
                        table[slot] = (addr, bytes);
                        let rel = (addr as u64).wrapping_sub(base);
                        match g.scheme {
                            Scheme::Heap1 | Scheme::Heap3 => {
                                let used = cap - sim.free_bytes() as u64;
                                let strict = u64::from(g.scheme == Scheme::Heap1);
                                cons.push(Constraint::FailBelow(used + strict));
                            }
                            Scheme::Heap4 | Scheme::Heap5 => {
                                let end = rel - header + bytes;
                                if end > top {
                                    cons.push(Constraint::FailBelow(end));
                                    cons.push(Constraint::Diverge(end, end + 2 * header));
                                    top = end;
                                }
                            }
                            Scheme::Heap2 => {
                                let o = rel - header;
                                let w = layout.wanted(size);
                                if o == top {
                                    let end = o + w;
                                    cons.push(Constraint::FailBelow(end));
                                    cons.push(Constraint::Diverge(end, end + 2 * header));
                                    top = end;
                                } else if let Some(b) = shadow.remove(&o) {
                                    cons.push(Constraint::Diverge(top + w, top + b));
                                    if b != bytes {
                                        shadow.insert(o + bytes, b - bytes);
                                    }
                                } else {
                                    model_ok = false;
                                }
                            }
                        }
                    }
                    Err(rtos_heap::AllocError::ZeroSize) => independent += 1,
                    Err(rtos_heap::AllocError::SizeOverflow) => {
                        independent += 1;
                        never.get_or_insert(NeverFits {
                            line: op.line,
                            size,
                        });
                    }
                    Err(_) => clean = false,
                }
            }
            OpKind::Free => {
                let (addr, bytes) = std::mem::take(&mut table[slot]);
                if addr != 0 && sim.free(addr).is_ok() && g.scheme == Scheme::Heap2 {
                    shadow.insert(addr as u64 - base - header, bytes);
                }
            }
        }
    }
    for &(addr, _) in &table {
        if addr != 0 {
            let _ = sim.free(addr);
        }
    }
    let reach = cons
        .iter()
        .map(|c| match *c {
            Constraint::FailBelow(v) => v,
            Constraint::Diverge(_, h) => h + 1,
        })
        .max()
        .unwrap_or(0);
    Reference {
        clean,
        model_ok,
        constraints: cons,
        independent,
        never,
        reach,
    }
}

/// A replay stopped because the search's time budget ran out.
struct OutOfTime;

/// heap_2: one run at cap `rep` that refines `group` (caps that so far behave as `rep` does).
///
/// The block that ends at the cap (*TB*, `[x, cap)`) is the only one whose size depends on the
/// cap; every other free block is tracked in a shadow list. At each allocation the caps whose TB
/// would change the best-fit choice (TB fits and is a better or equal fit, or a different split)
/// leave the group: as *proven failures* when no block at all would fit them, else as a new group
/// to be run on its own. Returns whether `rep` runs clean, or `None` if the shadow model lost
/// track (the caller then replays caps one by one).
fn heap2_group(
    spec: &HeapSpec,
    rep: u64,
    group: &mut Set,
    ops: &[Op],
    fails: &mut Set,
    new_groups: &mut Vec<Set>,
    deadline: Instant,
) -> Result<Option<bool>, OutOfTime> {
    let layout = spec.layout;
    let Ok(mut sim) = sim::build(spec) else {
        return Ok(None);
    };
    let hs = layout.header() as u64;
    let base = sim.base() as u64;
    let mut x = 0u64; // start of TB
    let mut tb_free = true;
    let mut tb_slot = u32::MAX;
    let mut by_off: HashMap<u64, u64> = HashMap::new();
    let mut by_size: std::collections::BTreeSet<(u64, u64)> = std::collections::BTreeSet::new();
    let mut table: Vec<(usize, u64, u64)> = Vec::new(); // (address, block offset, block bytes)
    let mut clean = true;
    // Removes `[lo, hi]` from the group, except `rep` (which behaves as itself, ties included).
    let mut split_off = |group: &mut Set, lo: u64, hi: u64, fail: bool, fails: &mut Set| {
        let mut pieces = Vec::new();
        if (lo..=hi).contains(&rep) {
            if rep > lo {
                pieces.extend(group.take(lo, rep - 1));
            }
            if rep < hi {
                pieces.extend(group.take(rep + 1, hi));
            }
        } else {
            pieces = group.take(lo, hi);
        }
        for (a, b) in pieces {
            if fail {
                fails.insert(a, b);
            } else {
                let mut g = Set::default();
                g.insert(a, b);
                new_groups.push(g);
            }
        }
    };
    for (i, op) in ops.iter().enumerate() {
        if past(Some(deadline), i) {
            return Err(OutOfTime);
        }
        let slot = op.slot as usize;
        if slot >= table.len() {
            table.resize(slot + 1, (0, 0, 0));
        }
        match op.kind {
            OpKind::Alloc { size, align } => {
                let before = sim.free_bytes() as u64;
                let w = layout.wanted(size);
                let nb = by_size.range((w, 0)..).next().map(|&(b, _)| b);
                match sim.alloc(size, align) {
                    Ok(addr) => {
                        let o = addr as u64 - base - hs;
                        let bytes = before - sim.free_bytes() as u64;
                        table[slot] = (addr, o, bytes);
                        if tb_free && o == x {
                            let split = bytes == w;
                            // Same choice iff TB fits, is the strictly best fit, and splits alike.
                            let lo = x + if split { w + 2 * hs + 1 } else { w };
                            let mut hi = if split { u64::MAX } else { x + w + 2 * hs };
                            if let Some(b) = nb {
                                hi = hi.min(x + b - 1);
                            }
                            if x + w > 0 {
                                split_off(group, 0, x + w - 1, nb.is_none(), fails);
                            }
                            if lo > x + w {
                                split_off(group, x + w, lo - 1, false, fails);
                            }
                            if hi < u64::MAX {
                                split_off(group, hi + 1, u64::MAX, false, fails);
                            }
                            if split {
                                x += w;
                            } else {
                                tb_free = false;
                                tb_slot = op.slot;
                            }
                        } else {
                            let Some(b) = by_off.remove(&o) else {
                                return Ok(None);
                            };
                            by_size.remove(&(b, o));
                            if tb_free {
                                split_off(group, x + w, x + b, false, fails);
                            }
                            if bytes < b {
                                by_off.insert(o + bytes, b - bytes);
                                by_size.insert((b - bytes, o + bytes));
                            }
                        }
                    }
                    Err(rtos_heap::AllocError::ZeroSize | rtos_heap::AllocError::SizeOverflow) => {}
                    Err(_) => {
                        // `rep` fails here. Caps whose TB would fit may not: a group of their own.
                        if tb_free {
                            split_off(group, x + w, u64::MAX, false, fails);
                        }
                        clean = false;
                        break;
                    }
                }
            }
            OpKind::Free => {
                let (addr, o, bytes) = std::mem::take(&mut table[slot]);
                if addr == 0 {
                    continue;
                }
                if sim.free(addr).is_err() {
                    return Ok(None);
                }
                if !tb_free && op.slot == tb_slot && o == x {
                    tb_free = true;
                } else {
                    by_off.insert(o, bytes);
                    by_size.insert((bytes, o));
                }
            }
        }
    }
    for &(a, _, _) in &table {
        if a != 0 {
            let _ = sim.free(a);
        }
    }
    Ok(Some(clean))
}

/// Whether the trace runs at `spec` with no failure besides the size-independent ones.
/// How often (in operations) a replay looks at the clock: the budget is kept to about this many
/// operations' time.
const CLOCK_EVERY: usize = 4096;

/// Whether `deadline` has passed, looked at every [`CLOCK_EVERY`] operations.
fn past(deadline: Option<Instant>, i: usize) -> bool {
    i % CLOCK_EVERY == CLOCK_EVERY - 1 && deadline.is_some_and(|d| Instant::now() >= d)
}

/// Whether the trace runs at `spec` with no failure besides the size-independent ones; `None` when
/// `deadline` passed first (the size stays untested: the budget is kept, not overrun).
fn runs_clean(spec: &HeapSpec, ops: &[Op], deadline: Option<Instant>) -> Option<bool> {
    let Ok(mut sim) = sim::build(spec) else {
        return Some(false);
    };
    let mut table: Vec<usize> = Vec::new();
    let mut ok = true;
    for (i, op) in ops.iter().enumerate() {
        if past(deadline, i) {
            return None;
        }
        let slot = op.slot as usize;
        if slot >= table.len() {
            table.resize(slot + 1, 0);
        }
        match op.kind {
            OpKind::Alloc { size, align } => match sim.alloc(size, align) {
                Ok(a) => table[slot] = a,
                Err(rtos_heap::AllocError::ZeroSize | rtos_heap::AllocError::SizeOverflow) => {
                    table[slot] = 0;
                }
                Err(_) => {
                    ok = false;
                    break;
                }
            },
            OpKind::Free => {
                let a = std::mem::take(&mut table[slot]);
                if a != 0 {
                    let _ = sim.free(a);
                }
            }
        }
    }
    for &a in &table {
        if a != 0 {
            let _ = sim.free(a);
        }
    }
    Some(ok)
}

/// Lower bound on the searched region's size from counting bytes: heap_1 needs every allocation,
/// heap_2/4/5 the peak of live `wanted` blocks, heap_3 the peak of live requested bytes.
fn lower_bound(scheme: Scheme, layout: Layout, ops: &[Op]) -> u64 {
    let a = layout.align as u64;
    // Requests this large fail at any size on the device (the block size would reach the MSB).
    let huge = if layout.word == 4 {
        1u64 << 31
    } else {
        1u64 << 62
    };
    let mut sizes: Vec<u64> = Vec::new();
    let (mut live, mut peak, mut total) = (0u64, 0u64, 0u64);
    for op in ops {
        let slot = op.slot as usize;
        if slot >= sizes.len() {
            sizes.resize(slot + 1, 0);
        }
        match op.kind {
            OpKind::Alloc { size, .. } => {
                let bytes = if size == 0 || size >= huge - layout.wanted(0).max(64) {
                    0
                } else {
                    match scheme {
                        Scheme::Heap1 => size.div_ceil(a) * a,
                        Scheme::Heap3 => size,
                        _ => layout.wanted(size),
                    }
                };
                sizes[slot] = bytes;
                live += bytes;
                total += bytes;
                peak = peak.max(live);
            }
            OpKind::Free => live -= std::mem::take(&mut sizes[slot]),
        }
    }
    match scheme {
        Scheme::Heap1 => total + a + 1,
        Scheme::Heap2 => peak + a,
        Scheme::Heap3 => peak,
        Scheme::Heap4 | Scheme::Heap5 => peak + layout.header() as u64,
    }
}

/// Finds the smallest heap size for `scheme` at which `ops` run without a failed allocation.
pub fn find(
    scheme: Scheme,
    layout: Layout,
    ops: &[Op],
    opts: &SizeOptions,
    progress: &mut dyn Progress,
) -> SizeResult {
    let fixed = if scheme == Scheme::Heap5 {
        opts.fixed_regions.clone()
    } else {
        Vec::new()
    };
    let spec_for = |s: u64| {
        let mut regions = fixed.clone();
        regions.push(s as usize);
        HeapSpec {
            scheme,
            layout,
            regions,
        }
    };
    let off = spec_for(0).region_offsets().last().copied().unwrap_or(0) as u64;
    let g = Geometry {
        scheme,
        align: layout.align as u64,
        header: layout.header() as u64,
        off,
    };
    // Smallest size the core crate accepts for the searched region (a header, a minimum block and,
    // heap_4/5, an end marker, after aligning): found by building, not guessed.
    let guess = (layout.align + 3 * layout.header()) as u64;
    let min_buildable = (1..guess)
        .find(|&s| sim::build(&spec_for(s)).is_ok())
        .unwrap_or(guess);
    // heap_5: the fixed regions hold part of the peak, so only the rest bounds the last region.
    let fixed_capacity = if fixed.is_empty() {
        0
    } else {
        HeapSpec {
            scheme,
            layout,
            regions: fixed.clone(),
        }
        .capacity() as u64
    };
    let lower = lower_bound(scheme, layout, ops)
        .saturating_sub(fixed_capacity)
        .max(min_buildable);
    let aligned_above = ops
        .iter()
        .any(|o| matches!(o.kind, OpKind::Alloc { align, .. } if align as usize > layout.align));
    let mut replays = 0usize;
    let started = std::time::Instant::now();
    let deadline = started + opts.time_limit;
    let out_of_budget =
        |replays: usize| replays >= opts.max_replays || started.elapsed() >= opts.time_limit;

    // 1. Reference run at a cap beyond every constraint (doubling until it is).
    let mut s_ref = (2 * lower).max(lower + 4096);
    progress.planned(1);
    let r = loop {
        replays += 1;
        let spec = spec_for(s_ref);
        let r = match sim::build(&spec) {
            Ok(mut sim) => Some(reference(sim.as_mut(), ops, g, layout)),
            Err(_) => None,
        };
        match r {
            Some(r) if r.clean && g.cap(s_ref) >= r.reach => break Some(r),
            _ if s_ref > (1u64 << 40) || g.cap(s_ref) as u128 >= layout_max(layout) => break None,
            _ => {
                s_ref *= 2;
                progress.planned(1);
                progress.done();
            }
        }
    };
    progress.done();
    let Some(r) = r else {
        return SizeResult {
            scheme,
            layout,
            fixed_regions: fixed,
            minimum: None,
            verified: None,
            all_succeed_from: None,
            failing_above_minimum: Vec::new(),
            untested: Vec::new(),
            lower_bound: lower as usize,
            size_independent_failures: 0,
            never_fits: None,
            replays,
            method: "constraints",
        };
    };
    if let Some(n) = r.never {
        return SizeResult {
            scheme,
            layout,
            fixed_regions: fixed,
            minimum: None,
            verified: None,
            all_succeed_from: None,
            failing_above_minimum: Vec::new(),
            untested: Vec::new(),
            lower_bound: lower as usize,
            size_independent_failures: r.independent,
            never_fits: Some(n),
            replays,
            method: "constraints",
        };
    }
    let c_lo = g.cap(lower);
    let c_ref = g.cap(s_ref);

    // 2./3. Classify every cap in [c_lo, c_ref].
    let exhaustive = (aligned_above || !r.model_ok)
        && matches!(scheme, Scheme::Heap2 | Scheme::Heap4 | Scheme::Heap5);
    let mut ok = Set::default();
    let mut fails = Set::default();
    let mut untested = Set::default();
    let mut probe_ok: Option<u64> = None;
    if scheme == Scheme::Heap2 && !exhaustive {
        // Best fit: refine groups of caps that behave alike, one run per group (see heap2_group).
        // First a bisection (as if success were monotonic) for a low size verified by a replay:
        // the answer to fall back on when the budget ends before every group is settled.
        let (mut lo, mut hi) = (c_lo, c_ref);
        while hi - lo > 1 && !out_of_budget(replays) {
            let mid = lo + (hi - lo) / 2;
            replays += 1;
            progress.planned(1);
            let clean = runs_clean(&spec_for(g.size_min(mid)), ops, Some(deadline));
            progress.done();
            let Some(clean) = clean else { break };
            if clean {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        probe_ok = Some(hi);
        let mut groups: Vec<(u64, Set)> = Vec::new();
        let mut g0 = Set::default();
        g0.insert(c_lo, c_ref);
        groups.push((c_ref, g0));
        while let Some(i) = (0..groups.len()).min_by_key(|&i| groups[i].0) {
            let (rep, mut group) = groups.swap_remove(i);
            if out_of_budget(replays) {
                for (a, b) in group.iter() {
                    untested.insert(a, b);
                }
                continue;
            }
            replays += 1;
            progress.planned(1);
            let mut new_groups = Vec::new();
            let outcome = heap2_group(
                &spec_for(g.size_min(rep)),
                rep,
                &mut group,
                ops,
                &mut fails,
                &mut new_groups,
                deadline,
            );
            progress.done();
            let outcome = match outcome {
                Err(OutOfTime) => None,
                Ok(Some(clean)) => Some(clean),
                // The shadow model lost track: settle `rep` alone, the rest stays to be run.
                Ok(None) => {
                    runs_clean(&spec_for(g.size_min(rep)), ops, Some(deadline)).inspect(|_| {
                        let mut rest = Set::default();
                        for (a, b) in group.take(0, u64::MAX) {
                            rest.insert(a, b);
                        }
                        for (a, b) in rest.take(0, u64::MAX) {
                            if a < rep {
                                let mut s = Set::default();
                                s.insert(a, b.min(rep - 1));
                                new_groups.push(s);
                            }
                            if b > rep {
                                let mut s = Set::default();
                                s.insert(a.max(rep + 1), b);
                                new_groups.push(s);
                            }
                        }
                        group.insert(rep, rep);
                    })
                }
            };
            let Some(outcome) = outcome else {
                // Out of time: what this run had not settled stays untested.
                for s in std::iter::once(&group).chain(&new_groups) {
                    for (a, b) in s.iter() {
                        untested.insert(a, b);
                    }
                }
                continue;
            };
            let dest = if outcome { &mut ok } else { &mut fails };
            for (a, b) in group.iter() {
                dest.insert(a, b);
            }
            for s in new_groups {
                let lo = s.iter().next().map(|p| p.0);
                if let Some(lo) = lo {
                    groups.push((lo, s));
                }
            }
        }
    } else {
        let mut undecided = Set::default();
        undecided.insert(c_lo, c_ref);
        let mut candidates = Set::default();
        if exhaustive {
            for (a, b) in undecided.take(c_lo, c_ref.saturating_sub(1)) {
                candidates.insert(a, b);
            }
        } else {
            for c in &r.constraints {
                match *c {
                    Constraint::FailBelow(v) if v > 0 => {
                        for (a, b) in undecided.take(0, v - 1) {
                            fails.insert(a, b);
                        }
                    }
                    Constraint::FailBelow(_) => {}
                    Constraint::Diverge(lo, hi) => {
                        for (a, b) in undecided.take(lo, hi) {
                            candidates.insert(a, b);
                        }
                    }
                }
            }
        }
        for (a, b) in undecided.iter() {
            ok.insert(a, b);
        }
        // 4. Replay candidates in ascending order.
        let classes: Vec<(u64, u64)> = candidates
            .iter()
            .flat_map(|(a, b)| g.classes(a, b))
            .collect();
        progress.planned(classes.len().min(opts.max_replays) as u64);
        let mut tested = 0usize;
        for &(c, last) in &classes {
            if tested >= opts.max_replays || started.elapsed() >= opts.time_limit {
                untested.insert(c, last);
                continue;
            }
            tested += 1;
            replays += 1;
            let clean = runs_clean(&spec_for(g.size_min(c)), ops, Some(deadline));
            progress.done();
            let Some(clean) = clean else {
                untested.insert(c, last);
                continue;
            };
            if clean {
                ok.insert(c, last);
            } else {
                fails.insert(c, last);
            }
        }
    }

    let to_sizes = |(a, b): (u64, u64)| SizeRange {
        from: g.size_min(a) as usize,
        to: g.size_max(b) as usize,
    };
    let min_ok = ok.iter().map(|(a, _)| a).min();
    let min_untested = untested.iter().map(|(a, _)| a).min();
    // The minimum is exact when no cap below it was left untested.
    let minimum_cap = match (min_ok, min_untested) {
        (Some(m), Some(u)) if u < m => None,
        (m, _) => m,
    };
    let above = |v: &Set| -> Vec<SizeRange> {
        merge(
            v.iter()
                .filter(|&(_, b)| minimum_cap.is_some_and(|m| b > m))
                .map(|(a, b)| (a.max(minimum_cap.unwrap_or(0) + 1), b))
                .map(to_sizes)
                .collect(),
        )
    };
    let failing_above = above(&fails);
    let untested_sizes = merge(untested.iter().map(to_sizes).collect());
    // Every size above the highest failing or untested cap succeeds.
    let all_from = if exhaustive {
        None
    } else {
        let last_bad = fails.iter().chain(untested.iter()).map(|(_, b)| b).max();
        Some(match last_bad {
            Some(b) => (g.size_max(b) as usize + 1).max(lower as usize),
            None => lower as usize,
        })
    };
    SizeResult {
        scheme,
        layout,
        fixed_regions: fixed,
        minimum: minimum_cap.map(|c| g.size_min(c) as usize),
        verified: min_ok
            .into_iter()
            .chain(probe_ok)
            .min()
            .map(|c| g.size_min(c) as usize),
        all_succeed_from: all_from,
        failing_above_minimum: failing_above,
        untested: untested_sizes,
        lower_bound: lower as usize,
        size_independent_failures: r.independent,
        never_fits: None,
        replays,
        method: if exhaustive {
            "exhaustive"
        } else if scheme == Scheme::Heap2 {
            "groups"
        } else {
            "constraints"
        },
    }
}

fn layout_max(layout: Layout) -> u128 {
    if layout.word == 4 {
        1u128 << 31
    } else {
        1u128 << 40
    }
}

fn merge(mut v: Vec<SizeRange>) -> Vec<SizeRange> {
    v.sort_by_key(|r| r.from);
    let mut out: Vec<SizeRange> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(l) if r.from <= l.to + 1 => l.to = l.to.max(r.to),
            _ => out.push(r),
        }
    }
    out
}

/// `configTOTAL_HEAP_SIZE` to recommend: the minimum plus `margin` (a fraction), raised to the
/// size from which every size succeeds when that is higher, rounded up to `round` bytes.
pub fn recommend(r: &SizeResult, margin: f64, round: usize) -> Option<usize> {
    let min = r.minimum.or(r.verified)?;
    let with_margin = (min as f64 * (1.0 + margin)).ceil() as usize;
    let v = with_margin.max(r.all_succeed_from.unwrap_or(0));
    Some(v.div_ceil(round.max(1)) * round.max(1))
}

#[cfg(test)]
mod tests;
