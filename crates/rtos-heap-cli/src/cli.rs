//! The command line: clap definitions and the four commands.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::inspect_cmd::InspectArgs;
use rtos_heap_cli::export::{Exporter, Html, Json, Table};
use rtos_heap_cli::layout::{Layout, Preset, Scheme, parse_bytes};
use rtos_heap_cli::replay::{ReplayOptions, ReplayResult, replay, replay_ops};
use rtos_heap_cli::report::{Report, SizeEntry, TraceInfo};
use rtos_heap_cli::sim::{self, HeapSpec};
use rtos_heap_cli::size::{self, SizeOptions};
use rtos_heap_cli::trace::{Format, Op, ParseOptions, SizeField, TraceReader, from_workload};

/// Replay FreeRTOS allocation traces against heap_1 … heap_5, find the smallest
/// configTOTAL_HEAP_SIZE, compare the schemes and draw the heap.
///
/// With no command, runs the demo.
#[derive(Debug, Parser)]
#[command(name = "rtos-heap", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay the built-in FreeRTOS-like "rtos" workload against every scheme (the default).
    Demo(DemoArgs),
    /// Replay a trace: failures, peak use, fragmentation over time, final HeapStats.
    Replay(ReplayArgs),
    /// The smallest heap at which a trace runs without a failed allocation, per scheme.
    Size(SizeArgs),
    /// All schemes side by side, at one heap size or each at its own minimum.
    Compare(CompareArgs),
    /// Read a heap_4/heap_5 image taken from a device: every block, the free list, the
    /// statistics, the damage, and (with --trace) which allocation holds each block.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// Device layout preset.
    #[arg(long, value_enum, default_value = "cortex-m")]
    target: Preset,
    /// Word size of the device in bits (32 or 64); overrides the preset's.
    #[arg(long)]
    word_bits: Option<usize>,
    /// portBYTE_ALIGNMENT of the device (4, 8 or 16); overrides the preset's.
    #[arg(long)]
    alignment: Option<usize>,
}

impl TargetArgs {
    fn layout(&self) -> Result<Layout> {
        let p = self.target.layout();
        Layout::new(
            self.word_bits.unwrap_or(p.word * 8),
            self.alignment.unwrap_or(p.align),
        )
        .map_err(anyhow::Error::msg)
    }
}

#[derive(Debug, Args)]
struct TraceArgs {
    /// The trace file (hook log, freertos-heap-trace, or id form; see docs/trace-format.md).
    trace: PathBuf,
    /// Trace format (detected from the first lines when not given).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// What a hook log's size field holds: `block` (FreeRTOS V11 heap_2/4/5), `aligned` (heap_1),
    /// `requested` (heap_3 or your own macros).
    /// (Default: block.)
    #[arg(long, value_enum)]
    size_field: Option<SizeField>,
    /// Layout of the device the hook log was captured on (default: --target's).
    #[arg(long, value_enum)]
    log_target: Option<Preset>,
    /// Skip lines that are not trace lines (other console output) instead of failing.
    #[arg(long)]
    lenient: bool,
}

impl TraceArgs {
    fn options(&self, layout: Layout) -> ParseOptions {
        let log = self.log_target.map_or(layout, Preset::layout);
        ParseOptions {
            format: self.format,
            size_field: self.size_field.unwrap_or(SizeField::Block),
            log_header: log.header() as u64,
            log_align: log.align as u64,
            lenient: self.lenient,
        }
    }

    fn open(&self, layout: Layout) -> Result<TraceReader<BufReader<File>>> {
        let f = File::open(&self.trace)
            .with_context(|| format!("cannot open {}", self.trace.display()))?;
        Ok(TraceReader::new(
            BufReader::with_capacity(1 << 16, f),
            self.trace.display().to_string(),
            self.options(layout),
        ))
    }
}

