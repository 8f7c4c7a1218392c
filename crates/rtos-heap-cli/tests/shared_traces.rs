//! The real FreeRTOS traces of `../shared/traces` (heap_4, POSIX port, x86-64): `replay --target
//! x86-64` must reproduce every recorded address and the final statistics; the hook-log and id
//! forms of the same runs must too; `size` must be consistent with the recorded run. Skipped
//! cleanly when `../shared` is absent (unless `RTOS_HEAP_REQUIRE_SHARED` is set).

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{bin, shared_dir};
use rtos_heap_cli::layout::{Preset, Scheme};
use rtos_heap_cli::replay::{ReplayOptions, replay_ops};
use rtos_heap_cli::sim::{HeapSpec, build};
use rtos_heap_cli::trace::{ParseOptions, TraceReader};

const TRACES: [&str; 3] = ["blinky_20s", "full_20s", "churn_60s"];

/// What the test reads from a trace by itself, independently of the tool's parser.
struct Recorded {
    heap_start: u64,
    total: usize,
    /// Offsets `addr - heap_start` of every malloc, in order.
    offsets: Vec<String>,
    /// `# heap ...` trailer: key → value.
    heap: HashMap<String, usize>,
    /// The same operations as a FreeRTOS V11 hook log (the block size is what traceMALLOC prints).
    hook_log: String,
}

fn record(path: &Path) -> Recorded {
    let text = std::fs::read_to_string(path).unwrap();
    let mut r = Recorded {
        heap_start: 0,
        total: 0,
        offsets: Vec::new(),
        heap: HashMap::new(),
        hook_log: String::new(),
    };
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with('#') {
            for t in &toks {
                if let Some(v) = t.strip_prefix("heap_start=0x") {
                    r.heap_start = u64::from_str_radix(v, 16).unwrap();
                }
                if let Some(v) = t.strip_prefix("configTOTAL_HEAP_SIZE=") {
                    r.total = v.parse().unwrap();
                }
            }
            if toks.get(1) == Some(&"heap") {
                for t in &toks[2..] {
                    if let Some((k, v)) = t.split_once('=')
                        && let Ok(v) = v.parse()
                    {
                        r.heap.insert(k.to_string(), v);
                    }
                }
            }
            continue;
        }
        if toks.len() == 5 {
            let addr = u64::from_str_radix(toks[1].trim_start_matches("0x"), 16).unwrap();
            if toks[0] == "malloc" {
                r.offsets.push((addr - r.heap_start).to_string());
            }
            r.hook_log
                .push_str(&format!("{} {} {}\n", toks[0], toks[1], toks[3]));
        }
    }
    assert!(
        r.heap_start != 0 && r.total != 0,
        "{}: header",
        path.display()
    );
    r
}

