//! Unit tests of the size search: every answer is checked against replays at every heap size.

use super::*;
use crate::layout::Preset;
use crate::trace::{Op, OpKind};
use rtos_heap_workloads::Rng;

/// A random trace of `steps` operations: allocations of 1..=max bytes, frees of random live ones.
fn random_trace(seed: u64, steps: usize, max: u64, p_alloc: f64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut live: Vec<u32> = Vec::new();
    let mut free_slots: Vec<u32> = Vec::new();
    let mut next = 0u32;
    let mut ops = Vec::new();
    for i in 0..steps {
        let line = i as u64 + 1;
        if live.is_empty() || rng.unit() < p_alloc {
            let slot = free_slots.pop().unwrap_or_else(|| {
                next += 1;
                next - 1
            });
            // Mostly small, some large: the mix that makes first and best fit non-monotonic.
            let size = if rng.unit() < 0.15 {
                rng.range(max / 2, max * 3)
            } else {
                rng.range(1, max)
            };
            live.push(slot);
            ops.push(Op {
                line,
                slot,
                kind: OpKind::Alloc { size, align: 0 },
            });
        } else {
            let k = rng.below(live.len() as u64) as usize;
            let slot = live.swap_remove(k);
            free_slots.push(slot);
            ops.push(Op {
                line,
                slot,
                kind: OpKind::Free,
            });
        }
    }
    ops
}

fn clean_at(scheme: Scheme, layout: Layout, fixed: &[usize], s: usize, ops: &[Op]) -> bool {
    let mut regions = fixed.to_vec();
    regions.push(s);
    runs_clean(
        &HeapSpec {
            scheme,
            layout,
            regions,
        },
        ops,
        None,
    )
    .expect("no deadline")
}

/// Brute force: replays at every size from the lower bound to well past `all_succeed_from`.
fn check(scheme: Scheme, layout: Layout, fixed: &[usize], ops: &[Op]) -> SizeResult {
    let opts = SizeOptions {
        fixed_regions: fixed.to_vec(),
        ..SizeOptions::default()
    };
    let r = find(scheme, layout, ops, &opts, &mut ());
    assert!(
        r.untested.is_empty(),
        "{scheme}: budget too small for a unit test"
    );
    let min = r.minimum.expect("a minimum");
    let all = r.all_succeed_from.expect("proven upper part");
    // From the smallest size the heap can be built with when fixed regions take part of the load
    // (the lower bound is what is being checked there), else from just below the lower bound.
    let lo = if fixed.is_empty() {
        r.lower_bound
            .saturating_sub(64)
            .max(min_size(scheme, layout))
    } else {
        1
    };
    let mut failing_above = Vec::new();
    for s in lo..all + 3 * layout.align {
        let clean = clean_at(scheme, layout, fixed, s, ops);
        if s < min {
            assert!(
                !clean,
                "{scheme} {layout}: size {s} below the minimum {min} runs clean"
            );
        } else if s == min {
            assert!(
                clean,
                "{scheme} {layout}: the minimum {min} does not run clean"
            );
        } else {
            let said_to_fail = r
                .failing_above_minimum
                .iter()
                .any(|x| (x.from..=x.to).contains(&s));
            assert_eq!(
                !clean, said_to_fail,
                "{scheme} {layout}: size {s} (minimum {min}, all from {all}) clean={clean}"
            );
            if !clean {
                failing_above.push(s);
            }
            if s >= all {
                assert!(clean, "{scheme} {layout}: size {s} ≥ all-from {all} fails");
            }
        }
    }
    r
}

fn min_size(scheme: Scheme, layout: Layout) -> usize {
    match scheme {
        Scheme::Heap3 => 1,
        _ => layout.align + 3 * layout.header(),
    }
}

#[test]
fn every_scheme_matches_brute_force_on_random_traces() {
    let mut non_monotonic = 0;
    for seed in 1..=40u64 {
        let ops = random_trace(
            seed,
            150 + 10 * seed as usize,
            24 + 8 * (seed % 12),
            0.5 + 0.01 * (seed % 10) as f64,
        );
        for preset in [Preset::CortexM, Preset::X86_64, Preset::Mcu32Align4] {
            for scheme in Scheme::ALL {
                let r = check(scheme, preset.layout(), &[], &ops);
                if !r.failing_above_minimum.is_empty() {
                    non_monotonic += 1;
                }
            }
        }
    }
    // The traces are chosen so that first and best fit are not monotonic somewhere: the test
    // would prove little otherwise.
    assert!(
        non_monotonic > 0,
        "no non-monotonic case among the random traces"
    );
}

#[test]
fn heap5_searches_the_last_region() {
    let ops = random_trace(9, 200, 120, 0.55);
    let layout = Preset::CortexM.layout();
    let r = check(Scheme::Heap5, layout, &[160], &ops);
    assert_eq!(r.fixed_regions, vec![160]);
    // With a fixed first region, the last one can be smaller than heap_4's whole heap.
    let h4 = find(
        Scheme::Heap4,
        layout,
        &ops,
        &SizeOptions::default(),
        &mut (),
    );
    assert!(r.minimum.unwrap() < h4.minimum.unwrap());
}

