//! Small, obviously correct models of where each FreeRTOS scheme places blocks, written from the
//! semantics document with plain vectors and linear scans (no links, no raw memory). Model offsets
//! are relative to the heap base (the aligned start of region 0), as are the real heap's.
#![allow(dead_code)]

/// The request-size rule of heap_2/4/5 in a target `size_t` of `size_max`.
pub fn wanted(n: usize, header: usize, align: usize, size_max: usize) -> Option<usize> {
    if n == 0 || n > size_max - header {
        return None;
    }
    let w = n + header;
    let w2 = w.checked_next_multiple_of(align)?;
    (w2 <= size_max).then_some(w2)
}

/// Statistics as `vPortGetHeapStats` would report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelStats {
    pub free: usize,
    pub min_ever: usize,
    pub largest: usize,
    pub smallest: usize,
    pub blocks: usize,
    pub allocs: usize,
    pub frees: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    off: usize,
    size: usize,
    free: bool,
    /// heap_2: when the block entered the free list (newest wins among equal sizes).
    stamp: u64,
}

/// heap_4 / heap_5: blocks per region in address order; first fit; merge on free.
pub struct FirstFit {
    header: usize,
    align: usize,
    size_max: usize,
    /// (start, end) of each region; the end marker sits at `end`.
    regions: Vec<(usize, usize)>,
    blocks: Vec<Vec<Block>>,
    /// Whether region i's end marker is still a free-list node (the last one always is).
    marker_listed: Vec<bool>,
    free: usize,
    min_ever: usize,
    allocs: usize,
    frees: usize,
}

impl FirstFit {
    pub fn new(header: usize, align: usize, size_max: usize, regions: &[(usize, usize)]) -> Self {
        let blocks = regions
            .iter()
            .map(|&(s, e)| {
                vec![Block {
                    off: s,
                    size: e - s,
                    free: true,
                    stamp: 0,
                }]
            })
            .collect();
        let free = regions.iter().map(|(s, e)| e - s).sum();
        FirstFit {
            header,
            align,
            size_max,
            regions: regions.to_vec(),
            blocks,
            marker_listed: vec![true; regions.len()],
            free,
            min_ever: free,
            allocs: 0,
            frees: 0,
        }
    }

    /// Returns the block offset, or None.
    pub fn malloc(&mut self, n: usize) -> Option<usize> {
        let w = wanted(n, self.header, self.align, self.size_max)?;
        // The allocated bit (MSB of size_t) must be clear in the block size.
        if w > self.size_max / 2 || w > self.free {
            return None;
        }
        // The lowest-addressed free block that fits.
        let (r, i) = self
            .blocks
            .iter()
            .enumerate()
            .flat_map(|(r, bs)| bs.iter().enumerate().map(move |(i, b)| (r, i, *b)))
            .find(|&(_, _, b)| b.free && b.size >= w)
            .map(|(r, i, _)| (r, i))?;
        let b = self.blocks[r][i];
        if b.size - w > 2 * self.header {
            self.blocks[r][i].size = w;
            self.blocks[r].insert(
                i + 1,
                Block {
                    off: b.off + w,
                    size: b.size - w,
                    free: true,
                    stamp: 0,
                },
            );
        }
        self.blocks[r][i].free = false;
        self.free -= self.blocks[r][i].size;
        self.min_ever = self.min_ever.min(self.free);
        self.allocs += 1;
        Some(b.off)
    }

    pub fn free(&mut self, off: usize) {
        let (r, mut i) = self.find(off);
        let last = self.regions.len() - 1;
        self.blocks[r][i].free = true;
        self.free += self.blocks[r][i].size;
        self.frees += 1;
        if i > 0 && self.blocks[r][i - 1].free {
            self.blocks[r][i - 1].size += self.blocks[r][i].size;
            self.blocks[r].remove(i);
            i -= 1;
        }
        if i + 1 < self.blocks[r].len() {
            if self.blocks[r][i + 1].free {
                self.blocks[r][i].size += self.blocks[r][i + 1].size;
                self.blocks[r].remove(i + 1);
            }
        } else if r != last {
            // Nothing between the freed block and its region's end marker: the marker is the
            // block's list successor and is absorbed (it leaves the list). When a free neighbour
            // lies in between, only that neighbour is absorbed and the marker stays listed.
            self.marker_listed[r] = false;
        }
    }

    fn find(&self, off: usize) -> (usize, usize) {
        for (r, bs) in self.blocks.iter().enumerate() {
            if let Some(i) = bs.iter().position(|b| b.off == off && !b.free) {
                return (r, i);
            }
        }
        panic!("model: no allocated block at {off}");
    }

