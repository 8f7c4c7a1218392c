//! Unit tests of the trace parser.

use super::*;

fn read(text: &str, opts: ParseOptions) -> (Result<Vec<Op>, TraceError>, TraceReader<&[u8]>) {
    let mut r = TraceReader::new(text.as_bytes(), "t.txt", opts);
    let ops = r.read_all();
    (ops, r)
}

fn parse_error(text: &str) -> (u64, String) {
    match read(text, ParseOptions::default()).0 {
        Err(TraceError::Parse {
            line,
            expected,
            file,
            ..
        }) => {
            assert_eq!(file, "t.txt");
            (line, expected)
        }
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn ids_format_with_comments_alignment_and_slot_reuse() {
    let (ops, r) = read(
        "# a comment\n\na 7 100\na 9 24 16\nf 7\na 7 5\n",
        ParseOptions::default(),
    );
    let ops = ops.unwrap();
    assert_eq!(r.format(), Some(Format::Ids));
    assert_eq!(
        ops,
        vec![
            Op {
                line: 3,
                slot: 0,
                kind: OpKind::Alloc {
                    size: 100,
                    align: 0
                }
            },
            Op {
                line: 4,
                slot: 1,
                kind: OpKind::Alloc {
                    size: 24,
                    align: 16
                }
            },
            Op {
                line: 5,
                slot: 0,
                kind: OpKind::Free
            },
            // id 7 is free again, so it may be reused; slot 0 is reused too.
            Op {
                line: 6,
                slot: 0,
                kind: OpKind::Alloc { size: 5, align: 0 }
            },
        ]
    );
    assert_eq!(r.counts().peak_live, 2);
    assert!(r.exactness().exact);
}

#[test]
fn hook_log_block_sizes_are_converted_and_addresses_mapped() {
    // Cortex-M heap_4: malloc(100) is a 112-byte block; malloc(1) a 16-byte block.
    let text = "malloc 0x20000008 112\nmalloc 20000078 16\nfree 0x20000008 112\nfree 0xdead 16\nmalloc (nil) 0\n";
    let (ops, r) = read(text, ParseOptions::default());
    let ops = ops.unwrap();
    assert_eq!(r.format(), Some(Format::Hook));
    assert_eq!(ops.len(), 3);
    assert_eq!(
        ops[0].kind,
        OpKind::Alloc {
            size: 104,
            align: 0
        }
    );
    assert_eq!(ops[1].kind, OpKind::Alloc { size: 8, align: 0 });
    assert_eq!((ops[2].kind, ops[2].slot), (OpKind::Free, ops[0].slot));
    let c = r.counts();
    assert_eq!((c.unknown_frees, c.device_failures), (1, 1));
    assert_eq!(r.warnings()[0].line, 4);
    // The replayed request is the largest one that gives this block; the true one is at most
    // 2 headers + alignment − 1 bytes smaller.
    assert_eq!(
        r.exactness(),
        SizeExactness {
            exact: false,
            below: 23
        }
    );
}

#[test]
fn hook_log_requested_and_aligned_modes() {
    let req = ParseOptions {
        size_field: SizeField::Requested,
        ..ParseOptions::default()
    };
    let (ops, r) = read("malloc 0x10 13\n", req);
    assert_eq!(ops.unwrap()[0].kind, OpKind::Alloc { size: 13, align: 0 });
    assert!(r.exactness().exact);
    let al = ParseOptions {
        size_field: SizeField::Aligned,
        ..ParseOptions::default()
    };
    assert!(read("malloc 0x10 13\n", al).0.is_err());
    assert_eq!(
        read("malloc 0x10 16\n", al).0.unwrap()[0].kind,
        OpKind::Alloc { size: 16, align: 0 }
    );
}

#[test]
fn rich_trace_uses_the_requested_size_and_reads_the_header() {
    let text = "# freertos-heap-trace v1\n# heap_start=0x1000 configTOTAL_HEAP_SIZE=4096\nmalloc 0x1010 10 32 0\nfree 0x1010 10 32 5\n";
    let (ops, r) = read(text, ParseOptions::default());
    let ops = ops.unwrap();
    assert_eq!(r.format(), Some(Format::Trace));
    assert_eq!(ops[0].kind, OpKind::Alloc { size: 10, align: 0 });
    assert_eq!(
        r.header().get("configTOTAL_HEAP_SIZE").map(String::as_str),
        Some("4096")
    );
    assert_eq!(
        r.header().get("heap_start").map(String::as_str),
        Some("0x1000")
    );
}

#[test]
fn reused_address_is_a_warning_and_the_old_block_leaks() {
    let (ops, r) = read(
        "malloc 0x100 16\nmalloc 0x100 16\nfree 0x100 16\n",
        ParseOptions::default(),
    );
    let ops = ops.unwrap();
    assert_eq!(r.counts().reused_addresses, 1);
    // The free goes to the newer allocation; the older keeps its slot for ever.
    assert_eq!(ops[2].slot, ops[1].slot);
    assert_ne!(ops[0].slot, ops[1].slot);
}

#[test]
fn malformed_lines_name_line_and_expectation() {
    assert_eq!(parse_error("a 1 10\nx 2\n").0, 2);
    assert!(
        parse_error("a 1 10\nx 2\n")
            .1
            .contains("`a <id> <size> [align]`")
    );
    assert!(parse_error("a one 10\n").1.contains("allocation id"));
    assert!(parse_error("a 1 ten\n").1.contains("size in bytes"));
    assert!(parse_error("a 1 10 3\n").1.contains("power of two"));
    assert!(parse_error("a 1 10\na 1 20\n").1.contains("not live"));
    assert!(parse_error("f x\n").1.contains("allocation id"));
    assert!(
        parse_error("malloc zz 16\n")
            .1
            .contains("hexadecimal address")
    );
    assert!(parse_error("malloc 0x10 -1\n").1.contains("size in bytes"));
    assert!(parse_error("malloc 0x10 12\n").1.contains("block size"));
    assert!(
        parse_error("malloc 0x10 16\nfree 0x10\n")
            .1
            .contains("`malloc <hex address> <size>`")
    );
    assert!(parse_error("malloc 0x10 5 24 x\n").1.contains("tick"));
    assert!(parse_error("malloc 0x10 5 y 1\n").1.contains("block size"));
    assert!(parse_error("hello world\n").1.contains("a trace line"));
    assert_eq!(
        parse_error("# c\n\nmalloc 0x10 16\nfree 0x10 16 1 2\n").0,
        4
    );
    assert!(
        parse_error("a 99999999999999999999999 1\n")
            .1
            .contains("allocation id")
    );
}

#[test]
fn invalid_utf8_is_an_error_with_its_line() {
    let mut r = TraceReader::new(&b"a 1 10\n\xff\xfe\n"[..], "bin", ParseOptions::default());
    match r.read_all() {
        Err(TraceError::Parse { line, expected, .. }) => {
            assert_eq!(line, 2);
            assert_eq!(expected, "UTF-8 text");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn lenient_mode_skips_console_noise() {
    let opts = ParseOptions {
        lenient: true,
        ..ParseOptions::default()
    };
    let (ops, r) = read(
        "Starting demo\nmalloc 0x10 16\nTask created\nfree 0x10 16\n",
        opts,
    );
    assert_eq!(ops.unwrap().len(), 2);
    assert_eq!(r.counts().skipped_lines, 2);
}

#[test]
fn workload_conversion_keeps_ids_apart() {
    let w = rtos_heap_workloads::fragmented();
    let ops = from_workload(&w);
    assert_eq!(ops.len(), w.setup.len() + w.ops.len());
    let peak_slots = ops.iter().map(|o| o.slot).max().unwrap();
    // 10,000 blocks allocated before any free: 10,000 slots.
    assert_eq!(peak_slots, 9_999);
}
