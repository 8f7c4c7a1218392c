//! `rtos-heap inspect` on the images of the real C heap in `../shared/dumps`: every block and
//! every statistic of each `.expected` file, and each kind of damage injected into those images,
//! reported at its offset. Skipped when `../shared` is absent (unless `RTOS_HEAP_REQUIRE_SHARED`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{bin, shared_dir};
use serde_json::Value;

/// (image set, trace) pairs of `../shared/dumps`.
const SETS: [(&str, &str); 4] = [
    ("heap4_32_full20", "full_20s"),
    ("heap4_64_full20", "full_20s"),
    ("heap4prot_32_full20", "full_20s"),
    ("heap5_64_churn60", "churn_60s"),
];

/// What the C heap reported for one image: its `w` and `s` lines.
struct Expected {
    walk: String,
    stats: HashMap<String, u64>,
}

fn expected(dumps: &Path, set: &str) -> [Expected; 2] {
    let text = std::fs::read_to_string(dumps.join(format!("{set}.expected"))).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 4, "{set}: w, s for _mid then _end");
    let one = |w: &str, s: &str| Expected {
        walk: w.trim_start_matches("w ").trim().to_string(),
        stats: s
            .trim_start_matches("s ")
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect(),
    };
    [one(lines[0], lines[1]), one(lines[2], lines[3])]
}

