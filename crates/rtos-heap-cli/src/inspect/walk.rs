//! Reading a heap_4 / heap_5 image: the physical walk of every region, the free list followed from
//! its head, the two checked against each other, and the statistics the heap would report.
//!
//! Every check that fails becomes a [`Finding`] naming the block it is about; the walk then goes
//! on where it can (the next free-list node or the next plausible header above the damage), so one
//! overwritten header does not hide the rest of the heap.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::memory::Memory;

/// Whose heap wrote the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// FreeRTOS's `heap_4.c` / `heap_5.c`: links are absolute addresses, NULL is 0.
    C,
    /// rtos-heap's C library or core crate (list index): links are byte offsets from the heap base
    /// (the aligned start of the first region), "no link" is all ones.
    RtosHeap,
}

/// What is known about the heap that wrote the image.
#[derive(Debug, Clone)]
pub struct Facts {
    /// heap_5 (several regions, intermediate end markers in the free list) or heap_4.
    pub heap5: bool,
    /// Bytes in a pointer / `size_t`: 4 or 8.
    pub word: usize,
    /// `portBYTE_ALIGNMENT`.
    pub align: usize,
    /// Whose layout.
    pub flavour: Flavour,
    /// The regions as given to the heap: (address, bytes). heap_4: `ucHeap` and
    /// `configTOTAL_HEAP_SIZE`.
    pub regions: Vec<(u64, u64)>,
    /// Heap protector canary (`xHeapCanary`), 0 without the protector.
    pub canary: u64,
    /// `xStart.pxNextFreeBlock` as stored (protected), when known.
    pub head: Option<u64>,
    /// `pxEnd`, when known.
    pub end: Option<u64>,
    /// Offsets are printed from this address (the heap array's start).
    pub origin: u64,
}

impl Facts {
    /// `xHeapStructSize`.
    pub fn header(&self) -> u64 {
        (2 * self.word as u64).div_ceil(self.align as u64) * self.align as u64
    }

    fn msb(&self) -> u64 {
        1 << (self.word * 8 - 1)
    }

    fn word_max(&self) -> u64 {
        if self.word == 8 {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }

    /// The link a stored word stands for.
    fn decode(&self, stored: u64, base: u64) -> Option<u64> {
        let v = stored ^ self.canary;
        match self.flavour {
            Flavour::C => (v != 0).then_some(v),
            Flavour::RtosHeap => (v != self.word_max()).then(|| base.wrapping_add(v)),
        }
    }
}

/// A block's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Handed out.
    Allocated,
    /// Free.
    Free,
    /// A region's end marker.
    EndMarker,
    /// Bytes whose header could not be read (the span up to the next plausible header).
    Damaged,
}

/// One block of the physical walk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Block {
    /// Region index.
    pub region: usize,
    /// Device address of the header.
    pub address: u64,
    /// `address - origin`.
    pub offset: u64,
    /// Block bytes, header included (for a damaged span, its length).
    pub size: u64,
    /// What it is.
    pub kind: Kind,
    /// On the free list (free blocks and listed end markers).
    pub listed: bool,
    /// The allocation that made it, when a trace was given (see `--trace`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What kind of damage a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Damage {
    /// A size word that is no block size (zero, off the alignment grid, too small).
    BadHeader,
    /// A size that runs past the region's end marker.
    SizePastEnd,
    /// An allocated block whose link is not the (protected) NULL: the canary is wrong or the
    /// header was overwritten.
    CanaryMismatch,
    /// A free-list link that points outside every region or off the block grid.
    LinkOutsideHeap,
    /// A free-list link that does not go up in address.
    LinkOutOfOrder,
    /// A free-list link to an address where no block starts, or to an allocated block.
    LinkNotAFreeBlock,
    /// The free list ends (NULL) before `pxEnd`.
    ListEndsEarly,
    /// Two free blocks side by side: heap_4/5 always merge them.
    UnmergedNeighbours,
    /// A free block the free list does not reach: lost until the heap is reset.
    NotOnFreeList,
    /// An end marker that does not read as one (size not 0, or a link where none belongs).
    EndMarker,
    /// The image does not hold the bytes the walk needs.
    NotInImage,
    /// A fact given (or read from the firmware) disagrees with the image.
    Mismatch,
}

/// One thing that is wrong, at the block it is about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// Device address of the block (header) the finding is about.
    pub address: u64,
    /// `address - origin`.
    pub offset: u64,
    /// The kind.
    pub kind: Damage,
    /// What is wrong, in words.
    pub message: String,
}

