//! Conformance with the C original, from `../shared` (run by `.ci/run`; skipped when it is absent):
//! - `vectors/`: every trace through every scheme, on 32- and 64-bit layouts, alignments 4/8/16 and a
//!   misaligned array, must reproduce every `a`/`c`/`s`/`w` line of the C build's output;
//! - `traces/*.trace.txt`: real FreeRTOS application traces through `Heap4<Host64>` must reproduce
//!   every block offset the real heap_4 returned and its final statistics.

extern crate alloc;

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::ptr::NonNull;

use rtos_heap::{
    AllocError, Heap1, Heap2, Heap4, Heap5, Host64, RawHeap, SizeTree, Target, TargetLayout,
};

#[path = "common/vector_driver.rs"]
mod vector_driver;

use vector_driver::Subject;

/// Replays a vector trace through the shared driver (also run on a Cortex-M3 by
/// `examples/qemu-cortex-m`) and returns the output lines the C harness would print.
fn run_vector<H: Subject>(trace: &str, word: usize, misalign: usize) -> Vec<String> {
    let (array, _len) = common::buffer(65536, misalign);
    let mut out = Vec::new();
    vector_driver::run_vector::<H>(trace, word, array, |l| out.push(l.to_string()));
    out
}

fn compare(name: &str, got: &[String], expected_file: &Path) {
    let text = std::fs::read_to_string(expected_file).unwrap();
    let expected: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('!') && !l.starts_with('e') && !l.is_empty())
        .collect();
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "{name}: output line {} differs", i + 1);
    }
    assert_eq!(got.len(), expected.len(), "{name}: number of output lines");
}

