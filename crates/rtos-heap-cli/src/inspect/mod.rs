//! `rtos-heap inspect`: reads a heap_4 / heap_5 image taken from a device (a raw dump or an ELF
//! core file, with the firmware's ELF for the symbols) and says what is in it, what is wrong with
//! it and why memory ran out.
//!
//! The image may come from FreeRTOS's own `heap_4.c` / `heap_5.c` (absolute links, NULL = 0, the
//! heap protector's XOR) or from rtos-heap (links as offsets from the heap base, "none" = all
//! ones): see [`Flavour`]. The walk ([`walk::walk`]) reports every block, follows the free list
//! and checks the two against each other; [`inspect`] adds the statistics `vPortGetHeapStats`
//! would report, the largest request that would succeed, a size histogram, and — with the trace
//! that led to the image — which allocation holds each block ([`tie::tie`]).

pub mod memory;
pub mod render;
pub mod tie;
pub mod walk;

use anyhow::{Result, bail};

use crate::layout::{Layout, Scheme};
use crate::trace::Op;
use memory::{Firmware, Memory};
pub use walk::{Block, Damage, Facts, Finding, Flavour, Kind, Walk};

/// The heap's counters, as the device holds them (`xFreeBytesRemaining` …), when the image or the
/// trace gives them.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Counters {
    /// `xFreeBytesRemaining`.
    pub free_bytes: Option<u64>,
    /// `xMinimumEverFreeBytesRemaining`.
    pub min_ever: Option<u64>,
    /// `xNumberOfSuccessfulAllocations`.
    pub allocs: Option<u64>,
    /// `xNumberOfSuccessfulFrees`.
    pub frees: Option<u64>,
}

/// What the heap would report now: `xPortGetFreeHeapSize`, `xPortGetMinimumEverFreeHeapSize` and
/// the `HeapStats_t` fields (`None`: neither the image nor a trace tells).
#[derive(Debug, Clone, serde::Serialize)]
#[allow(non_snake_case)]
pub struct Stats {
    /// `xPortGetFreeHeapSize()`.
    pub xPortGetFreeHeapSize: u64,
    /// `xPortGetMinimumEverFreeHeapSize()`.
    pub xPortGetMinimumEverFreeHeapSize: Option<u64>,
    /// `HeapStats_t::xAvailableHeapSpaceInBytes`.
    pub xAvailableHeapSpaceInBytes: u64,
    /// `HeapStats_t::xSizeOfLargestFreeBlockInBytes`.
    pub xSizeOfLargestFreeBlockInBytes: u64,
    /// `HeapStats_t::xSizeOfSmallestFreeBlockInBytes`.
    pub xSizeOfSmallestFreeBlockInBytes: u64,
    /// `HeapStats_t::xNumberOfFreeBlocks`.
    pub xNumberOfFreeBlocks: u64,
    /// `HeapStats_t::xMinimumEverFreeBytesRemaining`.
    pub xMinimumEverFreeBytesRemaining: Option<u64>,
    /// `HeapStats_t::xNumberOfSuccessfulAllocations`.
    pub xNumberOfSuccessfulAllocations: Option<u64>,
    /// `HeapStats_t::xNumberOfSuccessfulFrees`.
    pub xNumberOfSuccessfulFrees: Option<u64>,
}

/// One bucket of the block-size histogram: blocks of `from..=to` bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bucket {
    /// Smallest size in the bucket.
    pub from: u64,
    /// Largest size in the bucket.
    pub to: u64,
    /// Allocated blocks.
    pub allocated: u64,
    /// Free blocks.
    pub free: u64,
}

/// Everything `inspect` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    /// "heap_4" or "heap_5".
    pub scheme: Scheme,
    /// Device layout.
    pub layout: Layout,
    /// Whose layout the image was read as.
    pub flavour: Flavour,
    /// Address offsets are counted from.
    pub origin: u64,
    /// The regions: (address, bytes).
    pub regions: Vec<(u64, u64)>,
    /// The walk: blocks, free list, findings.
    #[serde(flatten)]
    pub walk: Walk,
    /// What the heap would report.
    pub stats: Stats,
    /// Where the counters came from (image, trace, or nowhere).
    pub counters_from: String,
    /// Bytes in use (allocated blocks, headers included).
    pub used_bytes: u64,
    /// `1 - largest / free`: how much of the free memory cannot serve one request.
    pub fragmentation: f64,
    /// The largest `pvPortMalloc(n)` that would succeed now.
    pub largest_request: u64,
    /// Block sizes, by power-of-two bucket.
    pub histogram: Vec<Bucket>,
    /// The trace tie-in, when a trace was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<tie::TieIn>,
}

impl Inspection {
    /// Whether anything is wrong.
    pub fn damaged(&self) -> bool {
        !self.walk.findings.is_empty()
    }
}

