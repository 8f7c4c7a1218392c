//! Reading allocation traces: the FreeRTOS hook log, the richer `freertos-heap-trace v1` log and the
//! compact id form (grammar and examples in `docs/trace-format.md`).
//!
//! [`TraceReader`] streams: it reads one line at a time and hands out [`Op`]s, so a trace of any
//! length replays in constant memory. Allocation identities (addresses or ids) are mapped to small
//! *slots* that are reused once freed, so a replayer's table stays as small as the peak number of
//! live allocations.
//!
//! Every malformed line is a [`TraceError::Parse`] naming the file, the line and what was
//! expected. Semantic oddities that do not stop a replay (a free of an unknown address, an address
//! handed out twice) are [`Warning`]s.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

/// The trace formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `malloc <addr> <size>` / `free <addr> <size>` from `traceMALLOC` / `traceFREE`.
    Hook,
    /// `freertos-heap-trace v1`: `malloc <addr> <requested> <block> <tick>` with `# key=value`
    /// header lines.
    Trace,
    /// `a <id> <size> [align]` / `f <id>`.
    Ids,
}

/// What the size field of a hook log holds (it depends on the scheme the log was captured with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SizeField {
    /// FreeRTOS V11 heap_2/4/5: the block size (`round_up(request + header, A)` plus up to two
    /// headers of unsplit slack). The request is replayed as `block - header`.
    Block,
    /// heap_1: the request rounded up to `portBYTE_ALIGNMENT`. Replayed as is.
    Aligned,
    /// heap_3, or macros that print the request: exact.
    Requested,
}

/// Options of the parser.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// The format, or `None` to detect it from the first lines.
    pub format: Option<Format>,
    /// What a hook log's size field holds.
    pub size_field: SizeField,
    /// Header size (`xHeapStructSize`) of the device the hook log was captured on.
    pub log_header: u64,
    /// `portBYTE_ALIGNMENT` of the device the hook log was captured on.
    pub log_align: u64,
    /// Skip lines that are not trace lines (other console output) instead of failing.
    pub lenient: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            format: None,
            size_field: SizeField::Block,
            log_header: 8,
            log_align: 8,
            lenient: false,
        }
    }
}

/// One operation of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// 1-based line of the trace file.
    pub line: u64,
    /// The allocation's slot: a small number, reused after the free.
    pub slot: u32,
    /// What to do.
    pub kind: OpKind,
}

/// An allocation or a free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Allocate `size` bytes; `align` 0 means `pvPortMalloc` (the target's `portBYTE_ALIGNMENT`).
    Alloc {
        /// Requested bytes (for a converted hook log: the largest request the block size allows).
        size: u64,
        /// Requested alignment, 0 for none.
        align: u32,
    },
    /// Free the allocation in `slot`.
    Free,
}

/// A line that was accepted but is worth telling the user about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// 1-based line.
    pub line: u64,
    /// What is odd.
    pub message: String,
}

/// Why a trace cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{file}: {cause}")]
    Io {
        /// File name.
        file: String,
        /// The I/O error (in the message, so not also a `source`: a chain would repeat it).
        cause: std::io::Error,
    },
    /// A malformed line.
    #[error("{file}:{line}: expected {expected}, found `{found}`")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What the parser expected there.
        expected: String,
        /// The offending text (shortened).
        found: String,
    },
}

/// Counts of what a reader has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TraceCounts {
    /// Lines read.
    pub lines: u64,
    /// Allocations handed out as [`Op`]s.
    pub allocs: u64,
    /// Frees handed out as [`Op`]s.
    pub frees: u64,
    /// Frees of an address or id that is not live (reported, skipped).
    pub unknown_frees: u64,
    /// Allocations that failed on the device (NULL result): not replayed.
    pub device_failures: u64,
    /// Allocations whose address was still live: the earlier one is taken as leaked.
    pub reused_addresses: u64,
    /// Lines skipped in lenient mode.
    pub skipped_lines: u64,
    /// Most slots in use at once (the peak number of live allocations).
    pub peak_live: u32,
}

/// How exactly the requested sizes are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SizeExactness {
    /// `true` when every replayed size is the request the application made.
    pub exact: bool,
    /// The true request of a converted size lies in `[replayed - below, replayed]`.
    pub below: u64,
}

const MAX_WARNINGS: usize = 100;

