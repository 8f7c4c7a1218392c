//! The trace that led to an image: replayed on the simulated heap until its blocks are the image's,
//! it names the allocation behind every live block and gives the counters an image does not hold
//! (minimum ever free, successful allocations and frees).

use anyhow::{Result, bail};

use crate::layout::{Layout, Scheme};
use crate::sim::{self, HeapSpec, MapBlock};
use crate::trace::{Op, OpKind};

/// A block of the image, as the replay compares it: region, offset from the region's aligned
/// start, size, and allocated (`Some(true)`), free (`Some(false)`) or a damaged span whose blocks
/// are unknown (`None`: any blocks of the replay that tile it match).
pub type Shape = (usize, u64, u64, Option<bool>);

/// Whether the replay's blocks are the image's.
fn same_blocks(sim: &[MapBlock], image: &[Shape]) -> bool {
    let mut k = 0;
    for &(region, off, size, kind) in image {
        match kind {
            Some(allocated) => {
                let Some(b) = sim.get(k) else { return false };
                if (b.region, b.offset as u64, b.size as u64, b.allocated)
                    != (region, off, size, allocated)
                {
                    return false;
                }
                k += 1;
            }
            None => {
                // The span must start on a block boundary and end on one.
                if sim
                    .get(k)
                    .is_none_or(|b| (b.region, b.offset as u64) != (region, off))
                {
                    return false;
                }
                while let Some(b) = sim.get(k)
                    && b.region == region
                    && (b.offset + b.size) as u64 <= off + size
                {
                    k += 1;
                }
                if sim
                    .get(k)
                    .is_some_and(|b| b.region == region && (b.offset as u64) < off + size)
                {
                    return false;
                }
            }
        }
    }
    k == sim.len()
}

/// What the replay found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TieIn {
    /// Operations of the trace replayed to reach the image.
    pub ops: u64,
    /// Prefix lengths (operations) after which the replayed blocks equal the image's: the first
    /// 8 and the last 8.
    pub matches: Vec<u64>,
    /// How many prefixes matched in all.
    pub match_count: u64,
    /// `xFreeBytesRemaining` of the replay at that point.
    pub free_bytes: u64,
    /// `xMinimumEverFreeBytesRemaining`.
    pub min_ever: u64,
    /// `xNumberOfSuccessfulAllocations`.
    pub allocs: u64,
    /// `xNumberOfSuccessfulFrees`.
    pub frees: u64,
    /// Failed allocations met on the way.
    pub failed: u64,
    /// For each live block (region, offset from its region's aligned start): the trace line that
    /// allocated it and the operation index.
    pub sources: Vec<((usize, u64), u64, u64)>,
}

/// Replays `ops` on `scheme` over regions of `lens` bytes (aligned starts) and compares after
/// every operation with `image`: the image must be the heap after `at` operations (default: the
/// whole trace); when it is not, the error lists the prefixes that do give it.
///
/// # Errors
/// The image is not the heap after `at` operations, or the simulated heap cannot be built.
pub fn tie(
    scheme: Scheme,
    layout: Layout,
    lens: &[usize],
    ops: &[Op],
    image: &[Shape],
    at: Option<u64>,
) -> Result<TieIn> {
    let spec = HeapSpec {
        scheme,
        layout,
        regions: lens.to_vec(),
    };
    let damaged = image.iter().any(|b| b.3.is_none());
    let image_free: u64 = image
        .iter()
        .filter(|b| b.3 == Some(false))
        .map(|b| b.2)
        .sum();
    let mut matches = Vec::new();
    let mut count = 0u64;
    let mut buf = Vec::new();
    let limit = at.map_or(ops.len(), |n| (n as usize).min(ops.len()));
    let mut run = Run::new(&spec)?;
    let same = |run: &Run, buf: &mut Vec<MapBlock>| -> bool {
        // Free bytes first: O(1), and they differ after most operations (unknown with damage).
        if !damaged && run.sim.free_bytes() as u64 != image_free {
            return false;
        }
        buf.clear();
        run.sim.blocks(buf);
        same_blocks(buf, image)
    };
    // Prefix lengths that give the image's blocks: the first 8 and the last 8 of them.
    let mut last = std::collections::VecDeque::new();
    let mut note = |n: u64, matches: &mut Vec<u64>, last: &mut std::collections::VecDeque<u64>| {
        count += 1;
        if matches.len() < 8 {
            matches.push(n);
        } else {
            if last.len() == 8 {
                last.pop_front();
            }
            last.push_back(n);
        }
    };
    if same(&run, &mut buf) {
        note(0, &mut matches, &mut last);
    }
    for (i, op) in ops[..limit].iter().enumerate() {
        run.step(op, i as u64);
        if same(&run, &mut buf) {
            note(i as u64 + 1, &mut matches, &mut last);
        }
    }
    matches.extend(last);
    let want = at.unwrap_or(ops.len() as u64);
    if matches.last() != Some(&want) {
        let list: Vec<String> = matches.iter().map(|n| n.to_string()).collect();
        match (at, matches.is_empty()) {
            (_, true) => bail!(
                "no prefix of the trace replays to the image's blocks: is it the trace that led to this image, with the same layout and regions?"
            ),
            (Some(n), false) => bail!(
                "after {n} operations of the trace the replayed heap is not the image's; it is after {count} other prefix length(s): {}",
                list.join(", ")
            ),
            (None, false) => bail!(
                "the image is not the heap at the end of the trace, but after {count} of its prefixes: {} operations; give the trace up to the dump, or --trace-ops N",
                list.join(", ")
            ),
        }
    }
    let n = want;
    // Replay again up to the chosen point, keeping where each live allocation came from.
    let mut run = Run::new(&spec)?;
    for (i, op) in ops[..n as usize].iter().enumerate() {
        run.step(op, i as u64);
    }
    let header = layout.header() as u64;
    let mut sources = Vec::new();
    for (addr, line, idx) in run.live.iter().flatten() {
        let (region, off) = run.sim.locate(*addr);
        sources.push(((region, off as u64 - header), *line, *idx));
    }
    sources.sort();
    Ok(TieIn {
        ops: n,
        matches,
        match_count: count,
        free_bytes: run.sim.free_bytes() as u64,
        min_ever: run.sim.min_ever_free() as u64,
        allocs: run.allocs,
        frees: run.frees,
        failed: run.failed,
        sources,
    })
}

struct Run {
    sim: Box<dyn sim::Sim>,
    /// Per slot: (payload address, trace line, operation index) of the live allocation.
    live: Vec<Option<(usize, u64, u64)>>,
    allocs: u64,
    frees: u64,
    failed: u64,
}

impl Run {
    fn new(spec: &HeapSpec) -> Result<Self> {
        Ok(Run {
            sim: sim::build(spec)?,
            live: Vec::new(),
            allocs: 0,
            frees: 0,
            failed: 0,
        })
    }

    fn step(&mut self, op: &Op, index: u64) {
        let slot = op.slot as usize;
        if self.live.len() <= slot {
            self.live.resize(slot + 1, None);
        }
        match op.kind {
            OpKind::Alloc { size, align } => match self.sim.alloc(size, align) {
                Ok(addr) => {
                    self.allocs += 1;
                    self.live[slot] = Some((addr, op.line, index));
                }
                Err(_) => {
                    self.failed += 1;
                    self.live[slot] = None;
                }
            },
            OpKind::Free => {
                if let Some((addr, _, _)) = self.live[slot].take()
                    && self.sim.free(addr).is_ok()
                {
                    self.frees += 1;
                }
            }
        }
    }
}