/// The result of a walk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Walk {
    /// Every block in address order, end markers included.
    pub blocks: Vec<Block>,
    /// The free list as followed from its head: node addresses up to (without) `pxEnd`.
    pub free_list: Vec<u64>,
    /// Where the list was followed from.
    pub head_source: String,
    /// Everything that is wrong.
    pub findings: Vec<Finding>,
    /// Free bytes on the free list (whole blocks).
    pub free_bytes: u64,
    /// Nodes on the free list before `pxEnd`, intermediate end markers included (as
    /// `vPortGetHeapStats` counts them).
    pub free_blocks: u64,
    /// Largest free block.
    pub largest: u64,
    /// Smallest free block (`SIZE_MAX` of the target when there is none, as FreeRTOS reports).
    pub smallest: u64,
}

struct Region {
    start: u64,
    end: u64,
}

/// Each region's first block and end marker, as the heap lays them out: the start rounded up to
/// the alignment, the marker at `round_down(start + usable - header, align)`. `None` for a region
/// too small to hold a block (or one that would run past the address space).
pub fn bounds_checked(facts: &Facts) -> Vec<Option<(u64, u64)>> {
    let (hs, a) = (facts.header(), facts.align as u64);
    facts
        .regions
        .iter()
        .map(|&(addr, len)| {
            let start = addr.checked_next_multiple_of(a)?;
            let top = addr.checked_add(len)?;
            let end = top.checked_sub(hs)? / a * a;
            (end >= start.checked_add(hs + a)?).then_some((start, end))
        })
        .collect()
}

fn bounds(facts: &Facts) -> Vec<(u64, u64)> {
    bounds_checked(facts).into_iter().flatten().collect()
}

/// Walks the heap of `facts` in `mem`.
pub fn walk(mem: &Memory, facts: &Facts) -> Walk {
    let hs = facts.header();
    let regions: Vec<Region> = bounds(facts)
        .into_iter()
        .map(|(start, end)| Region { start, end })
        .collect();
    let base = regions.first().map_or(0, |r| r.start);
    let mut w = Walker {
        mem,
        facts,
        hs,
        base,
        findings: Vec::new(),
    };
    let pxend = regions.last().map_or(0, |r| r.end);
    if let Some(e) = facts.end
        && e != pxend
    {
        w.find(
            pxend,
            Damage::Mismatch,
            format!(
                "pxEnd is {e:#x}, but the regions put the end marker at {pxend:#x}: check --base/--regions/--target"
            ),
        );
    }

    // The free list first: its nodes are resynchronisation points for the physical walk.
    let (head, head_source) = match facts.head {
        Some(h) => (facts.decode(h, base), "xStart.pxNextFreeBlock".to_string()),
        None => (None, String::new()),
    };
    let mut blocks = Vec::new();
    let listed_guess: BTreeSet<u64> = match head {
        Some(h) => w.follow_raw(h, &regions, pxend),
        None => BTreeSet::new(),
    };
    for (i, r) in regions.iter().enumerate() {
        w.walk_region(i, r, &listed_guess, &mut blocks);
    }
    // The list, checked against the physical walk.
    let (head, head_source) = match head {
        Some(h) => (Some(h), head_source),
        None if facts.head.is_some() => (None, head_source),
        None => (
            blocks
                .iter()
                .find(|b| b.kind == Kind::Free || (b.kind == Kind::EndMarker && b.address != pxend))
                .map(|b| b.address),
            "the lowest free block (the list head is not in the image)".to_string(),
        ),
    };
    let free_list = w.follow_checked(head, &regions, pxend, &mut blocks);
    let listed: BTreeSet<u64> = free_list.iter().copied().collect();
    let mut prev_free: Option<&Block> = None;
    for b in &mut blocks {
        b.listed = listed.contains(&b.address);
    }
    for b in &blocks {
        if b.kind == Kind::Free && !b.listed {
            w.find(
                b.address,
                Damage::NotOnFreeList,
                format!(
                    "free block of {} bytes is not on the free list: lost until the heap is reset",
                    b.size
                ),
            );
        }
        if b.kind == Kind::Free
            && let Some(p) = prev_free
            && p.address + p.size == b.address
        {
            w.find(
                b.address,
                Damage::UnmergedNeighbours,
                format!(
                    "free block follows the free block at {:#x} without being merged with it",
                    p.address
                ),
            );
        }
        prev_free = (b.kind == Kind::Free).then_some(b);
    }
    let mut free_bytes = 0;
    let mut free_blocks = 0;
    let mut largest = 0;
    let mut smallest = facts.word_max();
    for b in blocks.iter().filter(|b| b.listed && b.address != pxend) {
        free_blocks += 1;
        free_bytes += b.size;
        largest = largest.max(b.size);
        if b.size > 0 {
            smallest = smallest.min(b.size);
        }
    }
    let mut findings = w.findings;
    findings.sort_by_key(|f| f.address);
    Walk {
        blocks,
        free_list,
        head_source,
        findings,
        free_bytes,
        free_blocks,
        largest,
        smallest,
    }
}