#[derive(Debug, Args)]
struct OutArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML report (heap maps and time series) to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Heap size (default: the workload's 96 KiB).
    #[arg(long, value_parser = parse_bytes)]
    heap_size: Option<usize>,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    out: OutArgs,
    /// Schemes to replay (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scheme: Vec<Scheme>,
    /// configTOTAL_HEAP_SIZE (e.g. 65536, 64K); default: the trace header's, if it has one.
    #[arg(long, value_parser = parse_bytes)]
    heap_size: Option<usize>,
    /// heap_5 regions (comma-separated sizes, ascending addresses); default: one of --heap-size.
    #[arg(long, value_parser = parse_bytes, value_delimiter = ',')]
    regions: Vec<usize>,
    /// Write each allocation's offset from its region's start (heap_5: `region offset`), or -1
    /// for a failed allocation, one line per allocation in trace order.
    #[arg(long, value_name = "FILE")]
    placements: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SizeArgs {
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    out: OutArgs,
    /// Schemes to size (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    scheme: Vec<Scheme>,
    /// Margin added to the minimum for the recommended configTOTAL_HEAP_SIZE, in percent
    /// (0 to 1000).
    #[arg(long, default_value = "10", value_parser = parse_margin)]
    margin: f64,
    /// heap_5: fixed regions placed before the searched (last) region.
    #[arg(long, value_parser = parse_bytes, value_delimiter = ',')]
    regions: Vec<usize>,
    /// Most candidate sizes replayed per scheme (at least 1).
    #[arg(long, default_value = "2000", value_parser = parse_replays)]
    max_replays: usize,
    /// Seconds of candidate replays per scheme before the rest is reported untested.
    #[arg(long, default_value = "30", value_parser = parse_seconds)]
    time_limit: f64,
    /// Exit with status 1 when a scheme's minimum is not proven within the budget.
    #[arg(long)]
    fail_unproven: bool,
}

#[derive(Debug, Args)]
struct CompareArgs {
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    out: OutArgs,
    /// One heap size for every scheme; without it each scheme runs at its own minimum.
    #[arg(long, value_parser = parse_bytes)]
    heap_size: Option<usize>,
    /// Margin for the recommended configTOTAL_HEAP_SIZE, in percent (0 to 1000).
    #[arg(long, default_value = "10", value_parser = parse_margin)]
    margin: f64,
    /// Most candidate sizes replayed per scheme (without --heap-size; at least 1).
    #[arg(long, default_value = "2000", value_parser = parse_replays)]
    max_replays: usize,
    /// Seconds of candidate replays per scheme (without --heap-size).
    #[arg(long, default_value = "30", value_parser = parse_seconds)]
    time_limit: f64,
}

/// `--margin`: a percentage from 0 to 1,000.
fn parse_margin(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a margin: a percentage from 0 to 1000"
        )),
    }
}

/// `--max-replays`: at least one.
fn parse_replays(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("`{s}` is not a number of replays: at least 1")),
    }
}

/// `--time-limit`: seconds, more than 0 and at most a day.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a time limit: seconds, more than 0 and at most 86400"
        )),
    }
}

const HEAP3_NOTE: &str = "heap_3 is simulated as the C library's allocator under a byte limit that counts requested bytes only: the C library's own headers and fragmentation are not modelled, so its figures are a lower bound.";

/// Runs the command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => demo(DemoArgs {
            target: TargetArgs {
                target: Preset::CortexM,
                word_bits: None,
                alignment: None,
            },
            json: false,
            report: None,
            heap_size: None,
        }),
        Some(Command::Demo(a)) => demo(a),
        Some(Command::Replay(a)) => replay_cmd(a),
        Some(Command::Size(a)) => size_cmd(a),
        Some(Command::Compare(a)) => compare_cmd(a),
        Some(Command::Inspect(a)) => crate::inspect_cmd::run(a),
    }
}

fn schemes(list: &[Scheme]) -> Vec<Scheme> {
    if list.is_empty() {
        Scheme::ALL.to_vec()
    } else {
        let mut v = list.to_vec();
        v.sort();
        v.dedup();
        v
    }
}

fn emit(report: &Report, json: bool, html: Option<&Path>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        Json.write(report, &mut out)?;
    } else {
        Table.write(report, &mut out)?;
    }
    if let Some(p) = html {
        let mut f = BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        );
        Html.write(report, &mut f)?;
        f.flush()?;
        if !json {
            writeln!(out, "Report written to {}", p.display())?;
        }
    }
    Ok(())
}

fn info_of<R: std::io::BufRead>(reader: &TraceReader<R>, source: String, ops: u64) -> TraceInfo {
    TraceInfo {
        source,
        format: reader.format(),
        ops,
        counts: reader.counts(),
        sizes: reader.exactness(),
        warnings: reader.warnings().to_vec(),
        warning_count: reader.warning_count(),
        header: reader.header().clone(),
    }
}