/// Every trace of the vectors: (file stem, text), in name order.
fn vector_traces(shared: &Path) -> Vec<(String, String)> {
    let traces = shared.join("vectors/traces");
    let mut names: Vec<_> = std::fs::read_dir(&traces)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            (stem, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// heap_2 with the O(log n) [`SizeTree`] index against the same vectors as its list
/// (`portBYTE_ALIGNMENT` ≥ 8 only: the tree rejects 4 at compile time).
fn run_heap2_tree<const A: usize>(shared: &Path, config: &str, misalign: usize) -> usize
where
    Target<4, A>: TargetLayout,
    Target<8, A>: TargetLayout,
{
    let mut compared = 0;
    for (stem, trace) in vector_traces(shared) {
        for (bits, word) in [(32, 4), (64, 8)] {
            let file = shared
                .join("vectors")
                .join(config)
                .join(format!("{stem}.heap2_{bits}.out"));
            if !file.exists() {
                continue;
            }
            let got = if word == 4 {
                run_vector::<Heap2<Target<4, A>, SizeTree<true>>>(&trace, word, misalign)
            } else {
                run_vector::<Heap2<Target<8, A>, SizeTree<true>>>(&trace, word, misalign)
            };
            compare(
                &format!("{config}/{stem}.heap2_{bits} (SizeTree)"),
                &got,
                &file,
            );
            compared += 1;
        }
    }
    compared
}

fn run_config<const A: usize>(shared: &Path, config: &str, misalign: usize) -> usize
where
    Target<4, A>: TargetLayout,
    Target<8, A>: TargetLayout,
{
    let mut compared = 0;
    for (stem, trace) in vector_traces(shared) {
        let dir = shared.join("vectors").join(config);
        macro_rules! one {
            ($heap:ty, $scheme:literal, $bits:literal, $word:literal) => {{
                let file = dir.join(format!("{stem}.heap{}_{}.out", $scheme, $bits));
                if file.exists() {
                    let got = run_vector::<$heap>(&trace, $word, misalign);
                    compare(
                        &format!("{config}/{stem}.heap{}_{}", $scheme, $bits),
                        &got,
                        &file,
                    );
                    compared += 1;
                }
            }};
        }
        one!(Heap1<Target<4, A>>, 1, 32, 4);
        one!(Heap1<Target<8, A>>, 1, 64, 8);
        one!(Heap2<Target<4, A>>, 2, 32, 4);
        one!(Heap2<Target<8, A>>, 2, 64, 8);
        one!(Heap4<Target<4, A>>, 4, 32, 4);
        one!(Heap4<Target<8, A>>, 4, 64, 8);
        one!(Heap5<Target<4, A>, 4>, 5, 32, 4);
        one!(Heap5<Target<8, A>, 4>, 5, 64, 8);
    }
    compared
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn vectors_a8_m0() {
    let shared = common::shared_dir();
    assert_eq!(run_config::<8>(&shared, "a8_m0", 0), 7 * 8);
    assert_eq!(run_heap2_tree::<8>(&shared, "a8_m0", 0), 7 * 2);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn vectors_a8_m3() {
    let shared = common::shared_dir();
    assert_eq!(run_config::<8>(&shared, "a8_m3", 3), 7 * 8);
    assert_eq!(run_heap2_tree::<8>(&shared, "a8_m3", 3), 7 * 2);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn vectors_a4_m0() {
    let shared = common::shared_dir();
    assert_eq!(run_config::<4>(&shared, "a4_m0", 0), 7 * 8);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn vectors_a16_m0() {
    let shared = common::shared_dir();
    assert_eq!(run_config::<16>(&shared, "a16_m0", 0), 7 * 8);
    assert_eq!(run_heap2_tree::<16>(&shared, "a16_m0", 0), 7 * 2);
}

/// Replays a real application trace through `Heap4<Host64>` and compares every offset and the
/// final statistics with what the real heap_4 did.
fn replay_real_trace(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let mut header: HashMap<String, String> = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with('#')) {
        for kv in line[1..].split_whitespace() {
            if let Some((k, v)) = kv.split_once('=') {
                header.insert(k.to_string(), v.to_string());
            }
        }
    }
    let heap_start =
        usize::from_str_radix(header["heap_start"].trim_start_matches("0x"), 16).unwrap();
    let total: usize = header["configTOTAL_HEAP_SIZE"].parse().unwrap();
    let (array, len) = common::buffer(total, heap_start % 64);
    let mut heap = Heap4::<Host64>::new();
    // SAFETY: a leaked buffer of `len` bytes.
    unsafe {
        heap.init_from_raw(NonNull::new(array).unwrap(), len)
            .unwrap()
    };
    let mut live: HashMap<usize, NonNull<u8>> = HashMap::new();
    let mut ops = 0;
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0].starts_with('#') {
            continue;
        }
        let addr = usize::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap();
        let requested: usize = f[2].parse().unwrap();
        let block: usize = f[3].parse().unwrap();
        match f[0] {
            "malloc" => {
                let p = heap
                    .malloc(requested)
                    .unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
                let got = p.as_ptr() as usize - array as usize;
                assert_eq!(got, addr - heap_start, "line {}: offset", n + 1);
                // SAFETY: `p` is a live block; its header precedes it.
                let size = heap
                    .blocks()
                    .find(|b| b.address + Host64::HEADER == p.as_ptr() as usize)
                    .unwrap()
                    .size;
                assert_eq!(size, block, "line {}: block size", n + 1);
                live.insert(addr, p);
            }
            "free" => {
                let p = live
                    .remove(&addr)
                    .unwrap_or_else(|| panic!("line {}: unknown address", n + 1));
                // SAFETY: a live block of this heap.
                unsafe { heap.free(p, None) }.unwrap();
            }
            other => panic!("line {}: unknown op {other}", n + 1),
        }
        ops += 1;
        if ops % 997 == 0 {
            heap.check().unwrap();
        }
    }
    heap.check().unwrap();
    let s = heap.stats();
    let num = |k: &str| header[k].parse::<usize>().unwrap();
    assert_eq!(s.available_bytes, num("free"));
    assert_eq!(heap.free_bytes(), num("xPortGetFreeHeapSize"));
    assert_eq!(s.min_ever_free, num("min_ever_free"));
    assert_eq!(
        heap.min_ever_free_bytes(),
        num("xPortGetMinimumEverFreeHeapSize")
    );
    assert_eq!(s.largest_free_block, num("largest_free_block"));
    assert_eq!(s.smallest_free_block, num("smallest_free_block"));
    assert_eq!(s.free_blocks, num("free_blocks"));
    assert_eq!(s.successful_allocations, num("successful_allocs"));
    assert_eq!(s.successful_frees, num("successful_frees"));
    ops
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the C original's vectors and real traces), or RTOS_HEAP_SHARED"
)]
fn real_traces_reproduce_heap4() {
    let shared = common::shared_dir();
    let mut total = 0;
    for name in ["blinky_20s", "full_20s", "churn_60s"] {
        total += replay_real_trace(&shared.join(format!("traces/{name}.trace.txt")));
    }
    assert!(total > 400_000, "only {total} operations replayed");
}

#[test]
fn overflow_sizes_fail_like_c() {
    // Independent of ../shared: the size rule's overflow edges on a 32-bit layout.
    let (array, len) = common::buffer(4096, 0);
    let mut h = Heap4::<Target<4, 8>>::new();
    // SAFETY: leaked buffer.
    unsafe { h.init_from_raw(NonNull::new(array).unwrap(), len).unwrap() };
    assert_eq!(h.malloc(0xffff_fff8), Err(AllocError::SizeOverflow));
    assert_eq!(h.malloc(0x8000_0000), Err(AllocError::SizeOverflow));
    assert_eq!(
        h.calloc(0x1_0000, 0x1_0000),
        Err(AllocError::CallocOverflow)
    );
    assert_eq!(h.malloc(0x1_0000_0000), Err(AllocError::SizeOverflow));
}

/// A seeded random trace in the vectors' language: `ops` operations, sizes 1..=600 (a few zero and
/// huge), up to 400 live blocks, 2 % calloc, statistics every 97 operations, a walk every 4099.
fn random_trace(seed: u64, ops: usize) -> String {
    use std::fmt::Write;
    let mut rng = rtos_heap_workloads::Rng::new(seed);
    let (mut live, mut next, mut t) = (Vec::new(), 0u64, String::new());
    for i in 0..ops {
        let r = rng.below(1000);
        if live.is_empty() || (r < 520 && live.len() < 400) {
            let size = match rng.below(200) {
                0 => 0,
                1 => 1 << 40,
                _ => rng.range(1, 601),
            };
            if rng.below(50) == 0 {
                writeln!(t, "c {next} {} {}", rng.range(1, 9), size / 4 + 1).unwrap();
            } else {
                writeln!(t, "a {next} {size}").unwrap();
            }
            live.push(next);
            next += 1;
        } else {
            let k = rng.below(live.len() as u64) as usize;
            writeln!(t, "f {}", live.swap_remove(k)).unwrap();
        }
        if i % 97 == 0 {
            t.push_str("s\n");
        }
        if i % 4099 == 0 {
            t.push_str("w\n");
        }
    }
    t.push_str("s\nw\n");
    t
}

/// Differential test against the unmodified C heaps of `../shared/reference/freertos`, built here
/// with gcc (32-bit needs gcc-multilib): seeded random traces replayed by the C oracle and by
/// heap_2 (list, tree), heap_4 (list, tree, hybrid) and heap_5 (list, tree, hybrid) at 32 and
/// 64 bits; every
/// returned offset, walk and statistic compared. `RTOS_HEAP_ORACLE_OPS` operations per
/// configuration (default 20,000; `.ci/oracle.sh` runs 1,000,000 in a release build).
#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the unmodified C heaps in reference/freertos), or RTOS_HEAP_SHARED"
)]
fn c_oracle_random_traces() {
    use rtos_heap::{AddressList, AddressTree, Hybrid, SizeList};
    let shared = common::shared_dir();
    let reference = shared.join("reference/freertos");
    let ops: usize = std::env::var("RTOS_HEAP_ORACLE_OPS")
        .ok()
        .map_or(20_000, |v| {
            v.parse().expect("RTOS_HEAP_ORACLE_OPS: a number")
        });
    let dir = std::env::temp_dir().join(format!("rtos-heap-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut compared = 0;
    for bits in [32, 64] {
        let trace = random_trace(0x5EED_0000 + bits, ops);
        let trace_file = dir.join(format!("random_{bits}.trace"));
        std::fs::write(&trace_file, &trace).unwrap();
        for scheme in [2, 4, 5] {
            let oracle = dir.join(format!("oracle_h{scheme}_{bits}"));
            let built = std::process::Command::new("gcc")
                .args(["-O2", &format!("-m{bits}"), &format!("-DHEAP={scheme}")])
                .arg("-DconfigTOTAL_HEAP_SIZE=65536")
                .arg(format!("-I{}", reference.join("inc").display()))
                .arg(format!("-I{}", reference.display()))
                .args(["-Wno-unused-function", "-o"])
                .arg(&oracle)
                .arg(reference.join("oracle.c"))
                .status();
            if !built.as_ref().is_ok_and(|s| s.success()) {
                // No gcc, no gcc-multilib or no reference: skipped visibly, a failure in CI.
                let why = format!("cannot build the {bits}-bit heap_{scheme} C oracle ({built:?})");
                assert!(
                    std::env::var_os("RTOS_HEAP_REQUIRE_SHARED").is_none(),
                    "RTOS_HEAP_REQUIRE_SHARED is set but {why}"
                );
                eprintln!("skipped: {why}");
                std::fs::remove_dir_all(&dir).ok();
                return;
            }
            let out = std::process::Command::new(&oracle)
                .arg(&trace_file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "oracle heap_{scheme} {bits}-bit failed"
            );
            let expected = dir.join(format!("random.heap{scheme}_{bits}.out"));
            std::fs::write(&expected, &out.stdout).unwrap();
            let name = |index: &str| format!("C oracle heap_{scheme} {bits}-bit, {index}");
            macro_rules! against {
                ($heap:ty, $index:literal) => {{
                    let got = run_vector::<$heap>(&trace, bits as usize / 8, 0);
                    compare(&name($index), &got, &expected);
                    compared += 1;
                }};
            }
            match (scheme, bits) {
                (2, 32) => {
                    against!(Heap2<Target<4, 8>, SizeList>, "SizeList");
                    against!(Heap2<Target<4, 8>, SizeTree>, "SizeTree");
                }
                (2, _) => {
                    against!(Heap2<Target<8, 8>, SizeList>, "SizeList");
                    against!(Heap2<Target<8, 8>, SizeTree>, "SizeTree");
                }
                (4, 32) => {
                    against!(Heap4<Target<4, 8>, AddressList>, "AddressList");
                    against!(Heap4<Target<4, 8>, AddressTree>, "AddressTree");
                    against!(Heap4<Target<4, 8>, Hybrid<16>>, "Hybrid<16>");
                }
                (4, _) => {
                    against!(Heap4<Target<8, 8>, AddressList>, "AddressList");
                    against!(Heap4<Target<8, 8>, AddressTree>, "AddressTree");
                    against!(Heap4<Target<8, 8>, Hybrid<16>>, "Hybrid<16>");
                }
                (_, 32) => {
                    against!(Heap5<Target<4, 8>, 4, AddressList>, "AddressList");
                    against!(Heap5<Target<4, 8>, 4, AddressTree>, "AddressTree");
                    against!(Heap5<Target<4, 8>, 4, Hybrid<16>>, "Hybrid<16>");
                }
                _ => {
                    against!(Heap5<Target<8, 8>, 4, AddressList>, "AddressList");
                    against!(Heap5<Target<8, 8>, 4, AddressTree>, "AddressTree");
                    against!(Heap5<Target<8, 8>, 4, Hybrid<16>>, "Hybrid<16>");
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(compared, 16);
    println!("{compared} configurations × {ops} operations compared with the C oracle");
}
