//! The workloads every rtos-heap performance figure is measured on, generated exactly as
//! `shared/docs/workloads.md` defines them (same xorshift64* generator, seeds and sizes), so that
//! the CLI's demo, the benchmarks and other tools replay the very same operations.
//!
//! A workload is a list of [`Op`]s over allocation ids; a free names the id (and so the original
//! size and alignment) of its allocation. Generation never looks at an allocator.
//!
//! ```
//! let w = rtos_heap_workloads::rtos();
//! assert_eq!(w.heap_size, 96 * 1024);
//! assert!(w.ops.len() > 100_000);
//! ```

/// xorshift64* as specified in `workloads.md`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with the given seed (state).
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`: the high 64 bits of `out * n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`: `(out >> 11) / 2^53`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One operation of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Allocate `size` bytes aligned to `align`, known from then on as `id`.
    Alloc {
        /// Allocation identity (unique within the workload).
        id: u32,
        /// Requested bytes.
        size: u32,
        /// Requested alignment.
        align: u32,
    },
    /// Free the allocation `id`.
    Free {
        /// Identity of the allocation to free.
        id: u32,
    },
}

/// A named workload: heap size, untimed setup, timed operations.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Name as in `workloads.md`.
    pub name: String,
    /// Heap size in bytes the workload is defined for.
    pub heap_size: usize,
    /// Operations run before timing starts (e.g. the holes of `fragmented`).
    pub setup: Vec<Op>,
    /// The timed operations.
    pub ops: Vec<Op>,
}

impl Workload {
    /// Number of allocation ids used (ids are `0..id_count()`).
    pub fn id_count(&self) -> usize {
        self.setup
            .iter()
            .chain(&self.ops)
            .filter(|o| matches!(o, Op::Alloc { .. }))
            .count()
    }

    /// Largest total of requested bytes live at once (setup and timed ops), if every op succeeds.
    pub fn peak_live_bytes(&self) -> usize {
        let mut sizes = vec![0u32; self.id_count()];
        let (mut live, mut peak) = (0usize, 0usize);
        for op in self.setup.iter().chain(&self.ops) {
            match *op {
                Op::Alloc { id, size, .. } => {
                    sizes[id as usize] = size;
                    live += size as usize;
                    peak = peak.max(live);
                }
                Op::Free { id } => live -= sizes[id as usize] as usize,
            }
        }
        peak
    }
}

/// Hands out ids and records operations.
#[derive(Default)]
struct Recorder {
    ops: Vec<Op>,
    next_id: u32,
}

impl Recorder {
    fn alloc(&mut self, size: u64) -> u32 {
        self.alloc_aligned(size, 8)
    }
    fn alloc_aligned(&mut self, size: u64, align: u32) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.ops.push(Op::Alloc {
            id,
            size: size as u32,
            align,
        });
        id
    }
    fn free(&mut self, id: u32) {
        self.ops.push(Op::Free { id });
    }
}

/// `random`: 1 MiB, seed 0x5EED0001, 200,000 steps of alloc `range(8, 512)` or free a random live
/// block (swap-remove).
pub fn random() -> Workload {
    let mut rng = Rng::new(0x5EED_0001);
    let mut r = Recorder::default();
    let mut live: Vec<u32> = Vec::new();
    for _ in 0..200_000 {
        if live.is_empty() || (live.len() < 1000 && rng.unit() < 0.5) {
            let size = rng.range(8, 512);
            live.push(r.alloc(size));
        } else {
            let i = rng.below(live.len() as u64) as usize;
            r.free(live.swap_remove(i));
        }
    }
    Workload {
        name: "random".into(),
        heap_size: 1 << 20,
        setup: Vec::new(),
        ops: r.ops,
    }
}

/// `rtos`: a FreeRTOS-like application in 96 KiB, seed 0x5EED0002: 16 tasks (stack then TCB),
/// 24 queues, 32 timers, 24 semaphores, then 100,000 steps of messages with lifetimes and a task
/// replaced every 1,000 steps.
pub fn rtos() -> Workload {
    let mut rng = Rng::new(0x5EED_0002);
    let mut r = Recorder::default();
    let task = |r: &mut Recorder, rng: &mut Rng| {
        let stack = r.alloc(512 + 256 * rng.range(0, 14));
        let tcb = r.alloc(160);
        (stack, tcb)
    };
    let mut tasks: Vec<(u32, u32)> = (0..16).map(|_| task(&mut r, &mut rng)).collect();
    for _ in 0..24 {
        let len = rng.range(1, 32);
        let item = rng.range(4, 64);
        r.alloc(80 + len * item);
    }
    for _ in 0..32 {
        r.alloc(48);
    }
    for _ in 0..24 {
        r.alloc(80);
    }
    // Messages by the step at which they die.
    let mut dying: Vec<Vec<u32>> = vec![Vec::new(); 100_000 + 65];
    for step in 0..100_000usize {
        for id in std::mem::take(&mut dying[step]) {
            r.free(id);
        }
        let size = rng.range(16, 256);
        let life = rng.range(1, 64) as usize;
        let id = r.alloc(size);
        dying[step + life].push(id);
        if (step + 1) % 1000 == 0 {
            let k = rng.below(16) as usize;
            let (stack, tcb) = tasks[k];
            r.free(stack);
            r.free(tcb);
            tasks[k] = task(&mut r, &mut rng);
        }
    }
    Workload {
        name: "rtos".into(),
        heap_size: 96 * 1024,
        setup: Vec::new(),
        ops: r.ops,
    }
}

/// The hole-making setup of `fragmented` and `ladder`: `2 * holes` blocks of `size`, every other
/// one freed. Returns the recorder and the ids still live.
fn holes(holes: usize, size: u64) -> (Recorder, Vec<u32>) {
    let mut r = Recorder::default();
    let ids: Vec<u32> = (0..2 * holes).map(|_| r.alloc(size)).collect();
    let mut live = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        if i % 2 == 0 {
            r.free(id);
        } else {
            live.push(id);
        }
    }
    (r, live)
}

/// `fragmented`: 1 MiB; setup 10,000 blocks of 32 bytes with every other one freed (5,000 holes);
/// timed: 2,000 times allocate 4,096 bytes and free it.
pub fn fragmented() -> Workload {
    let (mut r, _) = holes(5_000, 32);
    let setup = std::mem::take(&mut r.ops);
    for _ in 0..2_000 {
        let id = r.alloc(4096);
        r.free(id);
    }
    Workload {
        name: "fragmented".into(),
        heap_size: 1 << 20,
        setup,
        ops: r.ops,
    }
}

/// The `ladder` values of K.
pub const LADDER_HOLES: [usize; 6] = [16, 64, 256, 1024, 4096, 16384];

/// `ladder` with `k` holes: 2K blocks of 16 bytes, every other one freed; timed: allocate 64 bytes
/// and free it, then free and re-allocate the highest-addressed live block. `rounds` repetitions.
pub fn ladder(k: usize, rounds: usize) -> Workload {
    let (mut r, mut live) = holes(k, 16);
    let setup = std::mem::take(&mut r.ops);
    let top = live.len() - 1;
    for _ in 0..rounds {
        let id = r.alloc(64);
        r.free(id);
        r.free(live[top]);
        live[top] = r.alloc(16);
    }
    Workload {
        name: format!("ladder{k}"),
        // 2K blocks of at most 16 + 16 header bytes (64-bit), plus room for the 64-byte requests.
        heap_size: (2 * k * 48 + 4096).next_power_of_two(),
        setup,
        ops: r.ops,
    }
}

/// `efficiency` for one seed: 256 KiB; allocate (probability 0.7, or when nothing is live) a
/// log-uniform size in 8..=4096, else free a random live block. The replay stops at the first failed
/// allocation; `steps` bounds the generated sequence (200,000 is far past any 256 KiB heap's limit).
pub fn efficiency(seed: u64, steps: usize) -> Workload {
    let mut rng = Rng::new(seed);
    let mut r = Recorder::default();
    let mut live: Vec<u32> = Vec::new();
    for _ in 0..steps {
        if live.is_empty() || rng.unit() < 0.7 {
            let size = (8.0 * (4097.0f64 / 8.0).powf(rng.unit())).floor() as u64;
            live.push(r.alloc(size.clamp(8, 4096)));
        } else {
            let i = rng.below(live.len() as u64) as usize;
            r.free(live.swap_remove(i));
        }
    }
    Workload {
        name: format!("efficiency{seed}"),
        heap_size: 256 * 1024,
        setup: Vec::new(),
        ops: r.ops,
    }
}

/// Which of the three `pool` patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolPattern {
    /// (a) 100,000 alloc/free pairs, LIFO.
    Lifo,
    /// (b) allocate all blocks, then free them in allocation order.
    Fifo,
    /// (c) 100,000 steps of random alloc-or-free.
    Random,
}

/// `pool`: 256 blocks of `block_size` bytes; the pattern's operations (seed 0x5EED0003 for the
/// random pattern; an allocation when the pool is full is skipped in favour of a free).
pub fn pool(block_size: u32, pattern: PoolPattern) -> Workload {
    const BLOCKS: usize = 256;
    let mut r = Recorder::default();
    match pattern {
        PoolPattern::Lifo => {
            for _ in 0..100_000 {
                let id = r.alloc(u64::from(block_size));
                r.free(id);
            }
        }
        PoolPattern::Fifo => {
            let ids: Vec<u32> = (0..BLOCKS)
                .map(|_| r.alloc(u64::from(block_size)))
                .collect();
            for id in ids {
                r.free(id);
            }
        }
        PoolPattern::Random => {
            let mut rng = Rng::new(0x5EED_0003);
            let mut live: Vec<u32> = Vec::new();
            for _ in 0..100_000 {
                if live.is_empty() || (live.len() < BLOCKS && rng.unit() < 0.5) {
                    live.push(r.alloc(u64::from(block_size)));
                } else {
                    let i = rng.below(live.len() as u64) as usize;
                    r.free(live.swap_remove(i));
                }
            }
        }
    }
    Workload {
        name: format!("pool{block_size}-{pattern:?}").to_lowercase(),
        heap_size: BLOCKS * block_size as usize,
        setup: Vec::new(),
        ops: r.ops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_matches_the_definition() {
        // x = 1: x ^= x>>12 (1); x ^= x<<25 (0x2000001); x ^= x>>27 (0x2000001); out = x * M.
        let mut r = Rng::new(1);
        assert_eq!(
            r.next_u64(),
            0x2000001u64.wrapping_mul(0x2545_F491_4F6C_DD1D)
        );
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            let v = r.range(8, 512);
            assert!((8..=512).contains(&v));
            assert!(r.unit() < 1.0);
        }
    }

    #[test]
    fn every_free_names_a_live_allocation() {
        for w in [
            random(),
            rtos(),
            fragmented(),
            ladder(64, 10),
            efficiency(1, 5000),
        ] {
            let mut live = vec![false; w.id_count()];
            for op in w.setup.iter().chain(&w.ops) {
                match *op {
                    Op::Alloc { id, .. } => {
                        assert!(!live[id as usize]);
                        live[id as usize] = true;
                    }
                    Op::Free { id } => {
                        assert!(live[id as usize], "{}: free of a dead id", w.name);
                        live[id as usize] = false;
                    }
                }
            }
        }
    }

    #[test]
    fn rtos_peak_is_about_70k() {
        // workloads.md: the rtos trace's peak live request is about 70.5 KB.
        let peak = rtos().peak_live_bytes();
        assert!((70_000..71_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn fragmented_shape() {
        let w = fragmented();
        assert_eq!(w.setup.len(), 10_000 + 5_000);
        assert_eq!(w.ops.len(), 4_000);
    }
}
