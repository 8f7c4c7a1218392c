//! `size` and `replay` on a 1,000,000-operation trace (goal: `size` across the schemes in under
//! 2 s). Run with `cargo bench -p rtos-heap-cli --bench size`.
//!
//! The trace is generated here, deterministically: each step frees the messages whose lifetime
//! ends and allocates one of 16..=512 bytes living 1..=200 steps (xorshift64* of workloads.md,
//! seed 0x5EED0005), until 1,000,000 operations.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rtos_heap_cli::layout::{Preset, Scheme};
use rtos_heap_cli::replay::{ReplayOptions, replay_ops};
use rtos_heap_cli::sim::{HeapSpec, build};
use rtos_heap_cli::size::{SizeOptions, find};
use rtos_heap_cli::trace::{Op, OpKind};
use rtos_heap_workloads::Rng;

/// The 1,000,000-operation trace.
pub fn million() -> Vec<Op> {
    let mut rng = Rng::new(0x5EED_0005);
    let mut dying: Vec<Vec<u32>> = vec![Vec::new(); 256];
    let mut free_slots: Vec<u32> = Vec::new();
    let mut next = 0u32;
    let mut ops = Vec::with_capacity(1_000_000);
    let mut step = 0usize;
    while ops.len() < 1_000_000 {
        for slot in std::mem::take(&mut dying[step % 256]) {
            ops.push(Op {
                line: ops.len() as u64 + 1,
                slot,
                kind: OpKind::Free,
            });
            free_slots.push(slot);
        }
        let size = rng.range(16, 512);
        let life = rng.range(1, 200) as usize;
        let slot = free_slots.pop().unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        ops.push(Op {
            line: ops.len() as u64 + 1,
            slot,
            kind: OpKind::Alloc { size, align: 0 },
        });
        dying[(step + life) % 256].push(slot);
        step += 1;
    }
    ops.truncate(1_000_000);
    ops
}

fn benches(c: &mut Criterion) {
    let ops = million();
    let layout = Preset::CortexM.layout();
    let mut g = c.benchmark_group("1M-ops");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    // heap_2 is left out of the `size` figure: every heap_2 replay of this trace walks thousands
    // of unmerged free blocks per operation (see docs/cli.md, "Performance").
    g.bench_function("size heap_1+3+4+5", |b| {
        b.iter(|| {
            for s in [Scheme::Heap1, Scheme::Heap3, Scheme::Heap4, Scheme::Heap5] {
                black_box(find(s, layout, &ops, &SizeOptions::default(), &mut ()));
            }
        })
    });
    for scheme in [Scheme::Heap4, Scheme::Heap2] {
        g.bench_function(format!("replay {scheme} 64K"), |b| {
            b.iter(|| {
                let mut h = build(&HeapSpec::single(scheme, layout, 64 * 1024)).unwrap();
                black_box(replay_ops(h.as_mut(), &ops, &ReplayOptions::default(), None).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(size_benches, benches);
criterion_main!(size_benches);