/// The facts of a heap taken from the firmware's symbols, for what the caller did not give:
/// `ucHeap` (heap_4's region), `xStart`, `pxEnd`, `xHeapCanary` and the counters when the image
/// holds them.
///
/// Returns the counters read.
pub fn facts_from_elf(fw: &Firmware, mem: &Memory, facts: &mut Facts) -> Counters {
    let w = fw.word;
    let read = |name: &str| fw.get(name).and_then(|s| mem.word(s.addr, w));
    if facts.regions.is_empty()
        && !facts.heap5
        && let Some(s) = fw.get("ucHeap")
    {
        facts.regions.push((s.addr, s.size));
        facts.origin = s.addr;
    }
    if facts.head.is_none() {
        facts.head = read("xStart");
    }
    if facts.end.is_none() {
        facts.end = read("pxEnd").filter(|&e| e != 0);
    }
    if facts.canary == 0
        && let Some(c) = read("xHeapCanary")
    {
        facts.canary = c;
    }
    Counters {
        free_bytes: read("xFreeBytesRemaining"),
        min_ever: read("xMinimumEverFreeBytesRemaining"),
        allocs: read("xNumberOfSuccessfulAllocations"),
        frees: read("xNumberOfSuccessfulFrees"),
    }
}

/// The trace to tie the image to: its operations and the prefix to stop at (`None`: the last
/// prefix whose replay is the image).
pub struct TraceInput<'a> {
    /// The operations.
    pub ops: &'a [Op],
    /// Stop after this many.
    pub at: Option<u64>,
}

/// Inspects the heap of `facts` in `mem`.
///
/// # Errors
/// Facts that cannot describe a heap (no region, a layout rtos-heap does not know), or a trace
/// that does not lead to the image.
pub fn inspect(
    mem: &Memory,
    facts: &Facts,
    counters: Counters,
    trace: Option<TraceInput<'_>>,
) -> Result<Inspection> {
    let layout = Layout::new(facts.word * 8, facts.align).map_err(anyhow::Error::msg)?;
    if facts.regions.is_empty() {
        bail!("no heap region: give --base and --heap-size (heap_4), --regions (heap_5), or --elf");
    }
    if !facts.heap5 && facts.regions.len() != 1 {
        bail!("heap_4 has one region; for several give --scheme heap5");
    }
    for w in facts.regions.windows(2) {
        if w[1].0 < w[0].0 + w[0].1 {
            bail!(
                "regions must be in ascending address order without overlap: {:#x}+{} and {:#x}",
                w[0].0,
                w[0].1,
                w[1].0
            );
        }
    }
    for (k, b) in walk::bounds_checked(facts).iter().enumerate() {
        if b.is_none() {
            let (addr, len) = facts.regions[k];
            bail!(
                "region {k} ({addr:#x}, {len} bytes) cannot hold a block of this layout (a header, an end marker and one block)"
            );
        }
    }
    let scheme = if facts.heap5 {
        Scheme::Heap5
    } else {
        Scheme::Heap4
    };
    let mut walk = walk::walk(mem, facts);
    let mut counters_from = Vec::new();
    let mut c = counters;
    if c.free_bytes.is_some() || c.min_ever.is_some() {
        counters_from.push("the image (the firmware's symbols)");
    }
    if let Some(free) = c.free_bytes
        && free != walk.free_bytes
    {
        let address = facts.origin;
        walk.findings.push(Finding {
            address,
            offset: 0,
            kind: Damage::Mismatch,
            message: format!(
                "xFreeBytesRemaining is {free}, but the free list holds {} bytes",
                walk.free_bytes
            ),
        });
    }
    let mut tie_in = None;
    if let Some(t) = trace {
        let a = facts.align as u64;
        let starts: Vec<u64> = facts
            .regions
            .iter()
            .map(|&(addr, _)| addr.div_ceil(a) * a)
            .collect();
        let lens: Vec<usize> = facts
            .regions
            .iter()
            .zip(&starts)
            .map(|(&(addr, len), &s)| (len - (s - addr)) as usize)
            .collect();
        let image: Vec<tie::Shape> = walk
            .blocks
            .iter()
            .filter(|b| b.kind != Kind::EndMarker)
            .map(|b| {
                let kind = match b.kind {
                    Kind::Allocated => Some(true),
                    Kind::Free => Some(false),
                    _ => None,
                };
                (b.region, b.address - starts[b.region], b.size, kind)
            })
            .collect();
        let tied = tie::tie(scheme, layout, &lens, t.ops, &image, t.at)?;
        for &((region, off), line, index) in &tied.sources {
            let addr = starts[region] + off;
            if let Ok(i) = walk.blocks.binary_search_by_key(&addr, |b| b.address) {
                walk.blocks[i].source =
                    Some(format!("trace line {line} (operation {})", index + 1));
            }
        }
        c.min_ever = c.min_ever.or(Some(tied.min_ever));
        c.allocs = c.allocs.or(Some(tied.allocs));
        c.frees = c.frees.or(Some(tied.frees));
        c.free_bytes = c.free_bytes.or(Some(tied.free_bytes));
        counters_from.push("the replay of the trace");
        tie_in = Some(tied);
    }
    let free = c.free_bytes.unwrap_or(walk.free_bytes);
    let stats = Stats {
        xPortGetFreeHeapSize: free,
        xPortGetMinimumEverFreeHeapSize: c.min_ever,
        xAvailableHeapSpaceInBytes: free,
        xSizeOfLargestFreeBlockInBytes: walk.largest,
        xSizeOfSmallestFreeBlockInBytes: walk.smallest,
        xNumberOfFreeBlocks: walk.free_blocks,
        xMinimumEverFreeBytesRemaining: c.min_ever,
        xNumberOfSuccessfulAllocations: c.allocs,
        xNumberOfSuccessfulFrees: c.frees,
    };
    let used_bytes = walk
        .blocks
        .iter()
        .filter(|b| b.kind == Kind::Allocated)
        .map(|b| b.size)
        .sum();
    let fragmentation = if walk.free_bytes == 0 {
        0.0
    } else {
        1.0 - walk.largest as f64 / walk.free_bytes as f64
    };
    let largest_request = walk.largest.saturating_sub(facts.header());
    let histogram = histogram(&walk.blocks);
    walk.findings.sort_by_key(|f| f.address);
    Ok(Inspection {
        scheme,
        layout,
        flavour: facts.flavour,
        origin: facts.origin,
        regions: facts.regions.clone(),
        walk,
        stats,
        counters_from: if counters_from.is_empty() {
            "nowhere: the minimum ever free and the allocation counts are not in a heap image (give --elf with a core file, or --trace)".into()
        } else {
            counters_from.join(", then ")
        },
        used_bytes,
        fragmentation,
        largest_request,
        histogram,
        trace: tie_in,
    })
}