fn run_json(args: &[&str], code: i32) -> Value {
    let out = bin()
        .args(args)
        .arg("--json")
        .assert()
        .code(code)
        .get_output()
        .clone();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The `w` line of the vectors language from inspect's JSON.
fn walk_line(v: &Value) -> String {
    v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let off = b["offset"].as_u64().unwrap();
            match b["kind"].as_str().unwrap() {
                "allocated" => format!("{off}:{}:A", b["size"]),
                "free" => format!("{off}:{}:F", b["size"]),
                "end-marker" => format!("{off}:M"),
                k => format!("{off}:{k}"),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn paths(shared: &Path, set: &str, at: &str) -> (String, String) {
    let d = shared.join("dumps");
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    (
        s(d.join(format!("{set}_{at}.bin"))),
        s(d.join(format!("{set}_{at}.meta"))),
    )
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn every_block_and_statistic_of_the_c_heaps_images() {
    let shared = shared_dir();
    for (set, trace) in SETS {
        let exp = expected(&shared.join("dumps"), set);
        for (at, e) in ["mid", "end"].into_iter().zip(&exp) {
            let (img, meta) = paths(&shared, set, at);
            // The image alone: blocks and what the walk gives.
            let v = run_json(&["inspect", &img, "--facts", &meta], 0);
            assert_eq!(walk_line(&v), e.walk, "{set}_{at}: blocks");
            assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{set}_{at}");
            let st = &v["stats"];
            for k in [
                "xPortGetFreeHeapSize",
                "xAvailableHeapSpaceInBytes",
                "xSizeOfLargestFreeBlockInBytes",
                "xSizeOfSmallestFreeBlockInBytes",
                "xNumberOfFreeBlocks",
            ] {
                assert_eq!(st[k].as_u64(), Some(e.stats[k]), "{set}_{at}: {k}");
            }
            assert!(
                st["xMinimumEverFreeBytesRemaining"].is_null(),
                "not in the image"
            );
            // With the trace up to the dump: the counters too. The dumps were taken after
            // `allocations + frees` operations (no allocation failed before them).
            let n = e.stats["xNumberOfSuccessfulAllocations"] + e.stats["xNumberOfSuccessfulFrees"];
            let t = shared.join("traces").join(format!("{trace}.trace.txt"));
            let v = run_json(
                &[
                    "inspect",
                    &img,
                    "--facts",
                    &meta,
                    "--trace",
                    t.to_str().unwrap(),
                    "--trace-ops",
                    &n.to_string(),
                ],
                0,
            );
            assert_eq!(walk_line(&v), e.walk, "{set}_{at}: blocks");
            for (k, want) in &e.stats {
                if k == "mallocFailedHook" {
                    continue; // the application's hook, not the heap's
                }
                assert_eq!(v["stats"][k].as_u64(), Some(*want), "{set}_{at}: {k}");
            }
            // Every allocated block is named by the allocation that made it.
            for b in v["blocks"].as_array().unwrap() {
                if b["kind"] == "allocated" {
                    assert!(
                        b["source"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("trace line ")),
                        "{set}_{at}: {b}"
                    );
                }
            }
        }
    }
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn a_trace_that_does_not_end_at_the_image_is_refused_with_the_candidates() {
    let shared = shared_dir();
    let (img, meta) = paths(&shared, "heap4_32_full20", "mid");
    let t = shared.join("traces/full_20s.trace.txt");
    let out = bin()
        .args([
            "inspect",
            &img,
            "--facts",
            &meta,
            "--trace",
            t.to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not the heap at the end of the trace"),
        "{err}"
    );
    assert!(err.contains("--trace-ops"), "{err}");
}

/// A copy of an image with some words changed; `(offset, word_bytes, value)`.
fn patched(
    shared: &Path,
    set: &str,
    at: &str,
    words: &[(u64, usize, u64)],
) -> tempfile::NamedTempFile {
    let (img, _) = paths(shared, set, at);
    let mut bytes = std::fs::read(img).unwrap();
    for &(off, w, v) in words {
        let o = off as usize;
        bytes[o..o + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

/// Blocks of an expected walk line: (offset, size, kind).
fn blocks_of(walk: &str) -> Vec<(u64, u64, char)> {
    walk.split_whitespace()
        .map(|t| {
            let p: Vec<&str> = t.split(':').collect();
            match p.as_slice() {
                [o, "M"] => (o.parse().unwrap(), 0, 'M'),
                [o, s, k] => (
                    o.parse().unwrap(),
                    s.parse().unwrap(),
                    k.chars().next().unwrap(),
                ),
                _ => panic!("{t}"),
            }
        })
        .collect()
}

fn findings(v: &Value) -> Vec<(u64, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["offset"].as_u64().unwrap(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn meta_value(meta: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(meta).unwrap();
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap();
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn injected_damage_is_found_at_its_offset() {
    let shared = shared_dir();
    for set in [
        "heap4_32_full20",
        "heap4_64_full20",
        "heap4prot_32_full20",
        "heap5_64_churn60",
    ] {
        let (_, meta) = paths(&shared, set, "end");
        let w: usize = if set.contains("_64_") { 8 } else { 4 };
        let canary = if set.starts_with("heap4prot") {
            meta_value(&meta, "xHeapCanary")
        } else {
            0
        };
        let base = meta_value(&meta, "base_address");
        let exp = &expected(&shared.join("dumps"), set)[1];
        let blocks = blocks_of(&exp.walk);
        let frees: Vec<&(u64, u64, char)> = blocks.iter().filter(|b| b.2 == 'F').collect();
        let allocs: Vec<&(u64, u64, char)> = blocks.iter().filter(|b| b.2 == 'A').collect();
        let check = |words: &[(u64, usize, u64)], want: &[(u64, &str)]| {
            let f = patched(&shared, set, "end", words);
            let v = run_json(
                &["inspect", f.path().to_str().unwrap(), "--facts", &meta],
                1,
            );
            let got = findings(&v);
            for (off, kind) in want {
                assert!(
                    got.iter().any(|(o, k)| o == off && k == kind),
                    "{set}: want {kind} at {off}, got {got:?}"
                );
            }
            v
        };
        // 1. An allocated block's size word overwritten: reported there; the walk goes on and
        //    still reads the last free block.
        let victim = allocs[allocs.len() / 2];
        let v = check(
            &[(victim.0 + w as u64, w, 0x4141_4141)],
            &[(victim.0, "bad-header")],
        );
        let last_free = frees.last().unwrap().0;
        assert!(
            v["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["offset"] == last_free && b["kind"] == "free"),
            "{set}: the walk resynchronised"
        );
        // 2. A free block's link pointing outside the heap.
        let f0 = frees[0].0;
        check(&[(f0, w, 0x10 ^ canary)], &[(f0, "link-outside-heap")]);
        // 3. A free link going down in address.
        if frees.len() >= 3 {
            let (a, b) = (frees[0].0, frees[1].0);
            check(&[(b, w, (base + a) ^ canary)], &[(b, "link-out-of-order")]);
        }
        // 4. A size that runs past the end marker: the last allocated block's.
        let last = allocs.last().unwrap();
        check(
            &[(last.0 + w as u64, w, (1u64 << (8 * w - 1)) | 0x10_0000)],
            &[(last.0, "size-past-end")],
        );
        // 5. Unmerged neighbours: the allocated block just below a free block made free and
        //    linked in place.
        if let Some(i) = blocks
            .windows(2)
            .position(|p| p[0].2 == 'A' && p[1].2 == 'F')
        {
            let (lo, hi) = (blocks[i], blocks[i + 1]);
            // The free-list node that links to `hi` now links to `lo`.
            let prev = frees.iter().rev().find(|f| f.0 < lo.0).map(|f| f.0);
            let mut words = vec![
                (lo.0, w, (base + hi.0) ^ canary),
                (lo.0 + w as u64, w, lo.1),
            ];
            if let Some(p) = prev {
                words.push((p, w, (base + lo.0) ^ canary));
                check(&words, &[(hi.0, "unmerged-neighbours")]);
            }
        }
        // 6. A free block the list skips.
        if frees.len() >= 3 {
            let (a, c) = (frees[0].0, frees[2].0);
            check(
                &[(a, w, (base + c) ^ canary)],
                &[(frees[1].0, "not-on-free-list")],
            );
        }
    }
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn a_wrong_canary_is_a_mismatch_at_every_allocated_block() {
    let shared = shared_dir();
    let (img, meta) = paths(&shared, "heap4prot_32_full20", "end");
    let v = run_json(
        &[
            "inspect",
            &img,
            "--facts",
            &meta,
            "--canary",
            "0x12345678",
            "--xstart",
            "0",
        ],
        1,
    );
    let exp = &expected(&shared.join("dumps"), "heap4prot_32_full20")[1];
    let allocated: Vec<u64> = blocks_of(&exp.walk)
        .iter()
        .filter(|b| b.2 == 'A')
        .map(|b| b.0)
        .collect();
    let mismatches: Vec<u64> = findings(&v)
        .into_iter()
        .filter(|f| f.1 == "canary-mismatch")
        .map(|f| f.0)
        .collect();
    assert_eq!(mismatches, allocated);
    // Without the canary, the links read as overwritten too.
    let v = run_json(
        &[
            "inspect",
            &img,
            "--base",
            "0x5658a0c0",
            "--heap-size",
            "98304",
        ],
        1,
    );
    assert!(findings(&v).iter().any(|f| f.1 == "canary-mismatch"));
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn text_and_html_output() {
    let shared = shared_dir();
    let (img, meta) = paths(&shared, "heap5_64_churn60", "end");
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("image.html");
    let out = bin()
        .args([
            "inspect",
            &img,
            "--facts",
            &meta,
            "--report",
            html.to_str().unwrap(),
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |k: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(k))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
    };
    assert_eq!(line("xNumberOfFreeBlocks").as_deref(), Some("25"), "{text}");
    assert_eq!(
        line("xPortGetFreeHeapSize").as_deref(),
        Some("18,304"),
        "{text}"
    );
    assert!(text.contains("No damage"), "{text}");
    assert!(
        text.contains("largest request that succeeds now: pvPortMalloc(11,312)"),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg class=\"heap-map\"").count(), 1);
    assert_eq!(
        page.matches("class=\"region\"").count(),
        4,
        "one row per region"
    );
    assert_eq!(page.matches("<rect class=\"alloc\"").count(), 113);
}

#[test]
#[cfg_attr(
    shared_absent,
    ignore = "needs ../shared (the real traces and dumps), or RTOS_HEAP_SHARED"
)]
fn the_trace_names_the_allocation_under_a_damaged_header() {
    let shared = shared_dir();
    let (_, meta) = paths(&shared, "heap4_32_full20", "end");
    let exp = &expected(&shared.join("dumps"), "heap4_32_full20")[1];
    let victim = blocks_of(&exp.walk)
        .into_iter()
        .filter(|b| b.2 == 'A')
        .nth(40)
        .unwrap();
    let f = patched(
        &shared,
        "heap4_32_full20",
        "end",
        &[(victim.0 + 4, 4, 0x4141_4141)],
    );
    let t = shared.join("traces/full_20s.trace.txt");
    let v = run_json(
        &[
            "inspect",
            f.path().to_str().unwrap(),
            "--facts",
            &meta,
            "--trace",
            t.to_str().unwrap(),
        ],
        1,
    );
    let b = v["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["offset"] == victim.0)
        .unwrap();
    assert_eq!(b["kind"], "damaged");
    assert!(
        b["source"].as_str().unwrap().starts_with("trace line "),
        "{b}"
    );
    assert_eq!(v["stats"]["xNumberOfSuccessfulAllocations"], 7413);
}