    pub fn block_size(&self, off: usize) -> usize {
        let (r, i) = self.find(off);
        self.blocks[r][i].size
    }

    pub fn stats(&self) -> ModelStats {
        let free_blocks: Vec<usize> = self
            .blocks
            .iter()
            .flatten()
            .filter(|b| b.free)
            .map(|b| b.size)
            .collect();
        let markers = self.marker_listed[..self.regions.len() - 1]
            .iter()
            .filter(|&&m| m)
            .count();
        ModelStats {
            free: self.free,
            min_ever: self.min_ever,
            largest: free_blocks.iter().copied().max().unwrap_or(0),
            smallest: free_blocks.iter().copied().min().unwrap_or(self.size_max),
            blocks: free_blocks.len() + markers,
            allocs: self.allocs,
            frees: self.frees,
        }
    }

    pub fn reset_min_ever(&mut self) {
        self.min_ever = self.free;
    }
}

/// heap_2: one region; best fit by size, newest first among equal sizes; never merges.
pub struct BestFit {
    header: usize,
    align: usize,
    size_max: usize,
    blocks: Vec<Block>,
    clock: u64,
    free: usize,
    min_ever: usize,
    allocs: usize,
    frees: usize,
}

impl BestFit {
    pub fn new(header: usize, align: usize, size_max: usize, len: usize) -> Self {
        BestFit {
            header,
            align,
            size_max,
            blocks: vec![Block {
                off: 0,
                size: len,
                free: true,
                stamp: 0,
            }],
            clock: 1,
            free: len,
            min_ever: len,
            allocs: 0,
            frees: 0,
        }
    }

    pub fn malloc(&mut self, n: usize) -> Option<usize> {
        let w = wanted(n, self.header, self.align, self.size_max)?;
        if w > self.size_max / 2 || w > self.free {
            return None;
        }
        // Smallest block that fits; among equal sizes the most recently freed.
        let i = (0..self.blocks.len())
            .filter(|&i| self.blocks[i].free && self.blocks[i].size >= w)
            .min_by_key(|&i| (self.blocks[i].size, u64::MAX - self.blocks[i].stamp))?;
        let b = self.blocks[i];
        if b.size - w > 2 * self.header {
            self.blocks[i].size = w;
            self.clock += 1;
            self.blocks.insert(
                i + 1,
                Block {
                    off: b.off + w,
                    size: b.size - w,
                    free: true,
                    stamp: self.clock,
                },
            );
        }
        self.blocks[i].free = false;
        self.free -= self.blocks[i].size;
        self.min_ever = self.min_ever.min(self.free);
        self.allocs += 1;
        Some(b.off)
    }

    pub fn free(&mut self, off: usize) {
        let i = self
            .blocks
            .iter()
            .position(|b| b.off == off && !b.free)
            .expect("model: no allocated block there");
        self.clock += 1;
        self.blocks[i].free = true;
        self.blocks[i].stamp = self.clock;
        self.free += self.blocks[i].size;
        self.frees += 1;
    }

    pub fn stats(&self) -> ModelStats {
        let free_blocks: Vec<usize> = self
            .blocks
            .iter()
            .filter(|b| b.free)
            .map(|b| b.size)
            .collect();
        ModelStats {
            free: self.free,
            min_ever: self.min_ever,
            largest: free_blocks.iter().copied().max().unwrap_or(0),
            smallest: free_blocks.iter().copied().min().unwrap_or(self.size_max),
            blocks: free_blocks.len(),
            allocs: self.allocs,
            frees: self.frees,
        }
    }
}

/// heap_1: a bump pointer with the strict `<` of heap_1.c.
pub struct Bump {
    align: usize,
    size_max: usize,
    adjusted: usize,
    next: usize,
}

impl Bump {
    pub fn new(align: usize, size_max: usize, total: usize) -> Self {
        Bump {
            align,
            size_max,
            adjusted: total - align,
            next: 0,
        }
    }

    pub fn malloc(&mut self, n: usize) -> Option<usize> {
        let w = n
            .checked_next_multiple_of(self.align)
            .filter(|&w| w <= self.size_max)?;
        if w == 0
            || self
                .next
                .checked_add(w)
                .is_none_or(|end| end >= self.adjusted)
        {
            return None;
        }
        let off = self.next;
        self.next += w;
        Some(off)
    }

    pub fn free_bytes(&self) -> usize {
        self.adjusted - self.next
    }
}