fn histogram(blocks: &[Block]) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in blocks {
        let free = match b.kind {
            Kind::Allocated => false,
            Kind::Free => true,
            _ => continue,
        };
        let to = b.size.max(1).next_power_of_two();
        let i = match out.binary_search_by_key(&to, |k| k.to) {
            Ok(i) => i,
            Err(i) => {
                out.insert(
                    i,
                    Bucket {
                        from: to / 2 + 1,
                        to,
                        allocated: 0,
                        free: 0,
                    },
                );
                i
            }
        };
        if free {
            out[i].free += 1;
        } else {
            out[i].allocated += 1;
        }
    }
    out
}

/// Parses the `key=value` facts file of a heap image (the `.meta` files of `../shared/dumps`;
/// see docs/cli.md): `scheme`, `word_bytes`, `portBYTE_ALIGNMENT`, `base_address`, `bytes`,
/// `xStart_pxNextFreeBlock`, `pxEnd`, `xHeapCanary`, `region=ADDR:LEN` (repeated).
///
/// # Errors
/// A line that is not `key=value`, an unknown key or a bad number.
pub fn parse_facts_file(text: &str, flavour: Flavour) -> Result<Facts> {
    let mut f = Facts {
        heap5: false,
        word: 4,
        align: 8,
        flavour,
        regions: Vec::new(),
        canary: 0,
        head: None,
        end: None,
        origin: 0,
    };
    let mut base = None;
    let mut bytes = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!("line {}: not key=value: {line:?}", i + 1);
        };
        let num = |v: &str| parse_u64(v).map_err(|e| anyhow::anyhow!("line {}: {k}: {e}", i + 1));
        match k.trim() {
            "scheme" => {
                f.heap5 = match v.trim() {
                    "heap_4" | "heap4" => false,
                    "heap_5" | "heap5" => true,
                    s => bail!(
                        "line {}: scheme {s:?}: inspect reads heap_4 and heap_5",
                        i + 1
                    ),
                }
            }
            "word_bytes" => f.word = num(v)? as usize,
            "portBYTE_ALIGNMENT" => f.align = num(v)? as usize,
            "base_address" => base = Some(num(v)?),
            "bytes" => bytes = Some(num(v)?),
            "xStart_pxNextFreeBlock" => f.head = Some(num(v)?),
            "pxEnd" => f.end = Some(num(v)?),
            "xHeapCanary" => f.canary = num(v)?,
            "region" => {
                let Some((a, l)) = v.split_once(':') else {
                    bail!("line {}: region is ADDRESS:BYTES", i + 1);
                };
                f.regions.push((num(a)?, num(l)?));
            }
            other => bail!("line {}: unknown key {other:?}", i + 1),
        }
    }
    let Some(base) = base else {
        bail!("the facts file has no base_address");
    };
    f.origin = base;
    if !f.heap5 {
        let Some(bytes) = bytes else {
            bail!("the facts file has no bytes (configTOTAL_HEAP_SIZE)");
        };
        f.regions = vec![(base, bytes)];
    }
    Ok(f)
}

/// `0x1f`, `31`, `32K`: an address or a size.
///
/// # Errors
/// A message naming the forms.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).map_err(|_| format!("`{s}` is not a hex number")),
        None => crate::layout::parse_bytes(t).map(|v| v as u64),
    }
}

#[cfg(test)]
mod tests;
