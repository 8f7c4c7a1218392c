//! CPU time per operation (criterion): the timed operations of `random`, `rtos` and `fragmented`
//! replayed on a fresh subject per iteration (set-up and region allocation untimed).
//!
//! `bench-driver criterion-collect` turns the medians into nanoseconds per operation.
//! Filter as usual: `cargo bench -p rtos-heap-bench --bench workloads -- rtos/talc`.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rtos_heap_bench::replay::{Slots, replay_setup, replay_timed};
use rtos_heap_bench::subjects::Kind;
use rtos_heap_bench::{MAIN_WORKLOADS, with_subject, workload};
use rtos_heap_workloads::Op;

/// One statically dispatched timed replay over a prepared subject.
type Replay = Box<dyn FnMut(&[Op], &mut Slots) -> usize>;

fn workloads(c: &mut Criterion) {
    for name in MAIN_WORKLOADS {
        let w = workload(name).expect("workload");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(w.ops.len() as u64));
        g.sample_size(20);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));
        for k in Kind::measured() {
            g.bench_function(k.name(), |b| {
                b.iter_batched_ref(
                    || {
                        // A fresh subject with the set-up replayed: not timed. Its blocks are
                        // not freed afterwards: the subject and its region are simply dropped.
                        let mut slots = Slots::for_workload(&w);
                        let run: Replay = with_subject!(k, w.heap_size, |s| {
                            replay_setup(&mut s, &w.setup, &mut slots);
                            Box::new(move |ops: &[Op], slots: &mut Slots| {
                                replay_timed(&mut s, ops, slots)
                            })
                        });
                        (run, slots)
                    },
                    |(run, slots)| run(&w.ops, slots),
                    BatchSize::PerIteration,
                );
            });
        }
        g.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
