//! Fuzzes the trace parser (every format, option and byte sequence): it must never panic, every
//! error must name a line that exists, and the operations it hands out must be consistent (a free
//! names a live slot). Well-formed results are then replayed on a small heap_4 and heap_2, which
//! must not panic either.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rtos_heap_cli::layout::{Preset, Scheme};
use rtos_heap_cli::replay::{ReplayOptions, replay_ops};
use rtos_heap_cli::sim::{HeapSpec, build};
use rtos_heap_cli::trace::{Format, OpKind, ParseOptions, SizeField, TraceError, TraceReader};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, text)) = data.split_first() else {
        return;
    };
    let format = match knobs & 3 {
        0 => None,
        1 => Some(Format::Hook),
        2 => Some(Format::Trace),
        _ => Some(Format::Ids),
    };
    let size_field = match (knobs >> 2) & 3 {
        0 | 3 => SizeField::Block,
        1 => SizeField::Aligned,
        _ => SizeField::Requested,
    };
    let log = if knobs & 16 != 0 {
        Preset::X86_64
    } else {
        Preset::CortexM
    }
    .layout();
    let opts = ParseOptions {
        format,
        size_field,
        log_header: log.header() as u64,
        log_align: log.align as u64,
        lenient: knobs & 32 != 0,
    };
    let lines = text.split(|&b| b == b'\n').count() as u64;
    let mut reader = TraceReader::new(text, "fuzz", opts);
    let mut live: HashSet<u32> = HashSet::new();
    let mut ops = Vec::new();
    loop {
        match reader.next_op() {
            Ok(Some(op)) => {
                assert!(op.line >= 1 && op.line <= lines);
                match op.kind {
                    OpKind::Alloc { .. } => assert!(live.insert(op.slot), "slot handed out twice"),
                    OpKind::Free => assert!(live.remove(&op.slot), "free of a slot not live"),
                }
                if ops.len() < 4096 {
                    ops.push(op);
                }
            }
            Ok(None) => break,
            Err(TraceError::Parse { line, .. }) => {
                assert!(line >= 1 && line <= lines);
                return;
            }
            Err(TraceError::Io { .. }) => return,
        }
    }
    // Frees of slots allocated beyond the kept prefix are fine: the replayer skips unknown ones.
    for scheme in [Scheme::Heap4, Scheme::Heap2] {
        let mut h = build(&HeapSpec::single(scheme, log, 4096)).unwrap();
        let r = replay_ops(h.as_mut(), &ops, &ReplayOptions::default(), None).unwrap();
        assert_eq!(r.ops, ops.len() as u64);
    }
});