fn load(trace: &TraceArgs, layout: Layout) -> Result<(Vec<Op>, TraceInfo)> {
    let mut r = trace.open(layout)?;
    let ops = r.read_all()?;
    trace.check(r.format(), ops.len() as u64)?;
    let info = info_of(&r, trace.trace.display().to_string(), ops.len() as u64);
    Ok((ops, info))
}

impl TraceArgs {
    /// What can only be checked once the trace was read: options for hook logs given for
    /// another format, and a trace with nothing to replay.
    fn check(&self, format: Option<Format>, ops: u64) -> Result<()> {
        if format != Some(Format::Hook) {
            for (given, name) in [
                (self.size_field.is_some(), "--size-field"),
                (self.log_target.is_some(), "--log-target"),
            ] {
                if given {
                    bail!(
                        "{}: {name} is for hook logs (traceMALLOC/traceFREE lines); this trace is in the {} format",
                        self.trace.display(),
                        format.map_or("unknown".to_string(), |f| format!("{f:?}").to_lowercase())
                    );
                }
            }
        }
        if ops == 0 {
            bail!(
                "{}: the trace holds no allocation or free (only comments or blank lines): nothing to replay",
                self.trace.display()
            );
        }
        Ok(())
    }
}

/// `--regions` and `--heap-size` against the schemes they would apply to.
fn check_regions(list: &[Scheme], regions: &[usize], heap_size: Option<usize>) -> Result<()> {
    if !regions.is_empty() && !list.contains(&Scheme::Heap5) {
        bail!("--regions is for heap_5; the other schemes take one --heap-size");
    }
    if !regions.is_empty() && heap_size.is_some() && list == [Scheme::Heap5] {
        bail!("heap_5 takes --regions or --heap-size, not both");
    }
    Ok(())
}

fn spec_for(scheme: Scheme, layout: Layout, heap: usize, regions: &[usize]) -> HeapSpec {
    let regions = if scheme == Scheme::Heap5 && !regions.is_empty() {
        regions.to_vec()
    } else {
        vec![heap]
    };
    HeapSpec {
        scheme,
        layout,
        regions,
    }
}

/// Replays in-memory ops; with maps, a second pass takes the map at the moment of peak use.
fn replay_mem(spec: &HeapSpec, ops: &[Op], maps: bool) -> Result<ReplayResult> {
    let opts = ReplayOptions {
        maps,
        ..ReplayOptions::default()
    };
    let mut h = sim::build(spec)?;
    let r = replay_ops(h.as_mut(), ops, &opts, None)?;
    if maps && r.first_failure.is_none() && spec.scheme != Scheme::Heap3 {
        let mut h = sim::build(spec)?;
        let opts = ReplayOptions {
            snapshot_at: Some(r.peak_op),
            ..opts
        };
        return Ok(replay_ops(h.as_mut(), ops, &opts, None)?);
    }
    Ok(r)
}

struct Bar {
    bar: ProgressBar,
    start: Instant,
    shown: bool,
    /// stderr is not a terminal (piped, logged): no bar, a plain line every few seconds.
    plain: bool,
    last_line: Instant,
    name: String,
}

/// Seconds between progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl Bar {
    fn new(msg: &str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{msg:>8} [{bar:30}] {pos}/{len} replays ({elapsed})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(msg.to_string());
        Bar {
            bar,
            start: Instant::now(),
            shown: false,
            plain: !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            last_line: Instant::now(),
            name: msg.to_string(),
        }
    }

    fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl size::Progress for Bar {
    fn planned(&mut self, n: u64) {
        self.bar.inc_length(n);
    }

    fn done(&mut self) {
        self.bar.inc(1);
        if self.plain {
            if self.last_line.elapsed() >= PLAIN_PROGRESS_EVERY {
                self.last_line = Instant::now();
                eprintln!(
                    "{}: {} replays so far ({:.0} s)",
                    self.name,
                    self.bar.position(),
                    self.start.elapsed().as_secs_f64()
                );
            }
            return;
        }
        // Only when it takes more than a moment.
        if !self.shown && self.start.elapsed() > Duration::from_millis(400) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }
}

fn size_all(
    ops: &[Op],
    layout: Layout,
    list: &[Scheme],
    opts: &SizeOptions,
    margin: f64,
) -> Vec<SizeEntry> {
    list.iter()
        .map(|&scheme| {
            let t = Instant::now();
            let mut bar = Bar::new(scheme.c_name());
            let result = size::find(scheme, layout, ops, opts, &mut bar);
            bar.finish();
            let recommended = size::recommend(&result, margin, 1024);
            SizeEntry {
                result,
                recommended,
                margin,
                seconds: t.elapsed().as_secs_f64(),
            }
        })
        .collect()
}