/// A streaming trace parser; see the module documentation.
pub struct TraceReader<R> {
    src: R,
    file: String,
    opts: ParseOptions,
    format: Option<Format>,
    line: u64,
    buf: Vec<u8>,
    /// Live key (address or id) → (slot, line of the allocation).
    live: HashMap<u64, (u32, u64)>,
    free_slots: Vec<u32>,
    next_slot: u32,
    header: BTreeMap<String, String>,
    warnings: Vec<Warning>,
    warning_count: u64,
    counts: TraceCounts,
}

/// The offending text of a line for a message: control characters (a NUL, an escape sequence, a
/// stray carriage return) escaped so the message stays one readable line, and long text cut.
fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    let mut t = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            t.push('…');
            break;
        }
        if c.is_control() {
            t.extend(c.escape_default());
        } else {
            t.push(c);
        }
    }
    t
}

fn parse_dec(tok: &str) -> Option<u64> {
    if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tok.parse().ok()
}

fn parse_addr(tok: &str) -> Option<u64> {
    if tok == "(nil)" || tok == "NULL" {
        return Some(0);
    }
    let hex = tok
        .strip_prefix("0x")
        .or_else(|| tok.strip_prefix("0X"))
        .unwrap_or(tok);
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

impl<R: BufRead> TraceReader<R> {
    /// A reader of `src`; `file` names it in messages.
    pub fn new(src: R, file: impl Into<String>, opts: ParseOptions) -> Self {
        TraceReader {
            src,
            file: file.into(),
            format: opts.format,
            opts,
            line: 0,
            buf: Vec::new(),
            live: HashMap::new(),
            free_slots: Vec::new(),
            next_slot: 0,
            header: BTreeMap::new(),
            warnings: Vec::new(),
            warning_count: 0,
            counts: TraceCounts::default(),
        }
    }

    /// The format (detected from the first lines, or as given); `None` before the first operation.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// `key=value` pairs of the `#` header lines read so far.
    pub fn header(&self) -> &BTreeMap<String, String> {
        &self.header
    }

    /// The first 100 warnings.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Number of warnings (also those not kept).
    pub fn warning_count(&self) -> u64 {
        self.warning_count
    }

    /// What was read so far.
    pub fn counts(&self) -> TraceCounts {
        self.counts
    }

    /// Slots used: a replayer's table needs this many entries.
    pub fn slot_count(&self) -> u32 {
        self.next_slot
    }

    /// How exactly the sizes handed out match the application's requests.
    pub fn exactness(&self) -> SizeExactness {
        match (self.format, self.opts.size_field) {
            (Some(Format::Hook), SizeField::Block) => SizeExactness {
                exact: false,
                below: 2 * self.opts.log_header + self.opts.log_align - 1,
            },
            (Some(Format::Hook), SizeField::Aligned) => SizeExactness {
                exact: false,
                below: self.opts.log_align - 1,
            },
            _ => SizeExactness {
                exact: true,
                below: 0,
            },
        }
    }

    fn warn(&mut self, message: String) {
        self.warning_count += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning {
                line: self.line,
                message,
            });
        }
    }

    fn error(&self, expected: impl Into<String>, found: &str) -> TraceError {
        TraceError::Parse {
            file: self.file.clone(),
            line: self.line,
            expected: expected.into(),
            found: shorten(found),
        }
    }

    fn take_slot(&mut self) -> u32 {
        let s = self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        });
        let live = (self.live.len() + 1) as u32;
        self.counts.peak_live = self.counts.peak_live.max(live);
        s
    }

    fn alloc(&mut self, key: u64, size: u64, align: u32) -> Op {
        let slot = self.take_slot();
        if let Some((old, at)) = self.live.insert(key, (slot, self.line)) {
            // The earlier allocation at this address never had its free recorded: leaked.
            self.counts.reused_addresses += 1;
            self.warn(format!(
                "address {key:#x} handed out again while live (allocated at line {at}); the earlier block is taken as leaked"
            ));
            // Its slot stays occupied for ever, like the leaked block.
            let _ = old;
        }
        self.counts.allocs += 1;
        Op {
            line: self.line,
            slot,
            kind: OpKind::Alloc { size, align },
        }
    }

    fn free(&mut self, key: u64, what: &str) -> Option<Op> {
        match self.live.remove(&key) {
            Some((slot, _)) => {
                self.free_slots.push(slot);
                self.counts.frees += 1;
                Some(Op {
                    line: self.line,
                    slot,
                    kind: OpKind::Free,
                })
            }
            None => {
                self.counts.unknown_frees += 1;
                let key = if what == "id" {
                    key.to_string()
                } else {
                    format!("{key:#x}")
                };
                self.warn(format!("free of {what} {key}, which is not live: skipped"));
                None
            }
        }
    }

    fn detect(&mut self, toks: &[&str]) -> Result<Format, TraceError> {
        let f = match (toks[0], toks.len()) {
            ("a" | "f", _) => Format::Ids,
            ("malloc" | "free", 3) => Format::Hook,
            ("malloc" | "free", 5) => Format::Trace,
            _ => {
                return Err(self.error(
                    "a trace line: `malloc <hex address> <size>`, `malloc <hex address> <requested> <block> <tick>` or `a <id> <size> [align]`",
                    &toks.join(" "),
                ));
            }
        };
        self.format = Some(f);
        Ok(f)
    }

    /// Converts a hook log's size field into the request to replay.
    fn hook_request(&self, n: u64, found: &str) -> Result<u64, TraceError> {
        match self.opts.size_field {
            SizeField::Requested => Ok(n),
            SizeField::Aligned => {
                if n == 0 || n % self.opts.log_align != 0 {
                    return Err(self.error(
                        format!(
                            "a size that is a non-zero multiple of portBYTE_ALIGNMENT ({}) (--size-field aligned)",
                            self.opts.log_align
                        ),
                        found,
                    ));
                }
                Ok(n)
            }
            SizeField::Block => {
                let h = self.opts.log_header;
                let a = self.opts.log_align;
                if n < h + a || n % a != 0 {
                    return Err(self.error(
                        format!(
                            "a block size: a multiple of {a} of at least {} (header {h} + {a}); use --size-field requested if the log prints requested sizes",
                            h + a
                        ),
                        found,
                    ));
                }
                Ok(n - h)
            }
        }
    }

    fn parse_line(&mut self, text: &str) -> Result<Option<Op>, TraceError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Some(comment) = text.strip_prefix('#') {
            let comment = comment.trim();
            if self.format.is_none() && comment.starts_with("freertos-heap-trace") {
                self.format = Some(Format::Trace);
            }
            for tok in comment.split_whitespace() {
                if let Some((k, v)) = tok.split_once('=')
                    && !k.is_empty()
                {
                    self.header.insert(k.to_string(), v.to_string());
                }
            }
            return Ok(None);
        }
        let toks: Vec<&str> = text.split_whitespace().collect();
        let format = match self.format {
            Some(f) => f,
            None => match self.detect(&toks) {
                Ok(f) => f,
                Err(e) if self.opts.lenient => {
                    let _ = e;
                    self.counts.skipped_lines += 1;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
        };
        let r = match format {
            Format::Ids => self.parse_ids(&toks, text),
            Format::Hook => self.parse_hook(&toks, text),
            Format::Trace => self.parse_trace(&toks, text),
        };
        match r {
            Err(_) if self.opts.lenient => {
                self.counts.skipped_lines += 1;
                Ok(None)
            }
            r => r,
        }
    }

    fn parse_ids(&mut self, toks: &[&str], text: &str) -> Result<Option<Op>, TraceError> {
        match toks {
            ["a", id, size, rest @ ..] if rest.len() <= 1 => {
                let id = parse_dec(id).ok_or_else(|| {
                    self.error("an allocation id (decimal integer) after `a`", text)
                })?;
                let size = parse_dec(size).ok_or_else(|| {
                    self.error("a size in bytes (decimal integer) after the id", text)
                })?;
                let align = match rest.first() {
                    None => 0,
                    Some(t) => parse_dec(t)
                        .filter(|&a| a.is_power_of_two() && a <= 1 << 20)
                        .ok_or_else(|| {
                            self.error("an alignment: a power of two up to 1048576", text)
                        })? as u32,
                };
                if let Some(&(_, at)) = self.live.get(&id) {
                    return Err(self.error(
                        format!("an id that is not live (id {id} was allocated at line {at} and not freed)"),
                        text,
                    ));
                }
                Ok(Some(self.alloc(id, size, align)))
            }
            ["f", id] => {
                let id = parse_dec(id).ok_or_else(|| {
                    self.error("an allocation id (decimal integer) after `f`", text)
                })?;
                Ok(self.free(id, "id"))
            }
            _ => Err(self.error("`a <id> <size> [align]` or `f <id>`", text)),
        }
    }

    fn parse_hook(&mut self, toks: &[&str], text: &str) -> Result<Option<Op>, TraceError> {
        match toks {
            [op @ ("malloc" | "free"), addr, size] => {
                let addr = parse_addr(addr)
                    .ok_or_else(|| self.error("a hexadecimal address after the operation", text))?;
                let n = parse_dec(size).ok_or_else(|| {
                    self.error("a size in bytes (decimal integer) after the address", text)
                })?;
                if *op == "free" {
                    if addr == 0 {
                        return Ok(None);
                    }
                    return Ok(self.free(addr, "address"));
                }
                if addr == 0 {
                    self.counts.device_failures += 1;
                    self.warn("allocation failed on the device (NULL); not replayed".into());
                    return Ok(None);
                }
                let req = self.hook_request(n, text)?;
                Ok(Some(self.alloc(addr, req, 0)))
            }
            _ => Err(self.error(
                "`malloc <hex address> <size>` or `free <hex address> <size>`",
                text,
            )),
        }
    }

    fn parse_trace(&mut self, toks: &[&str], text: &str) -> Result<Option<Op>, TraceError> {
        match toks {
            [op @ ("malloc" | "free"), addr, req, block, tick] => {
                let addr = parse_addr(addr)
                    .ok_or_else(|| self.error("a hexadecimal address after the operation", text))?;
                let req = parse_dec(req)
                    .ok_or_else(|| self.error("the requested size (decimal) after the address", text))?;
                if parse_dec(block).is_none() {
                    return Err(self.error("the block size (decimal) after the requested size", text));
                }
                if parse_dec(tick).is_none() {
                    return Err(self.error("the tick count (decimal) after the block size", text));
                }
                if *op == "free" {
                    if addr == 0 {
                        return Ok(None);
                    }
                    return Ok(self.free(addr, "address"));
                }
                if addr == 0 {
                    self.counts.device_failures += 1;
                    self.warn(format!("allocation of {req} bytes failed on the device; not replayed"));
                    return Ok(None);
                }
                Ok(Some(self.alloc(addr, req, 0)))
            }
            _ => Err(self.error(
                "`malloc <hex address> <requested> <block> <tick>` or `free <hex address> <requested> <block> <tick>`",
                text,
            )),
        }
    }

    /// The next operation, `Ok(None)` at the end of the trace.
    ///
    /// # Errors
    /// [`TraceError`] for an unreadable file or a malformed line.
    pub fn next_op(&mut self) -> Result<Option<Op>, TraceError> {
        loop {
            self.buf.clear();
            let n = self
                .src
                .read_until(b'\n', &mut self.buf)
                .map_err(|cause| TraceError::Io {
                    file: self.file.clone(),
                    cause,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.counts.lines += 1;
            let buf = std::mem::take(&mut self.buf);
            let r = match std::str::from_utf8(&buf) {
                Ok(text) => self.parse_line(text),
                Err(_) if self.opts.lenient => {
                    self.counts.skipped_lines += 1;
                    Ok(None)
                }
                Err(_) => Err(self.error("UTF-8 text", &String::from_utf8_lossy(&buf))),
            };
            self.buf = buf;
            if let Some(op) = r? {
                return Ok(Some(op));
            }
        }
    }

    /// Reads the whole trace into memory.
    ///
    /// # Errors
    /// As [`next_op`](Self::next_op).
    pub fn read_all(&mut self) -> Result<Vec<Op>, TraceError> {
        let mut ops = Vec::new();
        while let Some(op) = self.next_op()? {
            ops.push(op);
        }
        Ok(ops)
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<Op, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_op().transpose()
    }
}

/// Converts a generated workload (ids, sizes, alignments) into trace operations (line = 1-based
/// operation number).
pub fn from_workload(w: &rtos_heap_workloads::Workload) -> Vec<Op> {
    use rtos_heap_workloads::Op as W;
    let mut slots: HashMap<u32, u32> = HashMap::new();
    let mut free: Vec<u32> = Vec::new();
    let mut next = 0u32;
    let mut out = Vec::with_capacity(w.setup.len() + w.ops.len());
    for (i, op) in w.setup.iter().chain(&w.ops).enumerate() {
        let line = i as u64 + 1;
        match *op {
            W::Alloc { id, size, align } => {
                let slot = free.pop().unwrap_or_else(|| {
                    next += 1;
                    next - 1
                });
                slots.insert(id, slot);
                out.push(Op {
                    line,
                    slot,
                    kind: OpKind::Alloc {
                        size: u64::from(size),
                        align,
                    },
                });
            }
            W::Free { id } => {
                if let Some(slot) = slots.remove(&id) {
                    free.push(slot);
                    out.push(Op {
                        line,
                        slot,
                        kind: OpKind::Free,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
