//! `rtos-heap inspect`: the command-line side of [`rtos_heap_cli::inspect`].

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use rtos_heap_cli::inspect::memory::{Firmware, Memory};
use rtos_heap_cli::inspect::{
    self, Counters, Facts, Flavour, TraceInput, parse_facts_file, parse_u64, render,
};
use rtos_heap_cli::layout::{Preset, Scheme};
use rtos_heap_cli::trace::{ParseOptions, SizeField, TraceReader};

/// Options of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The heap image: a raw dump (`dump binary memory`, with --base) or an ELF core file.
    image: PathBuf,
    /// The firmware's ELF: ucHeap, xStart, pxEnd, xHeapCanary and the counters by symbol.
    #[arg(long, value_name = "ELF")]
    elf: Option<PathBuf>,
    /// The facts as `key=value` lines (scheme, word_bytes, portBYTE_ALIGNMENT, base_address,
    /// bytes, xStart_pxNextFreeBlock, pxEnd, xHeapCanary, region=ADDR:LEN); options override.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    /// heap4 or heap5.
    #[arg(long, value_enum)]
    scheme: Option<Scheme>,
    /// Device layout preset (default: cortex-m, or the ELF's word size).
    #[arg(long, value_enum)]
    target: Option<Preset>,
    /// Word size in bits (32 or 64); overrides --target's.
    #[arg(long)]
    word_bits: Option<usize>,
    /// portBYTE_ALIGNMENT; overrides --target's.
    #[arg(long)]
    alignment: Option<usize>,
    /// Device address of the raw dump's first byte (heap_4: `ucHeap`).
    #[arg(long, value_parser = parse_u64)]
    base: Option<u64>,
    /// heap_4: configTOTAL_HEAP_SIZE (default: the dump's length, or ucHeap's size).
    #[arg(long, value_parser = parse_u64)]
    heap_size: Option<u64>,
    /// heap_5: the regions as given to vPortDefineHeapRegions, `ADDR:BYTES,…` ascending.
    #[arg(long, value_delimiter = ',', value_parser = parse_region)]
    regions: Vec<(u64, u64)>,
    /// The heap protector's canary (xHeapCanary), hex.
    #[arg(long, value_parser = parse_u64)]
    canary: Option<u64>,
    /// xStart.pxNextFreeBlock as stored (default: read by symbol, or the lowest free block).
    #[arg(long, value_parser = parse_u64)]
    xstart: Option<u64>,
    /// pxEnd (default: read by symbol, or computed from the regions).
    #[arg(long, value_parser = parse_u64)]
    pxend: Option<u64>,
    /// Whose heap wrote the image.
    #[arg(long, value_enum, default_value = "c")]
    flavour: Flavour,
    /// The trace that led to the image: names the allocation behind each block, and gives the
    /// counters the image lacks.
    #[arg(long, value_name = "TRACE")]
    trace: Option<PathBuf>,
    /// With --trace: the image is the heap after this many operations (default: the last
    /// prefix of the trace that replays to the image's blocks).
    #[arg(long, requires = "trace")]
    trace_ops: Option<u64>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write an HTML page with the heap map of the image.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

fn parse_region(s: &str) -> Result<(u64, u64), String> {
    let (a, l) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not ADDRESS:BYTES (e.g. 0x20000000:65536)"))?;
    Ok((parse_u64(a)?, parse_u64(l)?))
}

