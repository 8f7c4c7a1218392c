//! The library behind the `rtos-heap` command-line tool: trace parsing, simulated heaps for any
//! device layout, replay, exact heap sizing and the output formats.
//!
//! The binary (`src/main.rs`) is a thin clap front end over these modules; the fuzz target and the
//! benchmarks call them directly.
//!
//! ```
//! use rtos_heap_cli::layout::{Preset, Scheme};
//! use rtos_heap_cli::sim::{build, HeapSpec};
//! use rtos_heap_cli::replay::{replay_ops, ReplayOptions};
//! use rtos_heap_cli::trace::{ParseOptions, TraceReader};
//!
//! let text = "a 0 100\na 1 200\nf 0\na 2 50\n";
//! let ops = TraceReader::new(text.as_bytes(), "example", ParseOptions::default()).read_all().unwrap();
//! let spec = HeapSpec::single(Scheme::Heap4, Preset::CortexM.layout(), 1024);
//! let mut heap = build(&spec).unwrap();
//! let r = replay_ops(heap.as_mut(), &ops, &ReplayOptions::default(), None).unwrap();
//! assert_eq!(r.failed_allocs, 0);
//! assert_eq!(r.peak_used, 112 + 208); // two blocks: round_up(n + 8, 8)
//! ```
#![warn(missing_docs)]

pub mod export;
pub mod inspect;
pub mod layout;
pub mod replay;
pub mod report;
pub mod sim;
pub mod size;
pub mod trace;