/// The last region's size with fixed regions before it, from none of the load to all of it:
/// every answer checked against a replay at every size (the fixed regions' room counts).
#[test]
fn heap5_with_fixed_regions_matches_brute_force() {
    for seed in 1..=8u64 {
        let ops = random_trace(seed + 100, 250, 96, 0.55);
        for preset in [Preset::CortexM, Preset::X86_64] {
            let layout = preset.layout();
            let peak = lower_bound(Scheme::Heap5, layout, &ops) as usize;
            for fixed in [
                vec![64],
                vec![peak / 2],
                vec![peak / 3, peak / 4],
                vec![2 * peak],
            ] {
                let r = check(Scheme::Heap5, layout, &fixed, &ops);
                if fixed == [2 * peak] {
                    // Everything fits in the fixed region: the smallest region the heap accepts
                    // (a header, a minimum block and the end marker: 3 headers).
                    assert_eq!(r.minimum, Some(3 * layout.header()), "{fixed:?}");
                }
            }
        }
    }
}

#[test]
fn monotonic_schemes_are_exact_by_counting() {
    let ops = random_trace(3, 300, 64, 0.6);
    let layout = Preset::CortexM.layout();
    // heap_3 counts requested bytes: the minimum is the peak of live requested bytes.
    let mut live = std::collections::HashMap::new();
    let (mut cur, mut peak, mut total) = (0u64, 0u64, 0u64);
    for op in &ops {
        match op.kind {
            OpKind::Alloc { size, .. } => {
                live.insert(op.slot, size);
                cur += size;
                total += size.div_ceil(8) * 8;
                peak = peak.max(cur);
            }
            OpKind::Free => cur -= live.remove(&op.slot).unwrap(),
        }
    }
    let r3 = find(
        Scheme::Heap3,
        layout,
        &ops,
        &SizeOptions::default(),
        &mut (),
    );
    assert_eq!(r3.minimum, Some(peak as usize));
    // heap_1 never frees and keeps portBYTE_ALIGNMENT + 1 bytes back (strict `<`).
    let r1 = find(
        Scheme::Heap1,
        layout,
        &ops,
        &SizeOptions::default(),
        &mut (),
    );
    assert_eq!(r1.minimum, Some(total as usize + 8 + 1));
    assert_eq!(r1.replays, 1);
}

#[test]
fn size_independent_failures_are_not_counted() {
    let mut ops = random_trace(4, 100, 64, 0.6);
    let slot = 10_000;
    ops.insert(
        5,
        Op {
            line: 0,
            slot,
            kind: OpKind::Alloc { size: 0, align: 0 },
        },
    );
    let layout = Preset::CortexM.layout();
    let r = find(
        Scheme::Heap4,
        layout,
        &ops,
        &SizeOptions::default(),
        &mut (),
    );
    assert_eq!(r.size_independent_failures, 1);
    let m = r.minimum.unwrap();
    assert!(clean_at(Scheme::Heap4, layout, &[], m, &ops));
    assert!(!clean_at(Scheme::Heap4, layout, &[], m - 1, &ops));
}

#[test]
fn budget_exhaustion_is_reported_not_guessed() {
    let ops = random_trace(5, 400, 200, 0.55);
    let layout = Preset::CortexM.layout();
    let opts = SizeOptions {
        max_replays: 3,
        ..SizeOptions::default()
    };
    let r = find(Scheme::Heap2, layout, &ops, &opts, &mut ());
    if r.minimum.is_none() {
        assert!(!r.untested.is_empty());
        let v = r.verified.expect("the bisection verified a size");
        assert!(clean_at(Scheme::Heap2, layout, &[], v, &ops));
    }
}

#[test]
fn recommendation_adds_the_margin_and_covers_the_proven_part() {
    let ops = random_trace(6, 300, 100, 0.55);
    let layout = Preset::CortexM.layout();
    let r = find(
        Scheme::Heap4,
        layout,
        &ops,
        &SizeOptions::default(),
        &mut (),
    );
    let rec = recommend(&r, 0.10, 1024).unwrap();
    assert_eq!(rec % 1024, 0);
    assert!(rec as f64 >= r.minimum.unwrap() as f64 * 1.10);
    assert!(rec >= r.all_succeed_from.unwrap());
}

#[test]
fn interval_set_take() {
    let mut s = Set::default();
    s.insert(10, 20);
    s.insert(30, 40);
    assert_eq!(s.take(15, 35), vec![(15, 20), (30, 35)]);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![(10, 14), (36, 40)]);
    assert_eq!(s.take(0, 9), vec![]);
    assert_eq!(s.take(12, 12), vec![(12, 12)]);
    assert_eq!(
        s.iter().collect::<Vec<_>>(),
        vec![(10, 11), (13, 14), (36, 40)]
    );
}

/// The time budget is kept inside a replay: a deadline already past stops it at its next look
/// at the clock, and the search reports what it could not replay instead of overrunning.
#[test]
fn the_time_budget_stops_replays_in_the_middle() {
    let ops = random_trace(77, 3 * CLOCK_EVERY, 64, 0.55);
    let layout = Preset::CortexM.layout();
    let spec = HeapSpec::single(Scheme::Heap2, layout, 1 << 20);
    assert_eq!(runs_clean(&spec, &ops, Some(Instant::now())), None);
    assert_eq!(runs_clean(&spec, &ops, None), Some(true));
    for scheme in [Scheme::Heap2, Scheme::Heap4] {
        let opts = SizeOptions {
            time_limit: std::time::Duration::from_nanos(1),
            ..SizeOptions::default()
        };
        let r = find(scheme, layout, &ops, &opts, &mut ());
        // Only the reference run is made whatever the budget; every other replay is cut short.
        assert!(r.replays <= 3, "{scheme}: {} replays", r.replays);
        if r.minimum.is_none() {
            assert!(
                !r.untested.is_empty(),
                "{scheme}: unproven, so something is untested"
            );
        }
    }
}