/// Runs `inspect`: exit 0 when the heap is sound, 1 when damage was found.
pub fn run(a: InspectArgs) -> Result<ExitCode> {
    let fw = a.elf.as_deref().map(Firmware::load).transpose()?;
    let mut facts = match &a.facts {
        Some(p) => parse_facts_file(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            a.flavour,
        )
        .with_context(|| format!("{}", p.display()))?,
        None => Facts {
            heap5: false,
            word: 4,
            align: 8,
            flavour: a.flavour,
            regions: Vec::new(),
            canary: 0,
            head: None,
            end: None,
            origin: 0,
        },
    };
    facts.flavour = a.flavour;
    if a.facts.is_none() {
        let preset = a.target.unwrap_or(match fw.as_ref().map(|f| f.word) {
            Some(8) => Preset::X86_64,
            _ => Preset::CortexM,
        });
        let l = preset.layout();
        facts.word = l.word;
        facts.align = l.align;
        if let Some(f) = &fw {
            facts.heap5 = f.get("vPortDefineHeapRegions").is_some() && f.get("ucHeap").is_none();
        }
    }
    if let Some(b) = a.word_bits {
        facts.word = b / 8;
    }
    if let Some(al) = a.alignment {
        facts.align = al;
    }
    if let Some(s) = a.scheme {
        facts.heap5 = match s {
            Scheme::Heap4 => false,
            Scheme::Heap5 => true,
            other => bail!("inspect reads heap_4 and heap_5 images, not {other}"),
        };
    }
    let base = a
        .base
        .or(a.facts.as_ref().map(|_| facts.origin))
        .or_else(|| fw.as_ref().and_then(|f| f.get("ucHeap")).map(|s| s.addr));
    let mem = Memory::load(&a.image, base)?;
    if !a.regions.is_empty() {
        if !facts.heap5 {
            bail!(
                "--regions is for heap_5 images: add --scheme heap5 (heap_4 takes --base and --heap-size)"
            );
        }
        facts.regions = a.regions.clone();
        facts.origin = a.base.unwrap_or(a.regions[0].0);
    } else if !facts.heap5
        && (a.base.is_some() || a.heap_size.is_some() || facts.regions.is_empty())
    {
        let seg = &mem.segments()[0];
        let start = base.unwrap_or(seg.addr);
        let size = a
            .heap_size
            .or_else(|| fw.as_ref().and_then(|f| f.get("ucHeap")).map(|s| s.size))
            .or_else(|| facts.regions.first().map(|r| r.1))
            .unwrap_or(seg.bytes.len() as u64);
        facts.regions = vec![(start, size)];
        facts.origin = start;
    }
    if facts.heap5 && facts.regions.is_empty() {
        bail!(
            "a heap_5 image needs its regions: --regions ADDR:BYTES,… as given to vPortDefineHeapRegions"
        );
    }
    if let Some(c) = a.canary {
        facts.canary = c;
    }
    if let Some(x) = a.xstart {
        facts.head = Some(x);
    }
    if let Some(e) = a.pxend {
        facts.end = Some(e);
    }
    let counters = match &fw {
        Some(f) => {
            if f.word != facts.word && a.word_bits.is_none() && a.target.is_none() {
                facts.word = f.word;
            }
            inspect::facts_from_elf(f, &mem, &mut facts)
        }
        None => Counters::default(),
    };
    let ops;
    let trace = match &a.trace {
        Some(p) => {
            let layout = rtos_heap_cli::layout::Layout::new(facts.word * 8, facts.align)
                .map_err(anyhow::Error::msg)?;
            let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let opts = ParseOptions {
                format: None,
                size_field: SizeField::Block,
                log_header: layout.header() as u64,
                log_align: layout.align as u64,
                lenient: false,
            };
            ops = TraceReader::new(BufReader::new(f), p.display().to_string(), opts).read_all()?;
            Some(TraceInput {
                ops: &ops,
                at: a.trace_ops,
            })
        }
        None => None,
    };
    let result = inspect::inspect(&mem, &facts, counters, trace)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &result)?;
        writeln!(out)?;
    } else {
        out.write_all(render::text(&result).as_bytes())?;
    }
    if let Some(p) = &a.report {
        std::fs::write(p, render::html(&result, &a.image.display().to_string()))
            .with_context(|| format!("cannot create {}", p.display()))?;
        if !a.json {
            writeln!(out, "Report written to {}", p.display())?;
        }
    }
    Ok(if result.damaged() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