fn demo(a: DemoArgs) -> Result<ExitCode> {
    let layout = a.target.layout()?;
    let w = rtos_heap_workloads::rtos();
    let ops = from_workload(&w);
    let heap = a.heap_size.unwrap_or(w.heap_size);
    let mut replays = Vec::new();
    for scheme in Scheme::ALL {
        replays.push(replay_mem(
            &HeapSpec::single(scheme, layout, heap),
            &ops,
            true,
        )?);
    }
    // A short budget: the demo must answer at once (heap_2's best fit needs many replays).
    let budget = SizeOptions {
        fixed_regions: Vec::new(),
        max_replays: 300,
        time_limit: Duration::from_millis(1500),
    };
    let sizes = size_all(&ops, layout, &Scheme::ALL, &budget, 0.10);
    let info = TraceInfo {
        source: format!("workload: {} (shared/docs/workloads.md)", w.name),
        format: None,
        ops: ops.len() as u64,
        counts: Default::default(),
        sizes: rtos_heap_cli::trace::SizeExactness {
            exact: true,
            below: 0,
        },
        warnings: Vec::new(),
        warning_count: 0,
        header: Default::default(),
    };
    let report = Report {
        command: "demo".into(),
        trace: info,
        replays,
        sizes,
        notes: vec![
            "the rtos workload: 16 tasks, 24 queues, 32 timers, 24 semaphores, then 100,000 steps of messages with lifetimes; every request aligned to 8.".into(),
            HEAP3_NOTE.into(),
            "try: rtos-heap size <your trace> (docs/capturing-traces.md tells how to capture one).".into(),
        ],
    };
    let path = a
        .report
        .unwrap_or_else(|| std::env::temp_dir().join("rtos-heap-demo.html"));
    emit(&report, a.json, Some(&path))?;
    Ok(ExitCode::SUCCESS)
}