fn placements(args: &[&str], trace: &Path, dir: &Path) -> (Vec<String>, serde_json::Value) {
    let out = dir.join("placements.txt");
    let assert = bin()
        .arg("replay")
        .arg(trace)
        .args(args)
        .args(["--scheme", "heap4", "--json", "--placements"])
        .arg(&out)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    (text.lines().map(str::to_string).collect(), v)
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn replay_reproduces_the_recorded_heap4_addresses_and_stats() {
    let shared = shared_dir();
    let dir = tempfile::tempdir().unwrap();
    for name in TRACES {
        let trace = shared.join(format!("traces/{name}.trace.txt"));
        let rec = record(&trace);
        // The heap size comes from the trace header.
        let (got, v) = placements(&["--target", "x86-64"], &trace, dir.path());
        assert_eq!(
            got.len(),
            rec.offsets.len(),
            "{name}: one line per allocation"
        );
        for (i, (g, w)) in got.iter().zip(&rec.offsets).enumerate() {
            assert_eq!(g, w, "{name}: allocation {i}");
        }
        let r = &v["replays"][0];
        assert_eq!(r["heap_size"], rec.total);
        let stats = &r["stats"];
        for (json, trailer) in [
            ("available_bytes", "free"),
            ("largest_free_block", "largest_free_block"),
            ("free_blocks", "free_blocks"),
            ("min_ever_free", "min_ever_free"),
            ("successful_allocations", "successful_allocs"),
            ("successful_frees", "successful_frees"),
        ] {
            assert_eq!(stats[json], rec.heap[trailer], "{name}: {json}");
        }
        assert!(r["first_failure"].is_null());
        assert_eq!(v["trace"]["format"], "trace");
        assert_eq!(v["trace"]["counts"]["unknown_frees"], 0);

        // The id form of the same run (requested sizes) gives the same placements.
        let ids = shared.join(format!("traces/{name}.ids.txt"));
        let total = rec.total.to_string();
        let (got_ids, _) = placements(
            &["--target", "x86-64", "--heap-size", &total],
            &ids,
            dir.path(),
        );
        assert_eq!(got_ids, got, "{name}: ids form");

        // The hook log FreeRTOS V11 prints (block sizes): exact for heap_4 on the same layout.
        let hook = common::write(dir.path(), "hook.log", &rec.hook_log);
        let (got_hook, v) = placements(
            &["--target", "x86-64", "--heap-size", &total],
            &hook,
            dir.path(),
        );
        assert_eq!(got_hook, got, "{name}: hook log");
        assert_eq!(v["trace"]["sizes"]["exact"], false);
    }
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn a_32_bit_replay_of_the_same_run_needs_less_heap() {
    let shared = shared_dir();
    let trace = shared.join("traces/full_20s.trace.txt");
    let text = std::fs::read_to_string(&trace).unwrap();
    let ops = TraceReader::new(text.as_bytes(), "full", ParseOptions::default())
        .read_all()
        .unwrap();
    let peak = |preset: Preset| {
        let mut h = build(&HeapSpec::single(Scheme::Heap4, preset.layout(), 1 << 20)).unwrap();
        replay_ops(h.as_mut(), &ops, &ReplayOptions::default(), None)
            .unwrap()
            .peak_used
    };
    // README: peak live heap_4 blocks on x86-64 = 82,960 B; 8-byte headers on a Cortex-M save
    // 8 bytes per live block.
    assert_eq!(peak(Preset::X86_64), 82_960);
    assert!(peak(Preset::CortexM) < 82_960 - 8 * 200);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn size_is_consistent_with_the_recorded_runs() {
    let shared = shared_dir();
    for name in ["full_20s", "churn_60s"] {
        let trace = shared.join(format!("traces/{name}.trace.txt"));
        let rec = record(&trace);
        let out = bin()
            .arg("size")
            .arg(&trace)
            .args([
                "--target",
                "x86-64",
                "--scheme",
                "heap1,heap3,heap4,heap5",
                "--json",
            ])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let text = std::fs::read_to_string(&trace).unwrap();
        let ops = TraceReader::new(text.as_bytes(), name, ParseOptions::default())
            .read_all()
            .unwrap();
        let layout = Preset::X86_64.layout();
        let clean = |scheme: Scheme, size: usize| {
            let mut h = build(&HeapSpec::single(scheme, layout, size)).unwrap();
            replay_ops(h.as_mut(), &ops, &ReplayOptions::default(), None)
                .unwrap()
                .failed_allocs
                == 0
        };
        for s in v["sizes"].as_array().unwrap() {
            let min = s["minimum"].as_u64().unwrap() as usize;
            let scheme = match s["scheme"].as_str().unwrap() {
                "heap1" => Scheme::Heap1,
                "heap3" => Scheme::Heap3,
                "heap4" => Scheme::Heap4,
                _ => Scheme::Heap5,
            };
            assert!(clean(scheme, min), "{name} {scheme}: minimum {min}");
            assert!(
                !clean(scheme, min - 1),
                "{name} {scheme}: {} runs clean",
                min - 1
            );
            assert!(
                !clean(scheme, min - layout.align),
                "{name} {scheme}: one step less"
            );
            if scheme == Scheme::Heap4 {
                // The device ran heap_4 clean at configTOTAL_HEAP_SIZE.
                assert!(min <= rec.total, "{name}: minimum {min} > {}", rec.total);
                assert!(clean(scheme, rec.total));
            }
            if scheme == Scheme::Heap3 {
                // heap_3 counts requested bytes: the README's peak live requested bytes.
                let json: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(shared.join(format!("traces/{name}.json"))).unwrap(),
                )
                .unwrap();
                assert_eq!(
                    min as u64,
                    json["peak_live_bytes_requested"].as_u64().unwrap()
                );
            }
        }
    }
}