struct Walker<'a> {
    mem: &'a Memory,
    facts: &'a Facts,
    hs: u64,
    base: u64,
    findings: Vec<Finding>,
}

impl Walker<'_> {
    fn find(&mut self, address: u64, kind: Damage, message: String) {
        self.findings.push(Finding {
            address,
            offset: address.wrapping_sub(self.facts.origin),
            kind,
            message,
        });
    }

    /// (link, size word) of the header at `addr`.
    fn header(&self, addr: u64) -> Option<(Option<u64>, u64)> {
        let w = self.facts.word;
        let link = self.mem.word(addr, w)?;
        let size = self.mem.word(addr + w as u64, w)?;
        Some((self.facts.decode(link, self.base), size))
    }

    fn on_grid(&self, regions: &[Region], addr: u64) -> Option<usize> {
        let a = self.facts.align as u64;
        regions
            .iter()
            .position(|r| addr >= r.start && addr <= r.end && (addr - r.start) % a == 0)
    }

    /// The nodes reachable from `head` without any check but termination (ascending, on the
    /// grid): resynchronisation points for the physical walk.
    fn follow_raw(&self, head: u64, regions: &[Region], pxend: u64) -> BTreeSet<u64> {
        let mut out = BTreeSet::new();
        let mut node = head;
        while node != pxend && self.on_grid(regions, node).is_some() {
            out.insert(node);
            match self.header(node) {
                Some((Some(next), _)) if next > node => node = next,
                _ => break,
            }
        }
        out
    }

    /// Whether a plausible header starts at `addr` (for resynchronising the walk).
    fn plausible(&self, addr: u64, end: u64, listed: &BTreeSet<u64>) -> bool {
        if listed.contains(&addr) {
            return true;
        }
        let (hs, a, msb) = (self.hs, self.facts.align as u64, self.facts.msb());
        let ok = |link: Option<u64>, size: u64| {
            let s = size & !msb;
            size & msb != 0 && link.is_none() && s >= hs + a && s % a == 0 && addr + s <= end
        };
        match self.header(addr) {
            Some((link, size)) if ok(link, size) => {
                let next = addr + (size & !msb);
                next == end
                    || listed.contains(&next)
                    || matches!(self.header(next), Some((l, s)) if ok(l, s) || (s & msb == 0 && l.is_some()))
            }
            _ => false,
        }
    }

    fn walk_region(&mut self, ri: usize, r: &Region, listed: &BTreeSet<u64>, out: &mut Vec<Block>) {
        let (hs, a, msb) = (self.hs, self.facts.align as u64, self.facts.msb());
        let origin = self.facts.origin;
        let push = |out: &mut Vec<Block>, address, size, kind| {
            out.push(Block {
                region: ri,
                address,
                offset: address.wrapping_sub(origin),
                size,
                kind,
                listed: false,
                source: None,
            })
        };
        let mut at = r.start;
        while at < r.end {
            let Some((link, word)) = self.header(at) else {
                self.find(
                    at,
                    Damage::NotInImage,
                    format!(
                        "the image does not hold the header at {at:#x}: the rest of region {ri} is not read"
                    ),
                );
                push(out, at, r.end - at, Kind::Damaged);
                break;
            };
            let size = word & !msb;
            let allocated = word & msb != 0;
            let fault = if size < hs + a || size % a != 0 {
                Some((
                    Damage::BadHeader,
                    format!(
                        "size word {word:#x} is not a block size (a multiple of {a}, at least {})",
                        hs + a
                    ),
                ))
            } else if at + size > r.end {
                Some((
                    Damage::SizePastEnd,
                    format!(
                        "block of {size} bytes runs {} bytes past its region's end marker at {:#x}",
                        at + size - r.end,
                        r.end
                    ),
                ))
            } else {
                None
            };
            if let Some((kind, mut message)) = fault {
                if let Some(below) = out.last()
                    && below.kind == Kind::Allocated
                    && below.address + below.size == at
                {
                    let _ = write!(
                        message,
                        "; the allocated block below it ({:#x}, {} bytes) ends here: an overrun of that block is the usual cause",
                        below.address, below.size
                    );
                }
                self.find(at, kind, message);
                let next = (at + a..r.end)
                    .step_by(a as usize)
                    .find(|&c| self.plausible(c, r.end, listed))
                    .unwrap_or(r.end);
                push(out, at, next - at, Kind::Damaged);
                at = next;
                continue;
            }
            if allocated && let Some(l) = link {
                let message = if self.facts.canary != 0 {
                    format!(
                        "allocated block's link decodes to {l:#x}, not NULL: the canary {:#x} does not match this heap, or the header was overwritten",
                        self.facts.canary
                    )
                } else {
                    format!(
                        "allocated block's link holds {l:#x}, not NULL: overwritten, or a heap protector image (give --canary)"
                    )
                };
                self.find(at, Damage::CanaryMismatch, message);
            }
            push(
                out,
                at,
                size,
                if allocated {
                    Kind::Allocated
                } else {
                    Kind::Free
                },
            );
            at += size;
        }
        // The end marker.
        match self.header(r.end) {
            Some((link, 0)) => {
                let last = ri + 1 == self.facts.regions.len();
                if last && link.is_some() {
                    self.find(
                        r.end,
                        Damage::EndMarker,
                        "pxEnd's link is not NULL".to_string(),
                    );
                }
                push(out, r.end, 0, Kind::EndMarker);
            }
            Some((_, word)) => {
                self.find(
                    r.end,
                    Damage::EndMarker,
                    format!("end marker of region {ri} has size word {word:#x}, not 0"),
                );
                push(out, r.end, 0, Kind::EndMarker);
            }
            None => self.find(
                r.end,
                Damage::NotInImage,
                format!("the image does not hold region {ri}'s end marker"),
            ),
        }
    }

    /// Follows the list from `head`, checking every link against the physical walk; a bad link is
    /// reported at the node that holds it and the walk goes on from the next free block above it.
    fn follow_checked(
        &mut self,
        head: Option<u64>,
        regions: &[Region],
        pxend: u64,
        blocks: &mut [Block],
    ) -> Vec<u64> {
        let mut out = Vec::new();
        let Some(mut node) = head else {
            if self.facts.head.is_some() {
                self.find(
                    regions.first().map_or(0, |r| r.start),
                    Damage::ListEndsEarly,
                    "xStart.pxNextFreeBlock is NULL".to_string(),
                );
            }
            return out;
        };
        let at = |addr: u64| blocks.binary_search_by_key(&addr, |b| b.address).ok();
        // The holder of the link being checked (None: xStart).
        let mut holder: Option<u64> = None;
        loop {
            if node == pxend && holder.is_none_or(|h| h < node) {
                return out;
            }
            let here = holder.unwrap_or(self.facts.origin);
            let fault = if self.on_grid(regions, node).is_none() {
                Some((
                    Damage::LinkOutsideHeap,
                    format!(
                        "free-list link {node:#x} points outside the heap's regions or off the block grid"
                    ),
                ))
            } else if holder.is_some_and(|h| node <= h) {
                Some((
                    Damage::LinkOutOfOrder,
                    format!(
                        "free-list link {node:#x} goes down in address (the list is address-ordered)"
                    ),
                ))
            } else {
                match at(node).map(|i| blocks[i].kind) {
                    Some(Kind::Free) | Some(Kind::EndMarker) => None,
                    Some(Kind::Allocated) => Some((
                        Damage::LinkNotAFreeBlock,
                        format!("free-list link {node:#x} leads to an allocated block"),
                    )),
                    _ => Some((
                        Damage::LinkNotAFreeBlock,
                        format!(
                            "free-list link {node:#x} leads to an address where no block starts"
                        ),
                    )),
                }
            };
            if let Some((kind, message)) = fault {
                self.find(here, kind, message);
                // Resynchronise: the next free block above the holder.
                let next = blocks.iter().find(|b| {
                    b.address > here
                        && (b.kind == Kind::Free || b.kind == Kind::EndMarker)
                        && !out.contains(&b.address)
                });
                match next {
                    // The holder stays: the node is above it, so the walk only goes up.
                    Some(b) => {
                        node = b.address;
                        continue;
                    }
                    None => return out,
                }
            }
            out.push(node);
            holder = Some(node);
            match self.header(node) {
                Some((Some(n), _)) => node = n,
                Some((None, _)) => {
                    self.find(
                        node,
                        Damage::ListEndsEarly,
                        "free-list link is NULL before pxEnd: the blocks above are unreachable"
                            .to_string(),
                    );
                    return out;
                }
                None => return out,
            }
        }
    }
}