fn replay_cmd(a: ReplayArgs) -> Result<ExitCode> {
    let layout = a.target.layout()?;
    let list = schemes(&a.scheme);
    if a.placements.is_some() && list.len() != 1 {
        bail!("--placements needs exactly one --scheme");
    }
    if a.placements.is_some() && list[0] == Scheme::Heap3 {
        bail!(
            "--placements: heap_3 has no placements of its own (the C library places its blocks)"
        );
    }
    check_regions(&list, &a.regions, a.heap_size)?;
    let mut replays = Vec::new();
    let mut info = None;
    for &scheme in &list {
        let mut reader = a.trace.open(layout)?;
        let heap = match a.heap_size {
            Some(h) => h,
            // heap_5 with --regions needs no --heap-size.
            None if scheme == Scheme::Heap5 && !a.regions.is_empty() => 0,
            None => header_heap_size(&a.trace.trace)?.with_context(|| {
                format!(
                    "{}: give --heap-size (the trace has no configTOTAL_HEAP_SIZE header)",
                    a.trace.trace.display()
                )
            })?,
        };
        let spec = spec_for(scheme, layout, heap, &a.regions);
        let mut h = sim::build(&spec)?;
        let maps = a.out.report.is_some();
        let opts = ReplayOptions {
            maps,
            ..ReplayOptions::default()
        };
        let mut file = match &a.placements {
            Some(p) => Some(BufWriter::new(
                File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            )),
            None => None,
        };
        let mut r = replay(
            h.as_mut(),
            &mut reader,
            &opts,
            file.as_mut().map(|f| f as &mut dyn Write),
        )?;
        if let Some(mut f) = file {
            f.flush()?;
        }
        if maps && r.first_failure.is_none() && scheme != Scheme::Heap3 {
            // Second pass for the map at the moment of peak use.
            let mut reader2 = a.trace.open(layout)?;
            let mut h = sim::build(&spec)?;
            let opts = ReplayOptions {
                snapshot_at: Some(r.peak_op),
                ..opts
            };
            r = replay(h.as_mut(), &mut reader2, &opts, None)?;
        }
        if info.is_none() {
            a.trace.check(reader.format(), r.ops)?;
            info = Some(info_of(&reader, a.trace.trace.display().to_string(), r.ops));
        }
        replays.push(r);
    }
    let mut notes = Vec::new();
    if list.contains(&Scheme::Heap3) {
        notes.push(HEAP3_NOTE.to_string());
    }
    let report = Report {
        command: "replay".into(),
        trace: info.expect("at least one scheme"),
        replays,
        sizes: Vec::new(),
        notes,
    };
    emit(&report, a.out.json, a.out.report.as_deref())?;
    // The trace did not run where an allocation failed.
    Ok(if report.replays.iter().any(|r| r.failed_allocs > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `configTOTAL_HEAP_SIZE` from the `#` header lines at the top of a trace, if any.
fn header_heap_size(path: &Path) -> Result<Option<usize>> {
    use std::io::BufRead;
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    for line in BufReader::new(f).lines().take(64) {
        let Ok(line) = line else { break };
        let Some(c) = line.trim().strip_prefix('#') else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        for tok in c.split_whitespace() {
            if let Some(v) = tok.strip_prefix("configTOTAL_HEAP_SIZE=") {
                return Ok(v.parse().ok());
            }
        }
    }
    Ok(None)
}

fn size_cmd(a: SizeArgs) -> Result<ExitCode> {
    let layout = a.target.layout()?;
    let list = schemes(&a.scheme);
    check_regions(&list, &a.regions, None)?;
    let (ops, info) = load(&a.trace, layout)?;
    let opts = SizeOptions {
        fixed_regions: a.regions.clone(),
        max_replays: a.max_replays,
        time_limit: Duration::from_secs_f64(a.time_limit.max(0.0)),
    };
    let sizes = size_all(&ops, layout, &list, &opts, a.margin / 100.0);
    let mut replays = Vec::new();
    if a.out.report.is_some() {
        for e in &sizes {
            if let Some(m) = e.result.minimum {
                let mut regions = e.result.fixed_regions.clone();
                regions.push(m);
                let spec = HeapSpec {
                    scheme: e.result.scheme,
                    layout,
                    regions,
                };
                replays.push(replay_mem(&spec, &ops, true)?);
            }
        }
    }
    let mut notes = Vec::new();
    if list.contains(&Scheme::Heap3) {
        notes.push(HEAP3_NOTE.to_string());
    }
    if !info.sizes.exact {
        notes.push(format!(
            "the hook log gives block sizes; requests were replayed as block − header, up to {} bytes above the true request: sizes are exact for the scheme and layout the log was captured with, otherwise an upper bound",
            info.sizes.below
        ));
    }
    let report = Report {
        command: "size".into(),
        trace: info,
        replays,
        sizes,
        notes,
    };
    emit(&report, a.out.json, a.out.report.as_deref())?;
    let never = report.sizes.iter().any(|e| e.result.never_fits.is_some());
    let unproven = report.sizes.iter().any(|e| e.result.minimum.is_none());
    Ok(if never || (a.fail_unproven && unproven) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn compare_cmd(a: CompareArgs) -> Result<ExitCode> {
    let layout = a.target.layout()?;
    let (ops, info) = load(&a.trace, layout)?;
    let mut sizes = Vec::new();
    let mut replays = Vec::new();
    let mut notes = vec![HEAP3_NOTE.to_string()];
    match a.heap_size {
        Some(h) => {
            for scheme in Scheme::ALL {
                replays.push(replay_mem(
                    &HeapSpec::single(scheme, layout, h),
                    &ops,
                    a.out.report.is_some(),
                )?);
            }
        }
        None => {
            let opts = SizeOptions {
                fixed_regions: Vec::new(),
                max_replays: a.max_replays,
                time_limit: Duration::from_secs_f64(a.time_limit.max(0.0)),
            };
            sizes = size_all(&ops, layout, &Scheme::ALL, &opts, a.margin / 100.0);
            for e in &sizes {
                match e.result.minimum.or(e.result.verified) {
                    Some(m) => replays.push(replay_mem(
                        &HeapSpec::single(e.result.scheme, layout, m),
                        &ops,
                        a.out.report.is_some(),
                    )?),
                    None => notes.push(format!("{}: no size found", e.result.scheme)),
                }
            }
            notes.push("each scheme replayed at its own minimum heap size.".into());
        }
    }
    let report = Report {
        command: "compare".into(),
        trace: info,
        replays,
        sizes,
        notes,
    };
    emit(&report, a.out.json, a.out.report.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
